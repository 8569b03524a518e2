"""Every reachable state of a protocol, kept with BFS parents: enumeration and reachability.

The enumeration is the fast search's own level-synchronous BFS
(:func:`deferral.checks.explicit.vectorized.reachable_levels`), keeping every stored state, its BFS
parent and the action that reached it, so a shortest path to any state can be given;
states are canonical under VCPU symmetry. A protocol whose steps cannot run on arrays is
enumerated one state at a time instead. A step that misbehaves on a batch is located
again on concrete states, so the :class:`StepError` names the protocol's source file, the
step and the state. Used by ``regress``'s behaviours and by the corpus generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from deferral.checks.explicit.explore import Bfs
from deferral.checks.explicit.numpy_ops import NotVectorizable
from deferral.checks.explicit.packing import Packer
from deferral.checks.explicit.vectorized import reachable_levels
from deferral.checks.results import Path, path_from_parents
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model, State
from deferral.model.protocol import Protocol


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
    symmetric: bool = True  # one state per orbit under VCPU symmetry (False: every state)

    def __len__(self) -> int:
        return int(self.rows.shape[0])

    def path_to(self, n: int) -> Path:
        """A shortest path of real states from the initial state to (an image of) state ``n``."""
        return path_from_parents(self.model, self.parent, self.via, n, symmetry=self.symmetric)


def reachable(protocol: Protocol, bounds: Bounds, *, start: State | None = None,
              max_states: int | None = None, symmetry: bool = True) -> Reachable:
    """Enumerate the states reachable from ``start`` (default: the initial state), one per orbit
    under VCPU symmetry (``symmetry`` False: every state, for a protocol whose steps treat the
    VCPUs differently, where a reduced search would miss states).

    Raises :class:`TooManyStates` past ``max_states``, :class:`StepError` (with the
    state) when a step misbehaves. A protocol whose steps cannot run on arrays is
    enumerated one state at a time instead.
    """
    model = Model(protocol, bounds)
    try:
        return _reachable_np(model, start, max_states, symmetry)
    except NotVectorizable:
        return _reachable_plain(model, start, max_states, symmetry)


def _reachable_np(model: Model, start: State | None, max_states: int | None, symmetry: bool) -> Reachable:
    """The fast search's own BFS (:func:`deferral.checks.explicit.vectorized.reachable_levels`)."""
    levels = reachable_levels(model, start=start, symmetry=symmetry, max_states=max_states, workers=1)
    if levels.stopped_by == "max-states":
        raise TooManyStates(f"{model.protocol.name} at {model.bounds.short()}: more than "
                            f"{max_states:,} states")
    parent = levels.parent.astype(np.int64)
    via = levels.via.astype(np.int32)
    parent[0] = via[0] = -1
    return Reachable(model, levels.keys, levels.packer.unpack(levels.keys), parent, via, levels.depth, symmetry)


def _reachable_plain(model: Model, start: State | None, max_states: int | None, symmetry: bool) -> Reachable:
    """The plain BFS (:class:`deferral.checks.explicit.explore.Bfs`), one state at a time."""
    bfs = Bfs(model, start=start, symmetry=symmetry, max_states=max_states)
    frontier, depth = [0], 0
    while frontier:
        for n in frontier:
            for _, m, _ in bfs.expand(n):
                if m is None:
                    raise TooManyStates(f"{model.protocol.name} at {model.bounds.short()}: more "
                                        f"than {max_states:,} states")
        frontier = bfs.next_level()
        if frontier:
            depth += 1
    states = bfs.states
    rows = np.array(states, dtype=np.int64).reshape(len(states), len(model.layout.slots))
    keys = Packer(model.layout, symmetry).canonical_keys(rows.astype(np.uint8 if max(model.layout.sizes) <= 256
                                                                 else np.uint16))
    return Reachable(model, keys, rows, np.array(bfs.parent, np.int64), np.array(bfs.via, np.int32), depth,
                     symmetry)


def goal_reachable(model: Model, start: State, goal: Callable[[Model, State], bool], *,
                   max_states: int | None = None) -> bool | None:
    """Is a state satisfying ``goal`` reachable from ``start`` (``start`` itself included)?

    None when more than ``max_states`` states are reachable (the question stays open). An
    AG EF counterexample is confirmed this way: its last state must have no path to a goal.
    """
    try:
        reach = reachable(model.protocol, model.bounds, start=start, max_states=max_states)
    except TooManyStates:
        return None
    return any(goal(reach.model, tuple(int(v) for v in row)) for row in reach.rows)
