"""AG EF on an explicit state graph: which states cannot reach a goal state."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Sequence

import networkx as nx

if TYPE_CHECKING:
    from deferral.model.concrete import Model, State
    from deferral.model.protocol import Property


def unreachable_goal(n_states: int, edges: Iterable[tuple[int, int]], goal: Sequence[bool]) -> int | None:
    """The least-numbered state (first in BFS order) from which no goal state is reachable.

    States are ``0..n_states-1``; ``edges`` are (source, target) pairs. Returns None when
    every state can reach a goal state, i.e. AG EF goal holds from the initial state 0.
    The graph work is networkx's: every goal state gets an edge to one extra sink node,
    and the states that can reach a goal are exactly the sink's ancestors.
    """
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n_states))
    graph.add_edges_from(edges)
    sink = n_states
    graph.add_edges_from((i, sink) for i in range(n_states) if goal[i])
    can = nx.ancestors(graph, sink) if graph.has_node(sink) else set()
    for i in range(n_states):
        if i not in can:
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
