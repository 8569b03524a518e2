"""AG EF on an explicit state graph: which states cannot reach a goal state."""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Iterable, Sequence

if TYPE_CHECKING:
    from deferral.model.concrete import Model, State
    from deferral.model.protocol import Property


def unreachable_goal(n_states: int, edges: Iterable[tuple[int, int]], goal: Sequence[bool]) -> int | None:
    """The least-numbered state (first in BFS order) from which no goal state is reachable.

    States are ``0..n_states-1``; ``edges`` are (source, target) pairs. Returns None when
    every state can reach a goal state, i.e. AG EF goal holds from the initial state 0.
    """
    reverse: list[list[int]] = [[] for _ in range(n_states)]
    for a, b in edges:
        reverse[b].append(a)
    can = [bool(g) for g in goal]
    queue = deque(i for i in range(n_states) if can[i])
    while queue:
        b = queue.popleft()
        for a in reverse[b]:
            if not can[a]:
                can[a] = True
                queue.append(a)
    for i in range(n_states):
        if not can[i]:
            return i
    return None


def goal_reachable_from(model: "Model", prop: "Property", start: "State", limit: int = 1_000_000) -> bool | None:
    """Can a state where ``prop``'s goal holds be reached from ``start``? None past ``limit`` states.

    Used to confirm an AG EF counterexample: its last state must have no path to the goal.
    """
    if model.holds(prop, start):
        return True
    seen = {start}
    frontier = [start]
    while frontier:
        nxt = []
        for state in frontier:
            for _, succ in model.successors(state):
                if succ in seen:
                    continue
                if model.holds(prop, succ):
                    return True
                if len(seen) >= limit:
                    return None
                seen.add(succ)
                nxt.append(succ)
        frontier = nxt
    return False
