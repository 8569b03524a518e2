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

from deferral.checks.explicit import levelc
from deferral.checks.explicit.parallel import ordered_map

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
    position's index into the distinct keys. Two-word keys in C (:func:`levelc.distinct_first`),
    where numpy compares void keys a byte at a time; one-word keys by numpy's stable argsort,
    which finds the sorted runs the chunks' candidates come in (twice as fast as the radix sort)."""
    done = levelc.distinct_first(keys) if keys.dtype.kind == "V" else None
    if done is not None:
        return done[0], done[1], done[2] if want_group else None
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.ones(keys.shape[0], dtype=bool)
    if sorted_keys.dtype.kind == "V":  # keys of three or more words: numpy's ufunc has no void loop
        first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    else:
        np.not_equal(sorted_keys[1:], sorted_keys[:-1], out=first[1:])
    distinct = sorted_keys[first]
    group = None
    if want_group:  # the running sum in the sorted keys' buffer, spent by now: no temporaries
        rank = sorted_keys.view(np.int64) if sorted_keys.dtype.itemsize == 8 else np.empty(keys.shape[0], np.int64)
        np.cumsum(first, out=rank)
        rank -= 1
        group = np.empty(keys.shape[0], dtype=np.int64)
        group[order] = rank
        del rank
    return distinct, order[first], group


def merge_run(parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    """Consecutive chunks' candidates (``parts``: each chunk's sorted unique keys, parent rows
    and actions, in chunk order) as one run: the distinct keys sorted, each with the parent
    and action of the earliest chunk that has it (as the level's merge would choose), and per
    chunk where each of its candidates is in the run (``uint32``)."""
    every = np.concatenate([q[0] for q in parts])
    if every.shape[0] == 0:
        return every, parts[0][1][:0], parts[0][2][:0], [np.zeros(0, np.uint32) for _ in parts]
    keys, at_first, group = distinct_first(every, want_group=True)
    del every
    assert group is not None
    parents = np.concatenate([q[1] for q in parts])[at_first]
    actions = np.concatenate([q[2] for q in parts])[at_first]
    del at_first
    slots, o = [], 0
    for q in parts:
        n = q[0].shape[0]
        slots.append(group[o:o + n].astype(np.uint32))
        o += n
    return keys, parents, actions, slots


def sample(keys: np.ndarray) -> np.ndarray:
    """What the merge keeps of a chunk's sorted candidate keys to place its splitters."""
    return keys[::SAMPLE].copy()


def pieces(sizes: list[int], samples: list[np.ndarray], read: Reader, piece: int = PIECE,
           workers: int = 1, read_keys: Callable[[int, int, int], np.ndarray] | None = None) -> Iterator[Piece]:
    """The merge of the chunks' candidates (``sizes[i]`` sorted unique keys in chunk ``i``,
    ``samples[i]`` = :func:`sample` of them), a key range at a time, in key order. Each range
    is found and merged on its own (where each chunk's keys cross its splitters, then
    :func:`distinct_first`), by ``workers`` threads (the C merge runs without the GIL).
    ``read_keys(chunk, a, b)``: the keys alone (where each chunk crosses a splitter is found
    once, from a slice of its keys)."""
    every = np.concatenate(samples) if samples else np.zeros(0)
    every.sort()
    step = max(1, piece // SAMPLE)
    splitters = list(every[step::step])  # a piece takes the keys below its splitter
    del every

    known: dict[tuple[int, int], int] = {}  # bounds found (each is needed by two pieces)

    def bound(i: int, p: int) -> int:
        """Where chunk i's keys reach splitter p (its first key at or above it; past the last: all)."""
        if p >= len(splitters):
            return sizes[i]
        got = known.pop((i, p), None)  # the piece before or after found it (dropped: used twice)
        if got is None:
            got = known[(i, p)] = find(i, p)
        return got

    def find(i: int, p: int) -> int:
        n = sizes[i]
        s = splitters[p]
        j = int(np.searchsorted(samples[i], s))  # samples[j - 1] < s <= samples[j]
        if j == 0:
            return 0
        lo, hi = (j - 1) * SAMPLE + 1, min(n, j * SAMPLE)
        if hi <= lo:
            return hi
        keys = read_keys(i, lo, hi) if read_keys is not None else read(i, lo, hi)[0]
        return lo + int(np.searchsorted(keys, np.asarray([s], dtype=keys.dtype))[0])

    def merge(p: int) -> Piece | None:
        parts, owners = [], []
        for i in range(len(sizes)):
            a = bound(i, p - 1) if p else 0
            b = bound(i, p)
            if b > a:
                parts.append(read(i, a, b))
                owners.append((i, a, b))
        if not parts:
            return None
        new_keys, at_first, group = distinct_first(np.concatenate([q[0] for q in parts]), want_group=True)
        assert group is not None
        par = np.concatenate([q[1] for q in parts])[at_first]
        act = np.concatenate([q[2] for q in parts])[at_first]
        del parts, at_first
        slices, o = [], 0
        for i, a, b in owners:
            slices.append((i, a, b, group[o:o + b - a]))
            o += b - a
        return Piece(new_keys, par, act, slices)

    for got in ordered_map(merge, len(splitters) + 1, workers):
        if got is not None:
            yield got
