"""Behaviours: the reachable states of a protocol, projected onto the variables two sides share.

``deferral regress`` compares what a candidate protocol can *do* with what its baseline
can do. A behaviour is a reachable state seen only through the protocol (non-ghost)
variables both protocols have, with the same domain: ghost bookkeeping (``lw``, ``req``,
``covers``) and variables one side lacks are left out. Counts are exact orbit counts
under VCPU symmetry (projection commutes with renaming VCPUs, because the only
VCPU-valued variables dropped are dropped whole).

The enumeration is the fast search's own level-synchronous BFS
(:func:`deferral.checks.explicit.vectorized.reachable_levels`), keeping every stored state, its BFS
parent and the action that reached it, so a shortest path to any behaviour can be given.
A step that misbehaves on a batch is located again on concrete states, so the
:class:`StepError` names the protocol's source file, the step and the state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from deferral.checks.explicit.numpy_ops import NotVectorizable
from deferral.checks.explicit.packing import Packer
from deferral.checks.results import Path, path_from_parents
from deferral.checks.explicit.vectorized import reachable_levels
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model, State
from deferral.model.protocol import Protocol
from deferral.model.schema import Layout, Var

class TooManyStates(Exception):
    """The enumeration passed its ``max_states`` limit."""


@dataclass
class Reachable:
    """Every reachable state (canonical under VCPU symmetry), with BFS parents."""

    model: Model
    keys: np.ndarray  # key of state n (Packer order), in BFS numbering
    rows: np.ndarray  # (states, slots) canonical rows in BFS numbering
    parent: np.ndarray  # BFS parent of state n (-1 for the start)
    via: np.ndarray  # action index that reached state n (-1 for the start)
    depth: int

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def path_to(self, n: int) -> Path:
        """A shortest path of real states from the initial state to (an image of) state ``n``."""
        return path_from_parents(self.model, self.parent, self.via, n, symmetry=True)


def reachable(protocol: Protocol, bounds: Bounds, *, start: State | None = None,
              max_states: int | None = None) -> Reachable:
    """Enumerate the states reachable from ``start`` (default: the initial state).

    Raises :class:`TooManyStates` past ``max_states``, :class:`StepError` (with the
    state) when a step misbehaves. A protocol whose steps cannot run on arrays is
    enumerated one state at a time instead.
    """
    model = Model(protocol, bounds)
    try:
        return _reachable_np(model, start, max_states)
    except NotVectorizable:
        return _reachable_plain(model, start, max_states)


def _reachable_np(model: Model, start: State | None, max_states: int | None) -> Reachable:
    """The fast search's own BFS (:func:`deferral.checks.explicit.vectorized.reachable_levels`)."""
    levels = reachable_levels(model, start=start, symmetry=True, max_states=max_states, workers=1)
    if levels.stopped_by == "max-states":
        raise TooManyStates(f"{model.protocol.name} at {model.bounds.short()}: more than "
                            f"{max_states:,} states")
    parent = levels.parent.astype(np.int64)
    via = levels.via.astype(np.int32)
    parent[0] = via[0] = -1
    return Reachable(model, levels.keys, levels.packer.unpack(levels.keys), parent, via, levels.depth)


def _reachable_plain(model: Model, start: State | None, max_states: int | None) -> Reachable:
    first = model.canonical(model.initial if start is None else start)
    index: dict[State, int] = {first: 0}
    states, parent, via = [first], [-1], [-1]
    frontier, depth = [0], 0
    while frontier:
        nxt = []
        for n in frontier:
            for action, succ in model.successors(states[n]):
                key = model.canonical(succ)
                if key not in index:
                    if max_states is not None and len(states) >= max_states:
                        raise TooManyStates(f"{model.protocol.name} at {model.bounds.short()}: more "
                                            f"than {max_states:,} states")
                    index[key] = len(states)
                    states.append(key)
                    parent.append(n)
                    via.append(action.index)
                    nxt.append(index[key])
        if nxt:
            depth += 1
        frontier = nxt
    rows = np.array(states, dtype=np.int64).reshape(len(states), len(model.layout.slots))
    keys = Packer(model.layout, True).canonical_keys(rows.astype(np.uint8 if max(model.layout.sizes) <= 256
                                                                 else np.uint16))
    return Reachable(model, keys, rows, np.array(parent, np.int64), np.array(via, np.int32), depth)


