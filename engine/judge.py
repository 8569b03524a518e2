"""The model judging an engine run: ghost variables and property checks from the model's own steps.

The engine records only what a hypervisor holds (its non-ghost state, in the model's
vocabulary) and each step it took, named as the model names it. The :class:`Judge` runs
the model's step functions along those steps to compute the ghost variables
(``lw``, ``req``, ``covers`` in the reference; whatever a variant declares ghost) and
evaluates the model's invariants on the engine's own state combined with those ghosts.
Nothing of the protocol is restated here: a variant with other ghost rules or other
properties is judged by its own definition.

Where the engine's state after a step differs from the model's (or the model does not
enable the step at all), the judge records a divergence and carries on from the engine's
state with the model's ghosts, so that the property is still evaluated on what the
engine really holds. The model's transitions are memoised on the slots each step read
(:class:`Transitions`, bounded), and the invariants are evaluated in batches of states with the explicit search's compiled property kernels
(:meth:`Judge.flush`; the failing instances are then named by ``Model.failing``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product
from operator import itemgetter
from typing import Any, Callable

import numpy as np

from deferral.checks.explicit.kernels import compile_property
from deferral.model.concrete import Action, Model, State, Violation
from deferral.model.schema import Queue

#: States judged per batch of the invariants (compiled once, evaluated over a numpy batch).
BATCH = 512


def shown_args(action: Action) -> dict[str, int]:
    """An action's arguments by name, as traces name them (one space: no space argument)."""
    shown = getattr(action, "arg_dict", None)
    if shown is not None:
        return shown()
    return {name: v for (name, _), v in zip(action.step.params, action.args)}


def ghost_names(model: Model) -> frozenset[str]:
    """The protocol's ghost variables (the model keeps them; the engine does not)."""
    return frozenset(v.name for v in model.protocol.variables if getattr(v, "ghost", False))


def engine_view(model: Model, state: State) -> dict[str, Any]:
    """``model.to_json(state)`` without the ghost variables: what an engine snapshot holds."""
    ghosts = ghost_names(model)
    return {k: v for k, v in model.to_json(state).items() if k not in ghosts}


def with_ghosts(model: Model, engine_state: dict[str, Any], ghosts_from: State) -> State:
    """The model state made of the engine's non-ghost values and the ghosts of ``ghosts_from``."""
    ghosts = ghost_names(model)
    shown = {k: v for k, v in model.to_json(ghosts_from).items() if k in ghosts}
    shown.update({k: v for k, v in engine_state.items() if k not in ghosts})
    return model.from_json(shown)


def _getter(slots: tuple[int, ...]) -> Callable[[State], Any]:
    return itemgetter(*slots) if slots else (lambda state: ())


class Transitions:
    """``Model.apply`` memoised on the slots each evaluation read.

    A step's guard and effect are deterministic functions of the state slots they read
    (the step context records them): a state that agrees with an earlier one on every slot
    read there evaluates the same way and writes the same slots with the same values. So
    one evaluation of ``write(0,0,1)`` serves every state with the same writer's pc and
    queue, whatever the other VCPUs hold. A miss runs the step's own guard and effect in
    the model's context, as ``Model.apply`` does (which is called for its error message
    when a step raises or writes outside a domain).
    """

    def __init__(self, model: Model, limit: int) -> None:
        self.model = model
        self.limit = limit
        self.size = 0
        self._patterns: dict[int, list[tuple[Callable[[State], Any], dict[Any, Any]]]] = {}
        self._by_reads: dict[tuple[int, tuple[int, ...]], dict[Any, Any]] = {}

    def apply(self, state: State, action: Action) -> State | None:
        for key_of, table in self._patterns.get(action.index, ()):
            writes = table.get(key_of(state), _MISS)
            if writes is not _MISS:
                return _written(state, writes)
        return self._evaluate(state, action)

    def _evaluate(self, state: State, action: Action) -> State | None:
        guard = self.model.context(state)
        try:
            enabled = bool(action.step.guard(guard, *action.args))
        except Exception:  # noqa: BLE001 - let the model report it in its own words
            return self.model.apply(state, action)
        reads = set(guard.reads)
        writes: tuple[tuple[int, int], ...] | None = None
        nxt: State | None = None
        if enabled:
            effect = self.model.context(state)
            try:
                action.step.effect(effect, *action.args)
            except Exception:  # noqa: BLE001
                return self.model.apply(state, action)
            slots = self.model.layout.slots
            writes = tuple((j, effect.values[j]) for j in sorted(effect.written))
            if not all(0 <= v < slots[j].size for j, v in writes):
                return self.model.apply(state, action)  # raises the model's domain error
            reads |= effect.reads
            nxt = _written(state, writes)
        self._remember(action, tuple(sorted(reads)), state, writes)
        return nxt

    def _remember(self, action: Action, pattern: tuple[int, ...], state: State,
                  writes: tuple[tuple[int, int], ...] | None) -> None:
        if self.size >= self.limit:
            self._patterns.clear()
            self._by_reads.clear()
            self.size = 0
        table = self._by_reads.get((action.index, pattern))
        if table is None:
            table = self._by_reads[(action.index, pattern)] = {}
            self._patterns.setdefault(action.index, []).append((_getter(pattern), table))
        table[_getter(pattern)(state)] = writes
        self.size += 1


