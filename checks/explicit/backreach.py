"""AG EF over an edge list held in numpy arrays: backward reachability of goal states."""

from __future__ import annotations

from typing import Callable, Iterable, Iterator

import numpy as np

from deferral.checks.explicit import levelc

#: States per binary-search probe when building the CSR offsets (bounded temporaries).
_PROBE = 1 << 16


def unreachable_goal_np(n_states: int, src: np.ndarray | list[np.ndarray], dst: np.ndarray | list[np.ndarray],
                        goal: np.ndarray, poll: Callable[[], None] | None = None) -> int | None:
    """The least state number from which no goal state is reachable (None if there is none).

    Same answer as :func:`deferral.checks.explicit.liveness.unreachable_goal`, computed by a
    breadth-first search backwards from the goal states over a CSR of reversed edges.
    ``src``/``dst`` are arrays of state numbers (below 2**32) or lists of such pieces; a
    list is emptied as it is consumed, so the caller's copy of the edges is freed early.
    ``poll`` is called between bounded pieces of work (a time or memory limit raises there).
    """
    srcs = src if isinstance(src, list) else [np.asarray(src)]
    dsts = dst if isinstance(dst, list) else [np.asarray(dst)]
    total = sum(piece.shape[0] for piece in srcs)

    def pieces() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while srcs:
            yield srcs.pop(0), dsts.pop(0)
    return unreachable_goal_pieces(n_states, pieces(), total, goal, poll)


def unreachable_goal_pieces(n_states: int, edges: Iterable[tuple[np.ndarray, np.ndarray]], n_edges: int,
                            goal: np.ndarray, poll: Callable[[], None] | None = None) -> int | None:
    """:func:`unreachable_goal_np` over ``n_edges`` edges given as (sources, targets) pieces,
    each dropped once read (pieces read from a file one at a time: only the CSR is held)."""
    can = np.asarray(goal, dtype=bool).copy()
    if can.all():
        return None
    # CSR of reversed edges by sorting (target << 32 | source): no index array, 8 bytes per
    # edge; self-loops never help reach a goal and are left out
    packed = np.empty(n_edges, dtype=np.uint64)
    at = 0
    for s, d in edges:
        if poll is not None:
            poll()
        s, d = s.astype(np.uint64), d.astype(np.uint64)
        keep = s != d
        s, d = s[keep], d[keep]
        packed[at:at + s.shape[0]] = (d << np.uint64(32)) | s
        at += s.shape[0]
        del s, d, keep
    if at < packed.shape[0]:
        packed.resize(at, refcheck=False)  # in place: no copy of the edges
    packed.sort()
    # where each state's incoming edges start in the sorted array (n + 1 offsets, found by
    # binary search in bounded pieces: no per-state count arrays)
    starts = np.empty(n_states + 1, dtype=np.uint32 if at < 1 << 32 else np.int64)
    if not levelc.csr_starts(packed, starts):  # in C: one pass; here a binary search a state
        for a in range(0, n_states + 1, _PROBE):
            probe = np.arange(a, min(a + _PROBE, n_states + 1), dtype=np.uint64) << np.uint64(32)
            starts[a:a + probe.shape[0]] = np.searchsorted(packed, probe)
    preds = _low_words(packed)  # the sources, in the first half of packed's memory
    del packed
    # the goal states, as uint32 (state numbers are below 2**32), found in bounded slices
    frontier = np.concatenate([np.flatnonzero(can[a:a + _PROBE]).astype(np.uint32) + np.uint32(a)
                               for a in range(0, n_states, _PROBE)] or [np.zeros(0, np.uint32)])
    if levelc.backward(frontier, starts, preds, can, poll):  # the same search in C
        frontier = frontier[:0]
    while frontier.size:
        reached = []
        for piece in _pieces(frontier, starts):  # bounded temporaries on hub-heavy frontiers
            if poll is not None:
                poll()
            first = starts[piece].astype(np.int64)
            c = starts[piece + 1].astype(np.int64) - first
            total = int(c.sum())
            if total == 0:
                continue
            offsets = np.repeat(first - (np.cumsum(c) - c), c)
            offsets += np.arange(total)
            found = preds[offsets]
            del offsets
            found = found[~can[found]]
            can[found] = True  # marks duplicates too; each state enters the next frontier once
            reached.append(found)
        if not reached:
            break
        frontier = np.sort(np.concatenate(reached))  # sort-based dedup
        if frontier.size > 1:
            frontier = frontier[np.concatenate(([True], frontier[1:] != frontier[:-1]))]
    stuck = np.flatnonzero(~can)
    return int(stuck[0]) if stuck.size else None


