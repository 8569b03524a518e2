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
from deferral.checks.explicit.liveness import unreachable_goal
from deferral.checks.results import Coverage, Outcome, Progress, ProgressFn, SearchResult, path_from_parents
from deferral.model.concrete import Model, State


def explore(
    model: Model,
    *,
    symmetry: bool = True,
    max_states: int | None = None,
    time_limit: float | None = None,
    progress: ProgressFn | None = None,
) -> SearchResult:
    """Explore every reachable state of ``model``; report each property's outcome."""
    start = time.monotonic()
    key = model.canonical if symmetry else (lambda s: s)
    init = key(model.initial)
    index: dict[State, int] = {init: 0}
    states: list[State] = [init]
    parent: list[int] = [-1]
    via: list[int] = [-1]
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
        nxt: list[int] = []
        for n in frontier:
            enabled: set[str] = set()
            for action, succ in model.successors(states[n]):
                transitions += 1
                fired[action.step.name] += 1
                enabled.add(action.step.name)
                k = key(succ)
                m = index.get(k)
                if m is None:
                    if max_states is not None and len(states) >= max_states:
                        stopped_by = "max-states"
                        break
                    m = len(states)
                    index[k] = m
                    states.append(k)
                    parent.append(n)
                    via.append(action.index)
                    nxt.append(m)
                    check(m)
                edges.append((n, m))
            for name in enabled:
                enabled_in[name] += 1
            if stopped_by is None and time_limit is not None and time.monotonic() - start > time_limit:
                stopped_by = "time-limit"
            if stopped_by:
                break
        if nxt:
            depth += 1
        for prop in invariants:  # evaluated through the level where it first fails
            if first_bad.get(prop.name, len(states)) >= len(states) - len(nxt):
                checked[prop.name] = len(states)
        frontier = nxt
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
                path = path_from_parents(model, parent, via, first_bad[prop.name], symmetry=symmetry)
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
                path = path_from_parents(model, parent, via, stuck, symmetry=symmetry)
                outcomes.append(Outcome(prop.name, "liveness", "violated", path))
    return SearchResult(model.protocol.name, model.bounds, symmetry, len(states), transitions, depth,
                        time.monotonic() - start, complete, stopped_by, outcomes,
                        coverage=Coverage(fired, enabled_in, checked), model=model)