_MISS = object()


def _key(shown: Any) -> Any:
    """A shown value as a dict key (a pair is shown as a list)."""
    return tuple(shown) if isinstance(shown, list) else shown


def _written(state: State, writes: tuple[tuple[int, int], ...] | None) -> State | None:
    if writes is None:
        return None
    out = list(state)
    for j, value in writes:
        out[j] = value
    return tuple(out)


class Encoder:
    """Engine snapshots (the model's JSON form, ghosts left out) to model states, quickly.

    Reads the layout's own slot table once; :meth:`encode` fills the ghost slots from a
    given model state. Checked against ``Layout.from_json`` on the initial state; where
    they disagree (a layout this does not understand) ``from_json`` is used instead.
    """

    def __init__(self, model: Model) -> None:
        self.model = model
        layout, b = model.layout, model.bounds
        ghosts = ghost_names(model)
        self.ghost_slots = tuple(j for j, slot in enumerate(layout.slots) if slot.var.name in ghosts)
        self.plain_slots = tuple(j for j, slot in enumerate(layout.slots) if slot.var.name not in ghosts)
        self.plain = _getter(self.plain_slots)
        #: per shown variable: (name, shown depth, is a queue, slots in row-major order, parse)
        self._plan: list[tuple[str, int, bool, list[Any], dict[Any, int]]] = []
        for var in getattr(layout, "shown_variables", layout.variables):  # the fields a state shows
            if var.name in ghosts:
                continue
            shape = var.shape(b)
            dims = var.shown_dims(b) if hasattr(var, "shown_dims") else tuple(range(len(shape)))
            targets: list[Any] = []
            for shown in product(*(range(shape[d]) for d in dims)):
                full = [0] * len(shape)  # an elided index (one space) is 0
                for d, i in zip(dims, shown):
                    full[d] = i
                idx = tuple(full)
                if isinstance(var, Queue):
                    targets.append((layout.where[(var.name, idx, "len")],
                                    [layout.where[(var.name, idx, s)] for s in range(var.cap(b))]))
                else:
                    targets.append(layout.where[(var.name, idx, None)])
            parse = {_key(var.domain.show(v, b)): v for v in range(var.domain.size(b))}
            self._plan.append((var.name, len(dims), isinstance(var, Queue), targets, parse))
        initial = model.initial
        try:
            self.fast = self.encode(engine_view(model, initial), initial, fast=True) == initial
        except (KeyError, IndexError, TypeError, ValueError):
            self.fast = False

    def encode(self, shown: dict[str, Any], ghosts_from: State, *, fast: bool | None = None) -> State:
        """The model state with the engine's values and ``ghosts_from``'s ghosts.

        Raises KeyError, IndexError, TypeError or ValueError for a malformed snapshot."""
        if not (self.fast if fast is None else fast):
            return with_ghosts(self.model, shown, ghosts_from)
        values = list(ghosts_from)
        for name, depth, queue, targets, parse in self._plan:
            leaves = _flatten(shown[name], depth)
            if len(leaves) != len(targets):
                raise ValueError(f"{name}: expected {len(targets)} entries, got {len(leaves)}")
            if not queue:
                for j, leaf in zip(targets, leaves):
                    values[j] = parse[leaf]
                continue
            for (length, slots), items in zip(targets, leaves):
                if len(items) > len(slots):
                    raise ValueError(f"{name}: queue longer than its capacity")
                values[length] = len(items)
                for j, item in zip(slots, items):
                    values[j] = parse[_key(item)]
                for j in slots[len(items):]:
                    values[j] = 0
        return tuple(values)


