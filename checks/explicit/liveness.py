"""AG EF on an explicit state graph: which states cannot reach a goal state."""

from __future__ import annotations

from typing import Iterable, Sequence


def unreachable_goal(n_states: int, edges: Iterable[tuple[int, int]], goal: Sequence[bool]) -> int | None:
    """The least-numbered state (first in BFS order) from which no goal state is reachable.

    States are ``0..n_states-1``; ``edges`` are (source, target) pairs. Returns None when
    every state can reach a goal state, i.e. AG EF goal holds from the initial state 0.
    The graph work is networkx's: every goal state gets an edge to one extra sink node,
    and the states that can reach a goal are exactly the sink's ancestors. networkx is
    imported here: the fast search never needs it (about 20 MB resident, 0.7 s to import).
    """
    import networkx as nx  # only the plain explorer's liveness pass uses it

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