def edges_by_source(degrees: Iterable[np.ndarray], targets: Iterable[np.ndarray]
                    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Edges stored grouped by source, as (sources, targets) pieces: ``degrees`` gives, in
    pieces, the number of edges out of states 0, 1, 2, ... and ``targets`` (in pieces of
    any size) their targets in that order. Each piece given is dropped once used."""
    stream = iter(targets)
    held = np.zeros(0, dtype=np.uint32)  # targets read but not yet given
    state = 0
    for deg in degrees:
        need = int(deg.sum(dtype=np.int64))
        parts = [held[:need]]
        got = parts[0].shape[0]
        held = held[need:]
        while got < need:
            piece = next(stream)
            parts.append(piece[:need - got])
            held = piece[need - got:]
            got += parts[-1].shape[0]
        dst = parts[0] if len(parts) == 1 else np.concatenate(parts)
        del parts
        src = np.repeat(np.arange(state, state + deg.shape[0], dtype=np.uint32), deg)
        state += deg.shape[0]
        del deg
        yield src, dst
        del src, dst


#: ``read(a, b)``: elements ``a..b-1`` of a column (out-degrees or targets), an explicit read.
Slice = Callable[[int, int], np.ndarray]


def unreachable_goal_streamed(n_states: int, degrees: Slice, targets: Slice, goal: np.ndarray,
                              poll: Callable[[], None] | None = None, piece: int = 1 << 20) -> int | None:
    """:func:`unreachable_goal_np` without the CSR (8 bytes an edge and 4 a state in memory):
    the edges, stored grouped by source (``degrees(a, b)``: out-degrees of states ``a..b-1``;
    ``targets(a, b)``: the targets in that order), are read again and again, ``piece`` states
    at a time from the last, each source marked once a target of it is marked, until a pass
    marks nothing. Memory: the marks (a byte a state) and a piece.

    Read from the last state back, an edge to a later-numbered state (most of them: BFS
    numbers states level by level) finds its target already marked in the same pass, so
    a pass follows whole chains of them; an edge back to an earlier state takes one more
    pass. Same answer as the CSR search: the marks are the least fixpoint of "a state with a
    marked successor is marked", from the goal states."""
    can = np.asarray(goal, dtype=bool).copy()
    if can.all():
        return None
    # where each piece's targets start (one forward pass over the out-degrees)
    firsts = list(range(0, n_states, piece))
    at = [0]
    for a in firsts:
        at.append(at[-1] + int(degrees(a, min(a + piece, n_states)).sum(dtype=np.int64)))
    changed = True
    while changed:
        changed = False
        for k in reversed(range(len(firsts))):
            if poll is not None:
                poll()
            a = firsts[k]
            deg = degrees(a, min(a + piece, n_states))
            if can[a:a + deg.shape[0]].all() or at[k] == at[k + 1]:
                continue
            dst = targets(at[k], at[k + 1])
            src = np.repeat(np.arange(a, a + deg.shape[0], dtype=np.uint32), deg)
            # within the piece too, from its last edge back: repeated until the piece is still
            while True:
                fresh = can[dst] & ~can[src]
                if not fresh.any():
                    break
                can[src[fresh]] = True
                changed = True
            del deg, dst, src
    stuck = np.flatnonzero(~can)
    return int(stuck[0]) if stuck.size else None


def _low_words(packed: np.ndarray) -> np.ndarray:
    """The low 32 bits of each ``uint64`` of ``packed``, moved in place into the first half
    of its memory, the other half given back: no second array of the edges' size.

    Blocks double in size, so block ``[a, b)`` (with ``b <= 2a``) reads ``[2a, 2b)`` in
    32-bit words, which no earlier block wrote to.
    """
    n = packed.shape[0]
    if n == 0 or not packed.flags.owndata or not packed.flags.c_contiguous:
        return packed.astype(np.uint32)
    words = packed.view(np.uint32)
    low = 0 if np.little_endian else 1
    words[0] = words[low]
    a = 1
    while a < n:
        b = min(2 * a, n)
        words[a:b] = words[2 * a + low:2 * b + low:2]
        a = b
    del words
    packed.resize((n + 1) // 2, refcheck=False)  # realloc: the upper half is freed
    return packed.view(np.uint32)[:n]


def _pieces(frontier: np.ndarray, starts: np.ndarray, budget: int = 1 << 18,
            max_states: int = 1 << 16) -> Iterator[np.ndarray]:
    """Split a frontier into pieces of at most ``max_states`` states and about ``budget``
    incoming edges: the temporaries of a piece stay small whatever the frontier's size."""
    for a in range(0, frontier.shape[0], max_states):
        part = frontier[a:a + max_states]
        total = int((starts[part + 1] - starts[part]).sum())
        if total <= budget:
            yield part
        else:
            yield from np.array_split(part, -(-total // budget))
