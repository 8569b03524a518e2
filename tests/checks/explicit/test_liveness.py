"""AG EF: the numpy backward pass of the fast search against networkx, on random graphs."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deferral.checks.explicit.backreach import (edges_by_source, unreachable_goal_np, unreachable_goal_pieces,
                                               unreachable_goal_streamed)
from deferral.checks.explicit.liveness import unreachable_goal


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, list[tuple[int, int]], list[bool]]:
    n = draw(st.integers(1, 30))
    edges = draw(st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), max_size=80))
    goal = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    return n, edges, goal


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_backward_pass_agrees_with_networkx(graph: tuple[int, list[tuple[int, int]], list[bool]]) -> None:
    n, edges, goal = graph
    src = np.array([a for a, _ in edges], dtype=np.int64)
    dst = np.array([b for _, b in edges], dtype=np.int64)
    assert unreachable_goal_np(n, src, dst, np.array(goal)) == unreachable_goal(n, edges, goal)


def test_a_state_with_no_way_to_the_goal_is_found() -> None:
    # 0 -> 1 -> 2 (goal), 0 -> 3 -> 3: state 3 loops forever away from the goal
    assert unreachable_goal(4, [(0, 1), (1, 2), (0, 3), (3, 3)], [False, False, True, False]) == 3
    assert unreachable_goal(3, [(0, 1), (1, 2)], [False, False, True]) is None
    assert unreachable_goal(2, [], [False, True]) == 0


@settings(max_examples=200, deadline=None)
@given(graphs(), st.lists(st.integers(1, 7), min_size=1, max_size=5), st.lists(st.integers(1, 9), min_size=1, max_size=5))
def test_edges_stored_by_out_degree_give_back_every_edge(graph: tuple[int, list[tuple[int, int]], list[bool]],
                                                         deg_cuts: list[int], dst_cuts: list[int]) -> None:
    """Edges grouped by source (out-degree per state, targets in that order), read back from
    pieces cut anywhere, are the same edges, and AG EF over them gives the same answer."""
    n, edges, goal = graph
    edges = sorted(edges, key=lambda e: e[0])
    degrees = np.bincount(np.array([a for a, _ in edges], dtype=np.int64), minlength=n).astype(np.uint8)
    targets = np.array([b for _, b in edges], dtype=np.uint32)

    def cut(a: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
        out, at, i = [], 0, 0
        while at < a.shape[0]:
            out.append(a[at:at + sizes[i % len(sizes)]])
            at += sizes[i % len(sizes)]
            i += 1
        return out
    pieces = list(edges_by_source(cut(degrees, deg_cuts), cut(targets, dst_cuts)))
    got = [(int(s), int(d)) for src, dst in pieces for s, d in zip(src, dst)]
    assert got == [(a, b) for a, b in edges]
    again = edges_by_source(cut(degrees, deg_cuts), cut(targets, dst_cuts))
    assert unreachable_goal_pieces(n, again, len(edges), np.array(goal)) == unreachable_goal(n, edges, goal)


@settings(max_examples=300, deadline=None)
@given(graphs(), st.integers(1, 8))
def test_the_streamed_pass_agrees_with_networkx(graph: tuple[int, list[tuple[int, int]], list[bool]],
                                                piece: int) -> None:
    """The pass that reads the edges again and again (pieces of ``piece`` states, from the
    last) gives the CSR search's answer."""
    n, edges, goal = graph
    edges = sorted(edges, key=lambda e: e[0])
    degrees = np.bincount(np.array([a for a, _ in edges], dtype=np.int64), minlength=n).astype(np.uint8)
    targets = np.array([b for _, b in edges], dtype=np.uint32)
    got = unreachable_goal_streamed(n, lambda a, b: degrees[a:b], lambda a, b: targets[a:b], np.array(goal),
                                    piece=piece)
    assert got == unreachable_goal(n, edges, goal)