def _flatten(node: Any, depth: int) -> list[Any]:
    """The leaves of a ``depth``-deep nested list, in row-major order."""
    if depth == 0:
        return [node]
    if depth == 1:
        return list(node)
    return [leaf for row in node for leaf in _flatten(row, depth - 1)]


@dataclass
class Divergence:
    """The first engine step the model does not accept as it happened."""

    step_number: int
    step: str
    reason: str
    fields: dict[str, Any] = field(default_factory=dict)  # "shadow[1][0]": [model, engine]

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Judge:
    """Follows an engine run step by step with the model; see the module docstring."""

    def __init__(self, model: Model, engine_initial: dict[str, Any], *, cache: int = 100_000) -> None:
        self.model = model
        self.ghosts = ghost_names(model)
        self._actions: dict[tuple[str, frozenset[tuple[str, int]]], Action] = {
            (a.step.name, frozenset(shown_args(a).items())): a for a in model.actions}
        self.transitions = Transitions(model, cache)
        self.encoder = Encoder(model)
        self._pending: list[tuple[int, str, State]] = []
        self._holds: list[tuple[Any, Callable[[np.ndarray], np.ndarray] | None]] = [
            (p, compile_property(model.layout, model.protocol.procedure_table, p)) for p in model.invariants]
        self.steps = 0
        self.divergent_steps = 0
        self.first_divergence: Divergence | None = None
        self._last_divergent = -1
        self.state = self._align(model.initial, engine_initial, 0, "initial")
        self._pending.append((0, "initial", self.state))

    # ---- the invariants, in batches --------------------------------------------------------
    def pending(self) -> int:
        """States judged whose invariants are not yet evaluated."""
        return len(self._pending)

    def flush(self) -> list[tuple[int, str, list[Violation]]]:
        """Evaluate the invariants on the states judged since the last flush:
        (step number, step label, failing instances) for each state where one fails."""
        pending, self._pending = self._pending, []
        if not pending:
            return []
        rows = np.array([state for _, _, state in pending], dtype=np.int64)
        bad = np.zeros(len(pending), dtype=bool)
        for prop, holds in self._holds:
            if holds is None:  # not compilable: evaluate it state by state
                bad |= np.array([not self.model.holds(prop, state) for _, _, state in pending], dtype=bool)
            else:
                bad |= ~np.asarray(holds(rows), dtype=bool)
        out = []
        for n in np.flatnonzero(bad):
            number, label, state = pending[n]
            out.append((number, label, self.model.violations(state)))
        return out

    # ---- following the run --------------------------------------------------------------
    def action(self, name: str, args: dict[str, int]) -> Action | None:
        """The model's action for an engine step (None if the model has no such step)."""
        return self._actions.get((name, frozenset(args.items())))

    def step(self, name: str, args: dict[str, int], engine_state: dict[str, Any]) -> None:
        """Judge one engine step, given the engine's state after it (invariants: :meth:`flush`)."""
        self.steps += 1
        label = f"{name}({','.join(str(v) for v in args.values())})"
        action = self.action(name, args)
        nxt = None if action is None else self.transitions.apply(self.state, action)
        if nxt is None:
            self._diverged(label, "the model does not enable this step here" if action is not None
                           else "the model has no such step", {})
            nxt = self.state  # the ghosts stay as they were
        self.state = self._align(nxt, engine_state, self.steps, label)
        self._pending.append((self.steps, label, self.state))

    def _align(self, expected: State, engine_state: dict[str, Any], number: int, label: str) -> State:
        """``expected`` if the engine holds exactly its non-ghost values, else the engine's
        values with ``expected``'s ghosts (and a recorded divergence)."""
        try:
            actual = self.encoder.encode(engine_state, expected)
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            self._diverged(label, f"the engine's state is not a state of the model: {exc}", {})
            return expected
        if actual == expected:
            return expected
        model_view = engine_view(self.model, expected)
        diff = {k: [model_view.get(k), engine_state.get(k)] for k in sorted(set(model_view) | set(engine_state))
                if model_view.get(k) != engine_state.get(k)}
        self._diverged(label, "the engine's state differs from the model's", diff)
        return actual

    def _diverged(self, label: str, reason: str, fields: dict[str, Any]) -> None:
        if self._last_divergent != self.steps:
            self.divergent_steps += 1
            self._last_divergent = self.steps
        if self.first_divergence is None:
            self.first_divergence = Divergence(self.steps, label, reason, fields)
