"""A BFS level's merge: the chunks' sorted candidate keys merged a key range at a time.

Each chunk of a level gives its new candidate keys sorted and unique, with the frontier row
and action that first reached each. The level's new states are their union in key order,
each reached by its first chunk (chunk order: what a sequential search would find first).
Merging all candidates at once holds about 64 bytes a candidate of the level; here the key
space is cut at splitters taken from a sample of every chunk's keys (every
:data:`SAMPLE`-th), so each piece holds about :data:`PIECE` candidates whatever the level's
width, and the chunks' arrays are read a slice at a time (from memory or from the work
folder, see :class:`deferral.checks.explicit.spill.Parked`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

#: Candidates merged at a time (about): the merge's temporaries are some 50 bytes each.
PIECE = 1 << 17
#: Every SAMPLE-th key of a chunk's candidates is kept to place the splitters.
SAMPLE = 64

#: ``read(chunk, a, b)``: candidates ``a..b-1`` of a chunk as (keys, parent rows, actions).
Reader = Callable[[int, int, int], tuple[np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class Piece:
    """The level's distinct candidates in one key range, with where each chunk's fall."""

    keys: np.ndarray  # distinct candidate keys of the range, sorted
    parents: np.ndarray  # the frontier row (level-local) first reaching each
    actions: np.ndarray  # and its action
    # per chunk with candidates in the range: (chunk, a, b, the index in ``keys`` of each of
    # its candidates a..b-1)
    slices: list[tuple[int, int, int, np.ndarray]]


def distinct_first(keys: np.ndarray, want_group: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The distinct ``keys`` in key order, the first position of each in ``keys`` (a stable
    sort: the earliest of equal keys wins; fast on sorted runs), and (``want_group``) each
    position's index into the distinct keys."""
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.ones(keys.shape[0], dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    group = None
    if want_group:
        group = np.empty(keys.shape[0], dtype=np.int64)
        group[order] = np.cumsum(first) - 1
    return sorted_keys[first], order[first], group


def sample(keys: np.ndarray) -> np.ndarray:
    """What the merge keeps of a chunk's sorted candidate keys to place its splitters."""
    return keys[::SAMPLE].copy()


def pieces(sizes: list[int], samples: list[np.ndarray], read: Reader, piece: int = PIECE) -> Iterator[Piece]:
    """The merge of the chunks' candidates (``sizes[i]`` sorted unique keys in chunk ``i``,
    ``samples[i]`` = :func:`sample` of them), a key range at a time, in key order."""
    every = np.concatenate(samples) if samples else np.zeros(0)
    every.sort()
    step = max(1, piece // SAMPLE)
    splitters = list(every[step::step])  # a piece takes the keys below its splitter
    del every
    at = [0] * len(sizes)
    for s in [*splitters, None]:
        parts, owners = [], []
        for i, n in enumerate(sizes):
            a = at[i]
            if a >= n:
                continue
            if s is None:
                b = n
                keys, par, act = read(i, a, b)
            else:  # the chunk's first sampled key at or above s bounds what to read
                j = int(np.searchsorted(samples[i], s))
                ub = min(n, j * SAMPLE)
                if ub <= a:
                    continue
                keys, par, act = read(i, a, ub)
                cut = int(np.searchsorted(keys, np.asarray([s], dtype=keys.dtype))[0])
                if cut == 0:
                    continue
                b = a + cut
                keys, par, act = keys[:cut], par[:cut], act[:cut]
            parts.append((keys, par, act))
            owners.append((i, a, b))
            at[i] = b
        if not parts:
            continue
        new_keys, at_first, group = distinct_first(np.concatenate([p[0] for p in parts]), want_group=True)
        assert group is not None
        par = np.concatenate([p[1] for p in parts])[at_first]
        act = np.concatenate([p[2] for p in parts])[at_first]
        del parts, at_first
        slices, o = [], 0
        for i, a, b in owners:
            slices.append((i, a, b, group[o:o + b - a]))
            o += b - a
        yield Piece(new_keys, par, act, slices)
