"""Protocols as data: variables, procedures, steps and properties, and how variants derive.

A :class:`Protocol` is immutable. A variant is made with :meth:`Protocol.derive`, which
replaces, adds or removes steps, procedures, variables and properties, and records what
it changed, so that tools can say how a variant differs from the protocol it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from itertools import product
from typing import Any, Callable, Iterable, Mapping

from deferral.model.bounds import STANDARD, Bound, Bounds
from deferral.model.schema import Domain, Layout, Sort, Var

Guard = Callable[..., Any]
Effect = Callable[..., None]


def _always(s: Any, *args: Any) -> bool:
    return True


@dataclass(frozen=True)
class Step:
    """An atomic step ``name(params)``: enabled where ``guard`` holds, then ``effect`` runs.

    ``params`` are ``(name, domain)`` pairs; the step has one instance per combination of
    values at the given bounds (``f`` over FRAME ranges over 0..F).
    """

    name: str
    params: tuple[tuple[str, Domain], ...]
    guard: Guard
    effect: Effect
    doc: str = ""
    exists: Callable[[Bounds], bool] | None = None  # the step has instances only where this holds

    def __post_init__(self) -> None:
        object.__setattr__(self, "guard", _adapt(self.guard, self.params, self.name))
        object.__setattr__(self, "effect", _adapt(self.effect, self.params, self.name))

    def hidden(self, b: Bounds) -> tuple[bool, ...]:
        """Which parameters are not shown at these bounds (of an elided sort with one element)."""
        return tuple(isinstance(d, Sort) and d.single(b) for _, d in self.params)

    def shown_args(self, args: Iterable[int], b: Bounds) -> dict[str, int]:
        """The arguments by parameter name, as traces and reports show them."""
        return {name: a for (name, _), a, hide in zip(self.params, args, self.hidden(b)) if not hide}

    def with_guard(self, guard: Guard, doc: str | None = None) -> "Step":
        return replace(self, guard=guard, doc=self.doc if doc is None else doc)

    def with_effect(self, effect: Effect, doc: str | None = None) -> "Step":
        return replace(self, effect=effect, doc=self.doc if doc is None else doc)

    def arg_ranges(self, b: Bounds) -> list[range]:
        if self.exists is not None and not self.exists(b):
            return [range(0)]
        return [range(domain.size(b)) for _, domain in self.params]

    def label(self, args: Iterable[int], b: Bounds | None = None) -> str:
        args = tuple(args)
        if b is not None:
            args = tuple(a for a, hide in zip(args, self.hidden(b)) if not hide)
        return f"{self.name}({','.join(str(a) for a in args)})"


def _adapt(fn: Callable[..., Any], params: tuple[tuple[str, Domain], ...], name: str) -> Callable[..., Any]:
    """``fn`` callable in the one-space notation too: written without the elided-sort (space)
    arguments, or called without them, it runs at one space as before; at more spaces either
    is a one-line :class:`OneSpaceError`."""
    from deferral.model.context import OneSpaceError, max_positional

    elided = [n for n, (_, d) in enumerate(params) if isinstance(d, Sort) and d.elided]
    if not elided or getattr(fn, "_one_space_adapted", False):
        return fn
    keep = [n for n in range(len(params)) if n not in elided]
    old_arity = max_positional(fn) - 1 == len(keep)
    names = ", ".join(params[n][0] for n in elided)

    def single(s: Any) -> bool:
        return all(params[n][1].single(s.bounds) for n in elided)  # type: ignore[union-attr]

    def refuse() -> OneSpaceError:
        return OneSpaceError(f"{name}: a function written or called without the argument(s) {names} "
                             f"(address spaces) runs at one space only; use the parameters "
                             f"({', '.join(p for p, _ in params)}) to check it at more")

    def adapted(s: Any, *args: Any) -> Any:
        if len(args) == len(params):
            if not old_arity:
                return fn(s, *args)
            if single(s) and all(not s.ops.is_value(args[n]) and args[n] == 0 for n in elided):
                return fn(s, *(args[n] for n in keep))
            raise refuse()
        if len(args) == len(keep):  # called in the one-space notation
            if not single(s):
                raise refuse()
            if old_arity:
                return fn(s, *args)
            full: list[Any] = [0] * len(params)
            for n, a in zip(keep, args):
                full[n] = a
            return fn(s, *full)
        return fn(s, *args)

    adapted._one_space_adapted = True  # type: ignore[attr-defined]
    adapted.__wrapped__ = fn  # type: ignore[attr-defined]
    adapted.__doc__ = fn.__doc__
    adapted.__name__ = getattr(fn, "__name__", name)
    return adapted


def step(*params: tuple[str, Domain], guard: Guard = _always, name: str | None = None,
         doc: str = "", exists: Callable[[Bounds], bool] | None = None) -> Callable[[Effect], Step]:
    """Decorator: ``@step(("i", VCPU), guard=lambda s, i: ...)`` over the effect function;
    ``exists``: the bounds at which the step has instances (default: all)."""

    def make(effect: Effect) -> Step:
        return Step(name or effect.__name__, tuple(params), guard, effect,
                    doc or (effect.__doc__ or "").strip(), exists)

    return make


@dataclass(frozen=True)
class Procedure:
    """A named helper that steps call as ``s.proc.name(args)``; variants may replace it."""

    name: str
    fn: Callable[..., Any]
    doc: str = ""


@dataclass(frozen=True)
class Property:
    """A property of the protocol.

    ``invariant``: ``predicate(s, *params)`` must hold in every reachable state, for every
    parameter combination. ``liveness`` (AG EF): from every reachable state, a state where
    ``predicate(s)`` holds for all parameters must be reachable.
    """

    name: str
    kind: str  # "invariant" | "liveness"
    params: tuple[tuple[str, Domain], ...]
    predicate: Callable[..., Any]
    doc: str = ""

    def __post_init__(self) -> None:
        if self.kind not in ("invariant", "liveness"):
            raise ValueError(f"property {self.name}: kind must be 'invariant' or 'liveness'")

    def instances(self, b: Bounds) -> list[tuple[int, ...]]:
        return list(product(*(range(d.size(b)) for _, d in self.params)))


@dataclass(frozen=True)
class Change:
    """What one derivation changed, for reports (``deferral regress``, ``--list-variants``)."""

    kind: str  # replaced | added | removed
    what: str  # step | procedure | variable | property
    name: str


@dataclass(frozen=True, eq=False)
class Protocol:
    """Variables, procedures, steps and properties: one complete protocol definition."""

    name: str
    variables: tuple[Var, ...]
    procedures: tuple[Procedure, ...]
    steps: tuple[Step, ...]
    properties: tuple[Property, ...]
    doc: str = ""
    parent: "Protocol | None" = None
    changes: tuple[Change, ...] = ()
    source: str = "built-in"  # or the path of the variant file that defined it
    bound_decls: tuple[Bound, ...] = STANDARD  # the bounds it is checked at (name, flag, range)

    def __post_init__(self) -> None:
        for what, items in (("variable", self.variables), ("procedure", self.procedures),
                            ("step", self.steps), ("property", self.properties),
                            ("bound", self.bound_decls)):
            names = [x.name for x in items]
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"protocol {self.name}: duplicate {what} name(s) {', '.join(dupes)}")

    # ---- lookups -----------------------------------------------------------------
    def step(self, name: str) -> Step:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(f"protocol {self.name} has no step {name!r}")

    def without_invariants(self) -> str | None:
        """Why there is nothing to prove (no invariant property), or None: a proof of no property
        would read "proved"."""
        if any(p.kind == "invariant" for p in self.properties):
            return None
        others = ", ".join(p.name for p in self.properties) or "none"
        return (f"{self.name} has no invariant property to prove (prove covers invariants; its properties: "
                f"{others}; liveness is checked by deferral check)")

    def checking_only(self, names: Iterable[str]) -> "Protocol":
        """The same protocol (name, steps, source) with only the properties named, in its order: a
        search of invariants alone has no liveness pass, and may stop once they are all violated."""
        wanted = set(names)
        return replace(self, properties=tuple(p for p in self.properties if p.name in wanted))

    def invariants_only(self) -> "Protocol":
        """:meth:`checking_only` its invariant properties."""
        return self.checking_only(p.name for p in self.properties if p.kind == "invariant")

    def prop(self, name: str) -> Property:
        for p in self.properties:
            if p.name == name:
                return p
        raise KeyError(f"protocol {self.name} has no property {name!r}")

    @property
    def procedure_table(self) -> Mapping[str, Callable[..., Any]]:
        return {p.name: p.fn for p in self.procedures}

    def bounds(self, *args: int, **values: int) -> Bounds:
        """Bounds of this protocol: ``bounds(2, 1, 1, 1)`` in declaration order, or by name."""
        return Bounds(*args, decls=self.bound_decls, **values)

    def bind(self, bounds: Bounds) -> Bounds:
        """``bounds`` under this protocol's declarations (undeclared ones at their default);
        a bound it does not declare, or a value outside a range, is a BoundsError."""
        return bounds.under(self.bound_decls)

    def layout(self, bounds: Bounds) -> Layout:
        return _layout(self.variables, self.bind(bounds))

    def instances(self, bounds: Bounds) -> list[tuple[Step, tuple[int, ...]]]:
        """Every step instance (step, args) at these bounds, in a fixed order: the actions."""
        bounds = self.bind(bounds)
        return [(st, args) for st in self.steps for args in product(*st.arg_ranges(bounds))]

    def lineage(self) -> list[str]:
        out, p = [], self
        while p is not None:
            out.append(p.name)
            p = p.parent
        return out

    # ---- variants ----------------------------------------------------------------
    def derive(
        self,
        name: str,
        *,
        doc: str = "",
        replace_steps: Iterable[Step] = (),
        add_steps: Iterable[Step] = (),
        remove_steps: Iterable[str] = (),
        procedures: Mapping[str, Callable[..., Any]] | None = None,
        add_variables: Iterable[Var] = (),
        remove_variables: Iterable[str] = (),
        add_properties: Iterable[Property] = (),
        replace_properties: Iterable[Property] = (),
        remove_properties: Iterable[str] = (),
        add_bounds: Iterable[Bound] = (),
        source: str = "built-in",
    ) -> "Protocol":
        """A new protocol: this one with the given changes. Unknown names are errors."""
        changes: list[Change] = []
        steps = _apply(list(self.steps), "step", replace_steps, add_steps, remove_steps, changes)
        procs = list(self.procedures)
        for pname, fn in (procedures or {}).items():
            existing = [i for i, p in enumerate(procs) if p.name == pname]
            proc = Procedure(pname, fn, (fn.__doc__ or "").strip())
            if existing:
                procs[existing[0]] = proc
                changes.append(Change("replaced", "procedure", pname))
            else:
                procs.append(proc)
                changes.append(Change("added", "procedure", pname))
        variables = _apply(list(self.variables), "variable", (), add_variables, remove_variables, changes)
        props = _apply(list(self.properties), "property", replace_properties, add_properties,
                       remove_properties, changes)
        decls = _apply(list(self.bound_decls), "bound", (), add_bounds, (), changes)
        return Protocol(name, tuple(variables), tuple(procs), tuple(steps), tuple(props),
                        doc=doc, parent=self, changes=tuple(changes), source=source,
                        bound_decls=tuple(decls))


def _apply(items: list[Any], what: str, replaced: Iterable[Any], added: Iterable[Any],
           removed: Iterable[str], changes: list[Change]) -> list[Any]:
    names = [x.name for x in items]
    for new in replaced:
        if new.name not in names:
            raise ValueError(f"cannot replace {what} {new.name!r}: there is no such {what} "
                             f"(known: {', '.join(names)})")
        items[names.index(new.name)] = new
        changes.append(Change("replaced", what, new.name))
    for gone in removed:
        if gone not in names:
            raise ValueError(f"cannot remove {what} {gone!r}: there is no such {what} "
                             f"(known: {', '.join(names)})")
        items = [x for x in items if x.name != gone]
        names = [x.name for x in items]
        changes.append(Change("removed", what, gone))
    for new in added:
        if new.name in names:
            raise ValueError(f"cannot add {what} {new.name!r}: it exists already (replace it instead)")
        items.append(new)
        names.append(new.name)
        changes.append(Change("added", what, new.name))
    return items


@lru_cache(maxsize=64)
def _layout(variables: tuple[Var, ...], bounds: Bounds) -> Layout:
    return Layout(bounds, variables)


