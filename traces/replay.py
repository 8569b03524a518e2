"""Replay: re-execute a trace against the model, which judges it.

Every step must name a step of the protocol with arguments it accepts, must be enabled
in the model's current state, and, where the trace recorded the state after it, must
lead to exactly that state. A recorded state may leave out the ghost variables (engine
traces do: a hypervisor has none); the model's own values are used for them. The first step that differs is reported with the expected
and actual values of the fields that differ; invariants are checked along the way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from deferral.checks.explicit.reachable import goal_reachable
from deferral.checks.results import Path
from deferral.model.concrete import Action, Model, State, Violation
from deferral.model.protocol import Property, Protocol
from deferral.model.schema import Sort
from deferral.traces.format import Trace, TraceError, TraceStep


#: States searched from a trace's last state to confirm an AG EF counterexample.
LIVENESS_SEARCH_LIMIT = 1_000_000


@dataclass
class Divergence:
    """Where a trace stops agreeing with the model."""

    step_number: int  # 1-based; 0 means the initial state
    step: str  # the step's label, e.g. "write(0,0,1)"
    reason: str
    expected: dict[str, Any] = field(default_factory=dict)  # the model's values
    actual: dict[str, Any] = field(default_factory=dict)  # the trace's values
    #: the trace's recorded state is not a state at all (wrong types, values outside their
    #: domains): bad input rather than a difference with the model
    malformed: bool = False

    def describe(self) -> str:
        where = "initial state" if self.step_number == 0 else f"step {self.step_number} {self.step}"
        return f"{where}: {self.reason}"


@dataclass
class ReplayReport:
    trace: Trace
    protocol: Protocol
    steps_replayed: int
    divergence: Divergence | None
    violations: list[tuple[int, Violation]]
    final_state: State
    path: Path
    #: liveness properties checked at the end: name -> goal reachable from the final state
    #: (False: the trace ends where the goal can never be reached; None: too many states to tell)
    liveness: dict[str, bool | None] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.divergence is None

    @property
    def violated_properties(self) -> list[str]:
        stuck = {name for name, reachable in self.liveness.items() if reachable is False}
        return sorted({v.prop for _, v in self.violations} | stuck)

    def outcome(self) -> str:
        """``violates`` or ``passes``, as a corpus trace states its expected outcome."""
        return "violates" if self.violated_properties else "passes"


def replay(trace: Trace, protocol: Protocol, *,
           progress: Callable[[int, list[tuple[int, Violation]]], None] | None = None) -> ReplayReport:
    """Re-execute ``trace`` on ``protocol`` at the trace's bounds; ``progress(steps replayed,
    violations so far)`` after each step (for a caller whose time limit may cut the replay)."""
    known = [p.name for p in protocol.properties]
    for named in (trace.prop, (trace.expected or {}).get("property")):
        if named is not None and named not in known:
            raise TraceError(f"the trace names property {named!r}, which {protocol.name} does not have "
                             f"(its properties: {', '.join(known)})")
    model = Model(protocol, trace.bounds)
    state = model.initial
    path: Path = [(None, state)]
    violations: list[tuple[int, Violation]] = []

    def report(divergence: Divergence | None, replayed: int) -> ReplayReport:
        return ReplayReport(trace, protocol, replayed, divergence, violations, state, path)

    first_fields: set[str] | None = None  # the variables the trace's first recorded state names

    def changed_fields(shown: dict[str, Any], number: int, label: str) -> Divergence | None:
        """A recorded state naming other variables than the trace's first one: malformed."""
        nonlocal first_fields
        if first_fields is None:
            first_fields = set(shown)
            return None
        if set(shown) == first_fields:
            return None
        missing, extra = sorted(first_fields - set(shown)), sorted(set(shown) - first_fields)
        return Divergence(number, label, f"the recorded state is malformed: its variables differ from the "
                          f"trace's first state's: missing {missing}, unknown {extra}", malformed=True)

    if trace.initial is not None:
        changed_fields(trace.initial, 0, "initial")
        recorded = _parse_state(model, trace.initial, 0, "initial", state)
        if isinstance(recorded, Divergence):
            return report(recorded, 0)
        if recorded != state:
            return report(_state_divergence(model, 0, "initial", state, recorded,
                                            "the recorded initial state is not the model's"), 0)
    violations.extend((0, v) for v in model.violations(state))
    for number, tstep in enumerate(trace.steps, start=1):
        action = _action(model, tstep)
        if isinstance(action, str):
            return report(Divergence(number, _label(tstep), action), number - 1)
        nxt = model.apply(state, action)
        if nxt is None:
            return report(Divergence(number, action.label(), "not enabled in the model here",
                                     _guard_fields(model, state, action)), number - 1)
        if tstep.state is not None:
            other = changed_fields(tstep.state, number, action.label())
            if other is not None:
                return report(other, number - 1)
            recorded = _parse_state(model, tstep.state, number, action.label(), nxt)
            if isinstance(recorded, Divergence):
                return report(recorded, number - 1)
            if recorded != nxt:
                return report(_state_divergence(model, number, action.label(), nxt, recorded,
                                                "the recorded state differs from the model's"), number - 1)
        state = nxt
        path.append((action, state))
        violations.extend((number, v) for v in model.violations(state))
        if progress is not None:
            progress(number, violations)
    final = report(None, len(trace.steps))
    for prop in _liveness_claimed(trace, protocol):
        final.liveness[prop.name] = goal_reachable(model, state, lambda m, s, p=prop: m.holds(p, s),
                                                   max_states=LIVENESS_SEARCH_LIMIT)
    return final


