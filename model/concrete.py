"""One protocol at one set of bounds, executed on concrete states.

:class:`Model` is the checker-facing API, in the spirit of Stateright's ``Model``:
``initial``, ``actions``, ``apply`` (next state), ``successors``, ``violations`` and
``canonical``. A state is a tuple of ints in the protocol's :class:`Layout`. Replay,
conformance, trace reconstruction and the tests use it; the fast search evaluates the
same step functions over numpy batches instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterator, Sequence

from deferral.model.bounds import Bounds
from deferral.model.context import USER_ERRORS, StepContext, StepError, describe_user_error
from deferral.model.ops import CONCRETE
from deferral.model.protocol import Property, Protocol, Step
from deferral.model.schema import Sort

State = tuple[int, ...]


@dataclass(frozen=True)
class Action:
    """A step instance: the step and its arguments. ``index`` is its position in ``actions``."""

    index: int
    step: Step
    args: tuple[int, ...]
    shown: tuple[tuple[str, int], ...] = ()  # the arguments as shown (elided single sorts left out)

    @property
    def name(self) -> str:
        return self.step.name

    def arg_dict(self) -> dict[str, int]:
        """The arguments by parameter name, as traces and reports show them."""
        return dict(self.shown)

    def label(self) -> str:
        return f"{self.step.name}({','.join(str(a) for _, a in self.shown)})"


@dataclass(frozen=True)
class Violation:
    """A property instance that fails in a state, with the values it read."""

    prop: str
    args: tuple[int, ...]
    values: dict[str, Any]

    def describe(self) -> str:
        shown = ", ".join(f"{k}={show_value(v)}" for k, v in self.values.items())
        return f"{self.prop}({','.join(map(str, self.args))}) fails: {shown}"


def show_value(value: Any, *, short: bool = False) -> str:
    """A state value as people read it: ``none``, ``true``/``false`` (``T``/``F`` when
    ``short``, for tables), lists as ``[a,b]``. Every renderer formats values with this."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return ("T" if value else "F") if short else ("true" if value else "false")
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(show_value(v, short=short) for v in value) + "]"
    return str(value)


class Model:
    """A protocol at fixed bounds, over concrete states."""

    def __init__(self, protocol: Protocol, bounds: Bounds) -> None:
        self.protocol = protocol
        self.bounds = protocol.bind(bounds)
        self.layout = protocol.layout(self.bounds)
        self.actions: tuple[Action, ...] = tuple(
            Action(n, st, args, tuple(st.shown_args(args, self.bounds).items()))
            for n, (st, args) in enumerate(protocol.instances(self.bounds)))
        self._procedures = protocol.procedure_table

    # ---- transition system ---------------------------------------------------------
    @cached_property
    def initial(self) -> State:
        return self.layout.initial

    def context(self, state: Sequence[int]) -> StepContext:
        return StepContext(self.layout, CONCRETE, state, self._procedures)

    def enabled(self, state: State, action: Action) -> bool:
        try:
            return bool(action.step.guard(self.context(state), *action.args))
        except StepError as exc:
            raise type(exc)(self._where(action, state, f"guard: {exc}")) from None
        except USER_ERRORS as exc:
            raise StepError(self._where(action, state, f"guard {describe_user_error(exc)}")) from None

    def apply(self, state: State, action: Action) -> State | None:
        """The state after ``action``, or None where it is not enabled."""
        if not self.enabled(state, action):
            return None
        ctx = self.context(state)
        try:
            action.step.effect(ctx, *action.args)
        except StepError as exc:
            raise type(exc)(self._where(action, state, str(exc))) from None
        except USER_ERRORS as exc:
            raise StepError(self._where(action, state, describe_user_error(exc))) from None
        for slot in ctx.written:
            value = ctx.values[slot]
            info = self.layout.slots[slot]
            if not 0 <= value < info.size:
                raise StepError(self._where(action, state, f"wrote {value} to {info.label()}, outside "
                                            f"its domain 0..{info.size - 1}"))
        return tuple(ctx.values)

    def successors(self, state: State) -> Iterator[tuple[Action, State]]:
        for action in self.actions:
            nxt = self.apply(state, action)
            if nxt is not None:
                yield action, nxt

    def find_action(self, name: str, args: Sequence[int]) -> Action | None:
        args = tuple(args)
        for action in self.actions:
            if action.step.name == name and action.args == args:
                return action
        for action in self.actions:  # the arguments as shown (an elided single space left out)
            if action.step.name == name and tuple(a for _, a in action.shown) == args:
                return action
        return None

    # ---- properties ----------------------------------------------------------------
    @property
    def invariants(self) -> list[Property]:
        return [p for p in self.protocol.properties if p.kind == "invariant"]

    @property
    def liveness(self) -> list[Property]:
        return [p for p in self.protocol.properties if p.kind == "liveness"]

    def holds(self, prop: Property, state: State) -> bool:
        """Does ``prop``'s predicate hold for every parameter instance in ``state``?"""
        return not self.failing(prop, state)

    def failing(self, prop: Property, state: State) -> list[Violation]:
        out = []
        for args in prop.instances(self.bounds):
            ctx = self.context(state)
            try:
                ok = prop.predicate(ctx, *args)
            except StepError as exc:
                raise StepError(f"property {prop.name}{args}: {exc}") from None
            except USER_ERRORS as exc:
                raise StepError(f"property {prop.name}{args}: {describe_user_error(exc)}") from None
            if not ok:
                values = {self.layout.slots[s].label(): self._shown(s, state) for s in sorted(ctx.reads)}
                shown = tuple(a for a, (_, d) in zip(args, prop.params)
                              if not (isinstance(d, Sort) and d.single(self.bounds)))
                out.append(Violation(prop.name, shown, values))
        return out

    def violations(self, state: State) -> list[Violation]:
        """Every failing invariant instance in ``state``."""
        return [v for prop in self.invariants for v in self.failing(prop, state)]

    # ---- symmetry and display --------------------------------------------------------
    def canonical(self, state: State) -> State:
        """The least image of ``state`` under VCPU permutations (tuple order)."""
        return min(self.layout.permute(state, perm) for perm in self.layout.permutations)

    def to_json(self, state: State) -> dict[str, Any]:
        return self.layout.to_json(state)

    def from_json(self, shown: Any) -> State:
        return self.layout.from_json(shown)

    def _shown(self, slot: int, state: State) -> Any:
        info = self.layout.slots[slot]
        if info.part == "len":
            return state[slot]
        return info.var.domain.show(state[slot], self.bounds)

    def _where(self, action: Action, state: State, what: str) -> str:
        return (f"step {action.label()} in {self.protocol.name} ({self.protocol.source}): {what}; "
                f"state {self.to_json(state)}")
