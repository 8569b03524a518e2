"""Compiled loops of the explicit search (numba): canonical keys, visited lookups, unpacking.

Each loop computes exactly what the numpy path of :mod:`deferral.checks.explicit.packing`
and :mod:`deferral.checks.explicit.visited` computes, one row at a time with integer
arithmetic and no temporaries. The loops are compiled with ``nogil=True`` (the search's
worker threads run them truly in parallel) and ``cache=True`` (compiled once per machine,
loaded from numba's cache afterwards). Importing this module imports numba: only
:func:`deferral.checks.explicit.jit.loops` does, when a batch is big enough.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def canonical_words(rows: np.ndarray, src: np.ndarray, remap: np.ndarray, rename: np.ndarray,
                    place: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """``out[r]``: the key words (uint64) of the least image of ``rows[r]``.

    Image ``p`` of a row: digit ``j`` is ``v = row[src[p, j]]``, renamed to ``rename[p, v]``
    where ``remap[p, j]``; image 0 must be the row itself (the identity). Each image is
    compared with the least so far up to their first differing digit (most rows differ
    early: the layout starts with each VCPU's own slots), then the least is packed: word
    ``w`` is ``sum(image[j] * place[w, j])`` (``place[w, j]`` is 0 for a slot of another
    word), straight from the row when that is least, as it is for most successors.
    """
    m, n_slots = rows.shape
    n_perm = src.shape[0]
    n_words = place.shape[0]
    image = np.empty(n_slots, dtype=rows.dtype)
    for r in range(m):
        best = 0
        for p in range(1, n_perm):
            for j in range(n_slots):
                v = rows[r, src[p, j]]
                if remap[p, j]:
                    v = rename[p, v]
                b = rows[r, src[best, j]]
                if remap[best, j]:
                    b = rename[best, b]
                if v != b:
                    if v < b:
                        best = p
                    break
        if best == 0:
            for w in range(n_words):  # full-length loops: they vectorize
                acc = np.uint64(0)
                for j in range(n_slots):
                    acc += np.uint64(rows[r, j]) * place[w, j]
                out[r, w] = acc
        else:
            for j in range(n_slots):
                v = rows[r, src[best, j]]
                if remap[best, j]:
                    v = rename[best, v]
                image[j] = v
            for w in range(n_words):
                acc = np.uint64(0)
                for j in range(n_slots):
                    acc += np.uint64(image[j]) * place[w, j]
                out[r, w] = acc


@njit(nogil=True, cache=True)
def unpack_words(words: np.ndarray, word_groups: np.ndarray, g_first: np.ndarray, g_len: np.ndarray,
                 g_radix: np.ndarray, g_offset: np.ndarray, table: np.ndarray,
                 out: np.ndarray) -> None:  # pragma: no cover
    """``out[r]``: the digits of the key words ``words[r]`` (the inverse of :func:`canonical_words`).

    Word ``w`` is cut into the groups ``word_groups[w]:word_groups[w + 1]``, least significant
    first: group ``g`` is the ``g_len[g]`` slots from ``g_first[g]``, its value is the word's
    remainder by ``g_radix[g]``, and the flat ``table`` lists its digits from ``g_offset[g] +
    value * g_len[g]``.
    """
    m = words.shape[0]
    n_words = word_groups.shape[0] - 1
    for r in range(m):
        for w in range(n_words):
            value = words[r, w]
            for g in range(word_groups[w], word_groups[w + 1]):
                radix = g_radix[g]
                q = value // radix
                digit = np.int64(value - q * radix)
                value = q
                base = g_offset[g] + digit * g_len[g]
                first = g_first[g]
                for t in range(g_len[g]):
                    out[r, first + t] = table[base + t]


@njit(nogil=True, cache=True)
def lookup_run(keys: np.ndarray, ids: np.ndarray, queries: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """``out[i] = ids[k]`` where ``keys[k] == queries[i]`` (``keys`` sorted uint64); others untouched.

    A binary search per query; while the queries ascend (as they do in the search) each
    starts where the last one ended, so the run is walked forward once.
    """
    n = keys.shape[0]
    lo = 0
    for i in range(queries.shape[0]):
        q = queries[i]
        if i > 0 and q < queries[i - 1]:
            lo = 0
        hi = n
        while lo < hi:
            mid = (lo + hi) >> 1
            if keys[mid] < q:
                lo = mid + 1
            else:
                hi = mid
        if lo < n and keys[lo] == q:
            out[i] = ids[lo]