def _liveness_claimed(trace: Trace, protocol: Protocol) -> list[Property]:
    """Liveness properties the trace claims to violate: only those are worth a search."""
    names = {trace.prop, (trace.expected or {}).get("property")}
    return [p for p in protocol.properties if p.kind == "liveness" and p.name in names]


def _label(tstep: TraceStep) -> str:
    return f"{tstep.step}({','.join(f'{k}={v}' for k, v in tstep.args.items())})"


def _action(model: Model, tstep: TraceStep) -> Action | str:
    try:
        step = model.protocol.step(tstep.step)
    except KeyError:
        names = ", ".join(s.name for s in model.protocol.steps)
        return f"{model.protocol.name} has no step {tstep.step!r} (its steps: {names})"
    wanted = [name for name, _ in step.params]
    # an argument of an elided sort (a space) may be left out: a trace that names no space means space 0
    optional = {name for name, d in step.params if isinstance(d, Sort) and d.elided}
    if not set(wanted) - optional <= set(tstep.args) or not set(tstep.args) <= set(wanted):
        return f"arguments {sorted(tstep.args)} do not match the step's parameters {wanted}"
    args = tuple(tstep.args.get(name, 0) for name in wanted)
    for (name, domain), value in zip(step.params, args):
        if not 0 <= value < domain.size(model.bounds):
            return f"argument {name}={value} is outside {domain!r} at {model.bounds.short()}"
    action = model.find_action(step.name, args)
    assert action is not None
    return action


def _parse_state(model: Model, shown: dict[str, Any], number: int, label: str,
                 expected: State) -> State | Divergence:
    """The recorded state; ghost variables it leaves out (an engine records none) are the
    model's own, taken from ``expected``: the judge computes them, the trace need not."""
    ghosts = {v.name for v in model.protocol.variables if v.ghost} - set(shown)
    if ghosts:
        mine = model.to_json(expected)
        shown = {**shown, **{name: mine[name] for name in ghosts}}
    try:
        return model.from_json(shown)
    except ValueError as exc:
        prefix = "state fields differ from the model: "
        if str(exc).startswith(prefix):  # a well-formed state of another protocol: it diverges
            return Divergence(number, label, f"the trace records other variables than {model.protocol.name} has "
                              f"(a trace of another protocol?): {str(exc)[len(prefix):]}")
        return Divergence(number, label, f"the recorded state is malformed: {exc}", malformed=True)


def _state_divergence(model: Model, number: int, label: str, expected: State, actual: State,
                      reason: str) -> Divergence:
    changes = model.layout.diff(expected, actual)
    return Divergence(number, label, reason, {k: a for k, (a, _) in changes.items()},
                      {k: b for k, (_, b) in changes.items()})


def _guard_fields(model: Model, state: State, action: Action) -> dict[str, Any]:
    """The fields the step's guard read: why it is not enabled."""
    ctx = model.context(state)
    action.step.guard(ctx, *action.args)
    return {model.layout.slots[s].label(): model._shown(s, state) for s in sorted(ctx.reads)}


def path_to_trace(model: Model, path: Path, prop: str | None = None, *, expected: dict[str, Any] | None = None,
                  note: str = "") -> Trace:
    """A deferral-trace/1 document for a path of real states."""
    steps = []
    for action, state in path[1:]:
        assert action is not None
        steps.append(TraceStep(action.step.name, action.arg_dict(), model.to_json(state)))
    return Trace(model.protocol.name, model.bounds, steps, model.to_json(path[0][1]), prop, expected,
                 model.protocol.source, note)


__all__ = ["Divergence", "ReplayReport", "TraceError", "path_to_trace", "replay"]
