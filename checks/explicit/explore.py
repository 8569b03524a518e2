"""Breadth-first search over concrete states: the plain reference explorer.

It is simple and slow (one state at a time, in Python) and exists as the executable
definition of what a search must report: the vectorized explorer
(:mod:`deferral.checks.explicit.vectorized`) must agree with it exactly: counts, verdicts and
shortest counterexample lengths. Both keep, per state, its BFS parent and the action
that reached it, so a violation comes with a shortest path; with symmetry the stored
states are canonical and :func:`deferral.checks.results.path_from_parents` maps a
canonical path back to real VCPU numbers.
"""

from __future__ import annotations

import time
from typing import Callable, Iterator

from deferral.checks.explicit.liveness import unreachable_goal
from deferral.checks.results import (ALL_VIOLATED, Coverage, Outcome, Progress, ProgressFn, SearchResult,
                                     every_verdict_in, path_from_parents)
from deferral.model.concrete import Action, Model, State


class Bfs:
    """The one plain breadth-first search: stored states numbered in BFS order, each with its
    BFS parent and the action index that reached it (canonical states under symmetry).

    The caller walks the levels: :meth:`expand` each state of the frontier (start: ``[0]``),
    then :meth:`next_level` gives the states that level stored.
    """

    def __init__(self, model: Model, *, start: State | None = None, symmetry: bool = True,
                 max_states: int | None = None) -> None:
        self.model = model
        self.key: Callable[[State], State] = model.canonical if symmetry else (lambda s: s)
        first = self.key(model.initial if start is None else start)
        self.index: dict[State, int] = {first: 0}
        self.states: list[State] = [first]
        self.parent: list[int] = [-1]
        self.via: list[int] = [-1]
        self.max_states = max_states
        self._next: list[int] = []

    def expand(self, n: int) -> Iterator[tuple[Action, int | None, bool]]:
        """Each transition out of stored state ``n``: (action, target's number, whether it is new).

        A new target is stored; one that would pass ``max_states`` gives number None and ends
        the expansion (the caller stops the search)."""
        for action, succ in self.model.successors(self.states[n]):
            k = self.key(succ)
            m = self.index.get(k)
            if m is not None:
                yield action, m, False
                continue
            if self.max_states is not None and len(self.states) >= self.max_states:
                yield action, None, True
                return
            m = len(self.states)
            self.index[k] = m
            self.states.append(k)
            self.parent.append(n)
            self.via.append(action.index)
            self._next.append(m)
            yield action, m, True

    def next_level(self) -> list[int]:
        """The states stored since the last call (the next frontier)."""
        out, self._next = self._next, []
        return out


def explore(
    model: Model,
    *,
    symmetry: bool = True,
    max_states: int | None = None,
    time_limit: float | None = None,
    progress: ProgressFn | None = None,
    renamings: Callable[[State, int], None] | None = None,
    until_all_violated: bool = False,
) -> SearchResult:
    """Explore every reachable state of ``model``; report each property's outcome. ``renamings``:
    called on each state expanded, with its depth (the symmetry guard's check of a state against
    every renaming, see :class:`~deferral.checks.explicit.symmetry_guard.RenamingCheck`).
    ``until_all_violated``: where every property is an invariant, stop after the level where the
    last of them is first violated (``stopped_by`` ALL_VIOLATED; each path a shortest one)."""
    start = time.monotonic()
    bfs = Bfs(model, symmetry=symmetry, max_states=max_states)
    states = bfs.states
    edges: list[tuple[int, int]] = []
    first_bad: dict[str, int] = {}
    invariants = model.invariants
    frontier = [0]
    depth = 0
    transitions = 0
    stopped_by = None
    present = {a.step.name for a in model.actions}  # steps with instances at these bounds
    fired = {st.name: 0 for st in model.protocol.steps if st.name in present}
    enabled_in = dict(fired)
    checked = {prop.name: 0 for prop in model.protocol.properties}

    def check(n: int) -> None:
        for prop in invariants:
            if prop.name not in first_bad and not model.holds(prop, states[n]):
                first_bad[prop.name] = n

    check(0)
    while frontier and stopped_by is None:
        for n in frontier:
            if renamings is not None:
                renamings(states[n], depth)
            enabled: set[str] = set()
            for action, m, new in bfs.expand(n):
                transitions += 1
                fired[action.step.name] += 1
                enabled.add(action.step.name)
                if m is None:
                    stopped_by = "max-states"
                    break
                if new:
                    check(m)
                edges.append((n, m))
            for name in enabled:
                enabled_in[name] += 1
            if stopped_by is None and time_limit is not None and time.monotonic() - start > time_limit:
                stopped_by = "time-limit"
            if stopped_by:
                break
        nxt = bfs.next_level()
        if nxt:
            depth += 1
        for prop in invariants:  # evaluated through the level where it first fails
            if first_bad.get(prop.name, len(states)) >= len(states) - len(nxt):
                checked[prop.name] = len(states)
        frontier = nxt
        if frontier and stopped_by is None and every_verdict_in(until_all_violated, invariants, model.liveness,
                                                                first_bad):
            stopped_by = ALL_VIOLATED
        if progress:
            progress(Progress(len(states), transitions, depth, len(frontier), time.monotonic() - start))
    complete = stopped_by is None
    for prop in invariants:
        checked[prop.name] = max(checked[prop.name], 1)  # the initial state, at least
    for prop in model.liveness:
        checked[prop.name] = len(states) if complete else 0

    outcomes: list[Outcome] = []
    for prop in model.protocol.properties:
        if prop.kind == "invariant":
            if prop.name in first_bad:
                path = path_from_parents(model, bfs.parent, bfs.via, first_bad[prop.name], symmetry=symmetry)
                outcomes.append(Outcome(prop.name, "invariant", "violated", path))
            else:
                outcomes.append(Outcome(prop.name, "invariant", "holds" if complete else "unknown"))
        else:
            if not complete:
                outcomes.append(Outcome(prop.name, "liveness", "unknown"))
                continue
            goal = [model.holds(prop, s) for s in states]
            stuck = unreachable_goal(len(states), edges, goal)
            if stuck is None:
                outcomes.append(Outcome(prop.name, "liveness", "holds"))
            else:
                path = path_from_parents(model, bfs.parent, bfs.via, stuck, symmetry=symmetry)
                outcomes.append(Outcome(prop.name, "liveness", "violated", path))
    return SearchResult(model.protocol.name, model.bounds, symmetry, len(states), transitions, depth,
                        time.monotonic() - start, complete, stopped_by, outcomes,
                        coverage=Coverage(fired, enabled_in, checked), model=model)
