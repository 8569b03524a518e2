"""The visited set: sorted runs of state keys with their state numbers, merged geometrically.

Lookups are ``searchsorted`` of a *sorted* batch of queries into each run (binary search
over sorted queries walks memory forward, which is what makes it fast). A run is merged
into the previous one while it is at least half as big, so there are O(log n) runs and
each key is moved O(log n) times. Keys are ``uint64`` or big-endian ``void`` words (see
:mod:`deferral.checks.explicit.packing`); both sort and compare in key order.
"""

from __future__ import annotations

import numpy as np

from deferral.checks.explicit import jit as jit_switch


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
        self._keys: list[np.ndarray] = []
        self._ids: list[np.ndarray] = []
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
        return sum(k.nbytes + i.nbytes for k, i in zip(self._keys, self._ids))

    def lookup(self, queries: np.ndarray) -> np.ndarray:
        """The state number of each (sorted) query key, or -1 where it is not in the set."""
        out = np.full(queries.shape[0], -1, dtype=np.int64)
        if queries.shape[0] == 0:
            return out
        loops = None
        if (self._jit_min_rows is not None and queries.shape[0] >= self._jit_min_rows
                and self.count >= self._jit_after):
            loops = jit_switch.loops()
        for keys, ids in zip(self._keys, self._ids):
            if loops is not None:
                loops.lookup_run(keys, ids, np.ascontiguousarray(queries), out)
                continue
            pos = np.searchsorted(keys, queries)
            np.minimum(pos, keys.shape[0] - 1, out=pos)
            hit = keys[pos] == queries
            out[hit] = ids[pos[hit]]
        return out

    def runs(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The sorted runs (keys, state numbers), largest first: what a checkpoint saves."""
        return list(zip(self._keys, self._ids))

    def set_runs(self, runs: list[tuple[np.ndarray, np.ndarray]]) -> None:
        """Replace the contents by ``runs`` as returned by :meth:`runs` (a checkpoint's)."""
        self._keys = [np.asarray(k, dtype=self.key_dtype) for k, _ in runs]
        self._ids = [np.asarray(i) for _, i in runs]
        self.count = sum(k.shape[0] for k in self._keys)

    def clear(self) -> None:
        """Drop every run (a lookup running beside it goes on over the runs it started with)."""
        self._keys, self._ids, self.count = [], [], 0

    def add(self, keys: np.ndarray, ids: np.ndarray) -> None:
        """Add sorted, new keys with their state numbers."""
        if keys.shape[0] == 0:
            return
        self._keys.append(keys)
        self._ids.append(ids)
        self.count += keys.shape[0]
        while len(self._keys) > 1 and self._keys[-1].shape[0] * 2 >= self._keys[-2].shape[0]:
            b, bi = self._keys.pop(), self._ids.pop()
            a, ai = self._keys.pop(), self._ids.pop()
            merged, mids = _merge(a, ai, b, bi)
            self._keys.append(merged)
            self._ids.append(mids)


def _merge(a: np.ndarray, ai: np.ndarray, b: np.ndarray, bi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge two sorted, disjoint runs in linear time (positions by searchsorted)."""
    pos_b = np.searchsorted(a, b) + np.arange(b.shape[0])
    total = a.shape[0] + b.shape[0]
    is_b = np.zeros(total, dtype=bool)
    is_b[pos_b] = True
    keys = np.empty(total, dtype=a.dtype)
    ids = np.empty(total, dtype=np.result_type(ai.dtype, bi.dtype))
    keys[pos_b] = b
    ids[pos_b] = bi
    keys[~is_b] = a
    ids[~is_b] = ai
    return keys, ids