# ---- projection ------------------------------------------------------------------------
def shared_variables(a: Protocol, b: Protocol) -> tuple[Var, ...]:
    """The non-ghost variables both protocols have with the same shape and domain (a's order)."""
    theirs = {v.name: v for v in b.variables}
    out = []
    for var in a.variables:
        other = theirs.get(var.name)
        if var.ghost or other is None or other.ghost:
            continue
        if (type(var) is type(other) and var.domain == other.domain and var.index == other.index
                and getattr(var, "capacity", None) == getattr(other, "capacity", None)):
            out.append(var)
    return tuple(out)


@dataclass
class Projection:
    """Projects a layout's rows onto some of its variables, with canonical keys."""

    source: Layout
    target: Layout
    columns: np.ndarray
    packer: Packer

    @classmethod
    def of(cls, source: Layout, variables: Sequence[Var]) -> "Projection":
        target = Layout(source.bounds, tuple(variables))
        columns = np.array([source.where[(s.var.name, s.index, s.part)] for s in target.slots], dtype=np.int64)
        return cls(source, target, columns, Packer(target, True))

    def keys(self, rows: np.ndarray) -> np.ndarray:
        """Canonical keys (up to VCPU symmetry) of the projected rows."""
        projected = np.ascontiguousarray(rows[:, self.columns]).astype(self.packer.dtype_rows)
        return self.packer.canonical_keys(projected)

    def show(self, key: np.ndarray) -> dict[str, Any]:
        row = self.packer.unpack(key.reshape(1))[0]
        return self.target.to_json(tuple(int(v) for v in row))


@dataclass
class BehaviourDiff:
    """What the candidate can reach that the baseline cannot, and the other way round."""

    bounds: Bounds
    variables: tuple[str, ...]
    baseline_states: int
    candidate_states: int
    baseline_behaviours: int
    candidate_behaviours: int
    added: int
    lost: int
    added_example: Path | None = None  # in the candidate: a shortest path to a new behaviour
    lost_example: Path | None = None  # in the baseline: a shortest path to a lost behaviour
    added_shown: dict[str, Any] | None = None
    lost_shown: dict[str, Any] | None = None


def compare(baseline: Protocol, candidate: Protocol, bounds: Bounds, *,
            max_states: int | None = None) -> BehaviourDiff:
    """Reachable behaviours of both sides at ``bounds``, and shortest paths to a difference."""
    shared = shared_variables(baseline, candidate)
    base = reachable(baseline, bounds, max_states=max_states)
    cand = reachable(candidate, bounds, max_states=max_states)
    pb = Projection.of(base.model.layout, shared)
    pc = Projection.of(cand.model.layout, shared)
    kb, kc = pb.keys(base.rows), pc.keys(cand.rows)
    ub, uc = np.unique(kb), np.unique(kc)
    added_keys = np.setdiff1d(uc, ub, assume_unique=True)
    lost_keys = np.setdiff1d(ub, uc, assume_unique=True)
    diff = BehaviourDiff(bounds, tuple(v.name for v in shared), len(base), len(cand), int(ub.size),
                         int(uc.size), int(added_keys.size), int(lost_keys.size))
    if added_keys.size:
        n = _first_in(kc, added_keys)
        diff.added_example = cand.path_to(n)
        diff.added_shown = pc.show(kc[n])
    if lost_keys.size:
        n = _first_in(kb, lost_keys)
        diff.lost_example = base.path_to(n)
        diff.lost_shown = pb.show(kb[n])
    return diff


def _first_in(keys: np.ndarray, wanted: np.ndarray) -> int:
    """The least state number (= shallowest, BFS order) whose key is in ``wanted``."""
    return int(np.flatnonzero(np.isin(keys, wanted))[0])


def goal_reachable(protocol: Protocol, bounds: Bounds, state: State, goal: Callable[[Model, State], bool],
                   *, max_states: int | None = None) -> bool:
    """Is a state satisfying ``goal`` reachable from ``state`` (``state`` itself included)?"""
    reach = reachable(protocol, bounds, start=state, max_states=max_states)
    model = reach.model
    return any(goal(model, tuple(int(v) for v in row)) for row in reach.rows)
