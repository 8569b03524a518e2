"""Apalache's Informal Trace Format (ITF), both ways, for deferral traces.

An ITF trace is one JSON object: ``vars`` (the variable names), ``states`` (one object a
state, each variable's value), and ``#meta``. Values follow the ITF rules: booleans and
strings as JSON, integers as JSON numbers (``{"#bigint": "..."}`` is read too), an array
variable indexed by VCPUs or pages as a function ``{"#map": [[index, value], ...]}``, a
queue as a JSON array (a sequence, oldest first), and "none" (no VCPU) as the string
``"none"``. deferral writes the variant, bounds and property in the top ``#meta``, and
each step (``action`` and ``args``) in the ``#meta`` of the state it leads to.

Reading: an ITF file becomes a ``deferral-trace/1`` document. A state whose ``#meta``
names no action gets the step inferred (the one enabled step instance of a published
variant that leads from the previous state to it); reading never runs code from a file.
"""

from __future__ import annotations

from typing import Any

from deferral.model.bounds import BoundsError
from deferral.model.concrete import Model
from deferral.model.protocol import Protocol
from deferral.model.variants import PUBLISHED

NONE = "none"


class ItfError(ValueError):
    """An ITF document that is not a trace deferral can read."""


# ---- writing ---------------------------------------------------------------------------
def _value(value: Any) -> Any:
    if value is None:
        return NONE
    if isinstance(value, list):
        return [_value(v) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 2 ** 53:
        return {"#bigint": str(value)}
    return value


def _function(node: Any, depth: int) -> Any:
    """Nested lists ``depth`` deep as nested ``#map`` functions over 0..n-1."""
    if depth == 0:
        return _value(node)
    return {"#map": [[i, _function(v, depth - 1)] for i, v in enumerate(node)]}


def state_to_itf(protocol: Protocol, shown: dict[str, Any], bounds: Any = None) -> dict[str, Any]:
    """A state in deferral's JSON form (``Layout.to_json``) as an ITF state object (the
    variables and indices shown at ``bounds``: at one address space, no space index)."""
    b = protocol.bind(bounds) if bounds is not None else None
    return {var.name: _function(shown[var.name], len(var.shown_dims(b)) if b is not None else len(var.index))
            for var in protocol.variables if var.name in shown}


def to_itf(trace: Any, protocol: Protocol) -> dict[str, Any]:
    """A :class:`deferral.traces.format.Trace` with states as an ITF document."""
    model = Model(protocol, trace.bounds)
    initial = trace.initial if trace.initial is not None else model.to_json(model.initial)
    states = [{"#meta": {"index": 0}, **state_to_itf(protocol, initial, model.bounds)}]
    for n, step in enumerate(trace.steps, start=1):
        if step.state is None:
            raise ItfError(f"step {n} ({step.step}) has no state: ITF needs every state")
        meta = {"index": n, "action": step.step, "args": step.args}
        states.append({"#meta": meta, **state_to_itf(protocol, step.state, model.bounds)})
    meta: dict[str, Any] = {
        "format": "ITF",
        "format-description": "https://apalache-mc.org/docs/adr/015adr-trace.html",
        "source": "deferral",
        "variant": trace.variant,
        "variant_source": trace.variant_source,
        "bounds": trace.bounds.as_dict(),
        "property": trace.prop,
    }
    if trace.expected is not None:
        meta["expected"] = trace.expected
    return {"#meta": meta, "vars": [v.name for v in model.layout.shown_variables], "states": states}


# ---- reading ---------------------------------------------------------------------------
def is_itf(doc: Any) -> bool:
    return isinstance(doc, dict) and "states" in doc and "vars" in doc and "format" not in doc


def _plain(value: Any, where: str) -> Any:
    """An ITF value back in deferral's JSON form (maps over 0..n-1 become lists)."""
    if isinstance(value, dict):
        if "#bigint" in value:
            try:
                return int(value["#bigint"])
            except (TypeError, ValueError):
                raise ItfError(f"{where}: bad #bigint {value['#bigint']!r}") from None
        if "#map" in value:
            pairs = value["#map"]
            if not isinstance(pairs, list) or not all(isinstance(p, list) and len(p) == 2 for p in pairs):
                raise ItfError(f"{where}: #map must be a list of [key, value] pairs")
            keys = [_plain(k, where) for k, _ in pairs]
            if not all(isinstance(k, int) and not isinstance(k, bool) for k in keys) \
                    or sorted(keys) != list(range(len(keys))):
                raise ItfError(f"{where}: a #map must have the keys 0..n-1, got {keys}")
            ordered = sorted(zip(keys, (v for _, v in pairs)), key=lambda kv: kv[0])
            return [_plain(v, f"{where}[{k}]") for k, v in ordered]
        if "#tup" in value:
            if not isinstance(value["#tup"], list):
                raise ItfError(f"{where}: #tup must be a list")
            return [_plain(v, where) for v in value["#tup"]]
        raise ItfError(f"{where}: unsupported ITF value {sorted(value)}")
    if isinstance(value, list):
        return [_plain(v, where) for v in value]
    if value == NONE:
        return None
    return value


def from_itf(doc: dict[str, Any], name: str) -> dict[str, Any]:
    """An ITF document as a ``deferral-trace/1`` document (raises :class:`ItfError`)."""
    meta = doc.get("#meta") if isinstance(doc.get("#meta"), dict) else {}
    states = doc.get("states")
    if not isinstance(states, list) or not states or not all(isinstance(s, dict) for s in states):
        raise ItfError(f"{name}: ITF 'states' must be a non-empty list of objects")
    variant = meta.get("variant", "reference")
    if not isinstance(meta.get("bounds"), dict):
        raise ItfError(f"{name}: this ITF trace does not say its bounds (deferral writes them in "
                       "#meta.bounds: {\"vcpus\": N, \"pages\": V, \"frames\": F, \"queue\": Q})")
    shown = []
    for n, state in enumerate(states):
        shown.append({k: _plain(v, f"{name}: state {n}: {k}") for k, v in state.items() if not k.startswith("#")})
    steps: list[dict[str, Any]] = []
    model: Model | None = None
    for n, state in enumerate(states[1:], start=1):
        smeta = state.get("#meta", {})
        if not isinstance(smeta, dict):
            raise ItfError(f"{name}: state {n}: '#meta' must be an object, got {type(smeta).__name__}")
        action, args = smeta.get("action"), smeta.get("args", {})
        if action is not None and not isinstance(action, str):
            raise ItfError(f"{name}: state {n}: '#meta.action' must be a step name, got {action!r}")
        if not isinstance(args, dict):
            raise ItfError(f"{name}: state {n}: '#meta.args' must map parameter names to integers, got {args!r}")
        if action is None:
            if model is None:
                model = _model_for(variant, meta["bounds"], name)
            action, args = _infer(model, shown[n - 1], shown[n], f"{name}: state {n}")
        steps.append({"step": action, "args": args, "state": shown[n]})
    out = {"format": "deferral-trace/1", "variant": variant,
           "variant_source": meta.get("variant_source", "built-in"), "bounds": meta["bounds"],
           "property": meta.get("property"), "initial": shown[0], "steps": steps, "note": "read from ITF"}
    if meta.get("expected") is not None:
        out["expected"] = meta["expected"]
    return out


def _model_for(variant: Any, bounds: dict[str, Any], name: str) -> Model:
    protocol = PUBLISHED.get(variant) if isinstance(variant, str) else None
    if protocol is None:
        raise ItfError(f"{name}: a state names no action, and steps are inferred only for a published "
                       f"variant (this trace names {variant!r})")
    try:
        return Model(protocol, protocol.bounds(**bounds))
    except (BoundsError, TypeError) as exc:
        raise ItfError(f"{name}: bad bounds {bounds}: {exc}") from None


def _infer(model: Model, before: dict[str, Any], after: dict[str, Any], where: str) -> tuple[str, dict[str, int]]:
    """The one step instance leading from ``before`` to ``after`` in ``model``."""
    try:
        a, b = model.from_json(before), model.from_json(after)
    except ValueError as exc:
        raise ItfError(f"{where}: {exc}") from None
    found = [action for action, succ in model.successors(a) if succ == b]
    if not found:
        raise ItfError(f"{where}: no step of {model.protocol.name} leads here from the previous state")
    action = found[0]  # several instances with one effect: any of them is the step
    return action.step.name, dict(zip((p for p, _ in action.step.params), action.args))


__all__ = ["ItfError", "from_itf", "is_itf", "state_to_itf", "to_itf"]
