"""AG EF over an edge list held in numpy arrays: backward reachability of goal states."""

from __future__ import annotations

import numpy as np


def unreachable_goal_np(n_states: int, src: np.ndarray, dst: np.ndarray, goal: np.ndarray) -> int | None:
    """The least state number from which no goal state is reachable (None if there is none).

    State numbers must be below 2**32.

    Same answer as :func:`deferral.checks.liveness.unreachable_goal`, computed by a
    breadth-first search backwards from the goal states over a CSR of reversed edges.
    """
    can = np.asarray(goal, dtype=bool).copy()
    if can.all():
        return None
    src = np.asarray(src)
    dst = np.asarray(dst)
    loops = src == dst  # self-loops never help reach a goal
    if loops.any():
        src, dst = src[~loops], dst[~loops]
    # CSR of reversed edges by sorting (target << 32 | source): no index array, 8 bytes per edge
    packed = (dst.astype(np.uint64) << np.uint64(32)) | src.astype(np.uint64)
    packed.sort()
    preds = (packed & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    del packed
    counts = np.bincount(dst, minlength=n_states)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    frontier = np.flatnonzero(can)
    while frontier.size:
        c = counts[frontier]
        total = int(c.sum())
        if total == 0:
            break
        offsets = np.repeat(starts[frontier] - (np.cumsum(c) - c), c) + np.arange(total)
        found = preds[offsets]
        found = np.sort(found[~can[found]])  # sort-based dedup
        if found.size > 1:
            found = found[np.concatenate(([True], found[1:] != found[:-1]))]
        can[found] = True
        frontier = found
    stuck = np.flatnonzero(~can)
    return int(stuck[0]) if stuck.size else None
