"""The visited set: sorted runs of state keys with their state numbers, merged geometrically.

Lookups are ``searchsorted`` of a *sorted* batch of queries into each run (binary search
over sorted queries walks memory forward, which is what makes it fast). A run is merged
into the previous one while it is at least half as big, so there are O(log n) runs and
each key is moved O(log n) times. Keys are ``uint64`` or big-endian ``void`` words (see
:mod:`deferral.checks.explicit.packing`); both sort and compare in key order.

A run is held as a list of *blocks* (sorted, consecutive pieces of it: at most
``max(MIN_BLOCK, run size / BLOCKS_PER_RUN)`` keys each) with the first key of each
block as its fence. A merge streams its two runs block by block, dropping each input
block once it is consumed, so it needs a few blocks of temporaries beyond what is stored,
not a second copy of the runs (a merge into one array held both: 24 bytes a key at the
last big merge, the peak of the search). A lookup cuts the sorted queries at the fences
and searches each block for its slice; the compiled loop
(:func:`deferral.checks.explicit.jit_loops.lookup_run`) takes a block like a run.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from deferral.checks.explicit import jit as jit_switch
from deferral.checks.explicit import levelc

#: Keys of the smallest block (512 KiB of uint64 keys; a merge's temporaries are a few blocks,
#: about 24 bytes a key of a block); a run has at most BLOCKS_PER_RUN blocks above that (so a
#: lookup loops over a bounded number of blocks per run).
MIN_BLOCK = 1 << 16
BLOCKS_PER_RUN = 64


@dataclass
class Run:
    """One sorted run: consecutive blocks of keys and their state numbers."""

    keys: list[np.ndarray] = field(default_factory=list)
    ids: list[np.ndarray] = field(default_factory=list)
    fences: np.ndarray | None = None  # first key of each block (set by :meth:`seal`)

    @property
    def size(self) -> int:
        return sum(k.shape[0] for k in self.keys)

    @property
    def nbytes(self) -> int:
        return sum(k.nbytes + i.nbytes for k, i in zip(self.keys, self.ids))

    def seal(self) -> "Run":
        self.fences = np.array([k[0] for k in self.keys], dtype=self.keys[0].dtype) if self.keys else None
        return self

    def lookup(self, queries: np.ndarray, out: np.ndarray, loops: object | None) -> None:
        """``out[i]`` = the state number of ``queries[i]`` (sorted) where this run has it."""
        if len(self.keys) == 1:
            _lookup_block(self.keys[0], self.ids[0], queries, out, loops)
            return
        assert self.fences is not None
        cut = np.searchsorted(queries, self.fences)
        cut = np.append(cut, queries.shape[0])
        for b, (keys, ids) in enumerate(zip(self.keys, self.ids)):
            lo, hi = int(cut[b]), int(cut[b + 1])
            if lo < hi:
                _lookup_block(keys, ids, queries[lo:hi], out[lo:hi], loops)


def _lookup_block(keys: np.ndarray, ids: np.ndarray, queries: np.ndarray, out: np.ndarray,
                  loops: object | None) -> None:
    if loops is not None:
        loops.lookup_run(keys, ids, queries, out)  # type: ignore[attr-defined]
        return
    pos = np.searchsorted(keys, queries)
    np.minimum(pos, keys.shape[0] - 1, out=pos)
    hit = keys[pos] == queries
    out[hit] = ids[pos[hit]]


def block_size(total: int) -> int:
    """Keys per block of a run of ``total`` keys."""
    return max(MIN_BLOCK, -(-total // BLOCKS_PER_RUN))


def as_run(keys: np.ndarray, ids: np.ndarray) -> Run:
    """A run of one sorted array (cut into blocks: views of it)."""
    step = block_size(keys.shape[0])
    return Run([keys[a:a + step] for a in range(0, keys.shape[0], step)],
               [ids[a:a + step] for a in range(0, keys.shape[0], step)]).seal()


class Visited:
    """A set of keys, each with a state number (``uint32``, or ``int64`` past 2**32 states)."""

    def __init__(self, key_dtype: object, jit: bool | None = None) -> None:
        """``jit``: look up uint64 keys with the compiled loop (:mod:`deferral.checks.explicit.jit`):
        None (default) batches of at least ``jit.MIN_ROWS`` queries into a set of at least
        ``jit.AFTER_STATES`` keys, when ``jit.enabled()``; True every batch (numba permitting);
        False none (``searchsorted``)."""
        self._jit_min_rows: int | None = None
        self._jit_after = 0 if jit else jit_switch.AFTER_STATES
        if np.dtype(key_dtype) == np.uint64:  # type: ignore[call-overload]
            if jit is None:
                self._jit_min_rows = jit_switch.MIN_ROWS if jit_switch.enabled() else None
            elif jit and jit_switch.available():
                self._jit_min_rows = 0
        self._runs: list[Run] = []
        self.key_dtype = key_dtype
        self.count = 0

    @property
    def jit(self) -> bool:
        """Whether (big enough) lookups take the compiled loop."""
        return self._jit_min_rows is not None

    def __len__(self) -> int:
        return self.count

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self._runs)

    def lookup(self, queries: np.ndarray) -> np.ndarray:
        """The state number of each (sorted) query key, or -1 where it is not in the set."""
        out = np.full(queries.shape[0], -1, dtype=np.int64)
        if queries.shape[0] == 0:
            return out
        loops = None
        if (self._jit_min_rows is not None and queries.shape[0] >= self._jit_min_rows
                and self.count >= self._jit_after):
            loops = jit_switch.loops()
            queries = np.ascontiguousarray(queries)
        for run in list(self._runs):
            run.lookup(queries, out, loops)
        return out

    def runs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every block of every run as (keys, state numbers), largest run first: sorted, disjoint
        arrays (a key is in one of them), for a lookup of one's own (the compiled dedup)."""
        return [(k, i) for run in self._runs for k, i in zip(run.keys, run.ids)]

    def sorted_runs(self) -> list[Run]:
        """The sorted runs, largest first: what a checkpoint saves (block by block)."""
        return list(self._runs)

    def set_runs(self, runs: list[Run]) -> None:
        """Replace the contents by ``runs`` as returned by :meth:`sorted_runs` (a checkpoint's)."""
        self._runs = [Run([np.asarray(k, dtype=self.key_dtype) for k in r.keys],
                          [np.asarray(i) for i in r.ids]).seal() for r in runs if r.keys]
        self.count = sum(r.size for r in self._runs)

    def clear(self) -> None:
        """Drop every run (a lookup running beside it goes on over the runs it started with)."""
        self._runs, self.count = [], 0

    def add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Add sorted, new keys with their state numbers."""
        if keys.shape[0] == 0:
            return
        self._runs.append(as_run(keys, ids))
        self.count += keys.shape[0]
        while len(self._runs) > 1 and self._runs[-1].size * 2 >= self._runs[-2].size:
            b, a = self._runs.pop(), self._runs.pop()
            merged = merge_runs(a, b)  # a and b are consumed (their blocks dropped as merged)
            self._runs.append(merged)


def merge_runs(a: Run, b: Run) -> Run:
    """Merge two sorted runs of disjoint keys, a block at a time: each input block is dropped
    from ``a`` and ``b`` (emptied) once merged, so the temporaries are a few blocks."""
    step = block_size(a.size + b.size)
    if (a.keys and b.keys and all(i.dtype == np.uint32 for i in (*a.ids, *b.ids))
            and levelc.available(a.keys[0].dtype, np.uint32)):  # in C, without the GIL
        keys, ids = levelc.merge_blocks(a.keys, a.ids, b.keys, b.ids, step)
        return Run(keys, ids).seal()
    ids_dtype = np.result_type(*(a.ids[:1] or [np.zeros(0, np.uint32)]), *(b.ids[:1] or [np.zeros(0, np.uint32)]))
    qa, qb = deque(zip(a.keys, a.ids)), deque(zip(b.keys, b.ids))
    a.keys, a.ids, b.keys, b.ids = [], [], [], []
    out = Run()
    pend_k: list[np.ndarray] = []
    pend_i: list[np.ndarray] = []
    pending = 0
    ak = ai = bk = bi = None
    while True:
        if (ak is None or ak.shape[0] == 0) and qa:
            ak, ai = qa.popleft()
        if (bk is None or bk.shape[0] == 0) and qb:
            bk, bi = qb.popleft()
        a_empty = ak is None or ak.shape[0] == 0
        b_empty = bk is None or bk.shape[0] == 0
        if a_empty and b_empty:
            break
        if b_empty:
            mk, mi, ak, ai = ak, ai, None, None
        elif a_empty:
            mk, mi, bk, bi = bk, bi, None, None
        else:
            assert ak is not None and ai is not None and bk is not None and bi is not None
            # every key up to the smaller of the two last keys can be placed (searchsorted, not
            # ``<``: multi-word keys are void words, which sort but have no comparison ufunc)
            na = int(np.searchsorted(ak, bk[-1:], side="right")[0])
            nb = bk.shape[0]
            if na == ak.shape[0]:
                nb = int(np.searchsorted(bk, ak[-1:], side="right")[0])
            mk, mi = _merge(ak[:na], ai[:na], bk[:nb], bi[:nb])
            ak, ai, bk, bi = ak[na:], ai[na:], bk[nb:], bi[nb:]
        pend_k.append(mk)
        pend_i.append(mi.astype(ids_dtype, copy=False))
        pending += mk.shape[0]
        del mk, mi
        while pending >= step:
            pk, pi = np.concatenate(pend_k), np.concatenate(pend_i)
            out.keys.append(pk[:step].copy())
            out.ids.append(pi[:step].copy())
            pend_k, pend_i, pending = [pk[step:].copy()], [pi[step:].copy()], pk.shape[0] - step
            del pk, pi
    if pending:
        out.keys.append(np.concatenate(pend_k))
        out.ids.append(np.concatenate(pend_i))
    return out.seal()


def _merge(a: np.ndarray, ai: np.ndarray, b: np.ndarray, bi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge two sorted, disjoint arrays in linear time (positions by searchsorted)."""
    pos_b = np.searchsorted(a, b)
    pos_b += np.arange(b.shape[0], dtype=pos_b.dtype)
    total = a.shape[0] + b.shape[0]
    is_b = np.zeros(total, dtype=bool)
    is_b[pos_b] = True
    keys = np.empty(total, dtype=a.dtype)
    ids = np.empty(total, dtype=np.result_type(ai.dtype, bi.dtype))
    keys[pos_b] = b
    ids[pos_b] = bi
    np.logical_not(is_b, out=is_b)
    keys[is_b] = a
    ids[is_b] = ai
    return keys, ids
