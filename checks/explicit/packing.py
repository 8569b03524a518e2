"""Packing states into sortable integer keys, and canonical keys under VCPU symmetry.

A state (one row of small slot values) is numbered in *mixed radix*: slot 0 is the most
significant digit, each slot's digit ranges over its domain size. Mixed radix keeps
tuple order (key order == lexicographic order of the slot tuples, so the least key of an
orbit is exactly ``Model.canonical``), and it wastes no bits on domains that are not
powers of two. Slots are grouped into 64-bit *words* (a key is one ``uint64`` when the
layout fits, otherwise several words compared lexicographically, stored big-endian as a
``numpy.void`` so that sort / searchsorted order them correctly).

Numbering is linear in the slot values, and so is a VCPU permutation (a permutation
moves slots; a VCPU-valued slot's value is renamed, which becomes linear after one-hot
encoding that slot). So the keys of *all* N! images of a batch of states come out of a
single matrix product ``features @ weights``. The product is done in float32 (BLAS), one
column block per *part*: a run of slots whose radix product is at most 2**24, so every
partial sum is an exactly representable integer; parts are combined into words with
exact uint64 arithmetic. Rows are keyed in blocks of :data:`BLOCK_ROWS` so the float32
matrix and the products stay in cache, and :func:`blas_threads` runs a search with one
BLAS thread: the products are small, and BLAS threads that sleep between them (or compete
with the search's worker processes for the cores) cost more than they bring.
"""

from __future__ import annotations

import functools
import itertools
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Iterator, Sequence

import numpy as np

from deferral.checks.explicit import jit as jit_switch
from deferral.model.schema import Layout

#: The version of what a state's key is (the packed row's words, the least image under the VCPU
#: permutations). Bump it whenever a change gives some state another key: a checkpoint stores
#: keys, and one of another version is refused rather than mixed with new keys (counts would be
#: wrong). Ways of finding the same least image faster do not change it.
KEY_FORMAT = 1
#: float32 represents every integer below this exactly.
_PART_LIMIT = 1 << 24
_WORD_LIMIT = 1 << 64
#: Rows keyed per block (a 16k-row float32 block of ~50 slots is ~3 MB: stays in cache).
BLOCK_ROWS = 1 << 14
#: (row, order) pairs numpy's key lists at once at most (a few arrays of 8 bytes each); at 6
#: VCPUs a row whose VCPUs all tie has 720.
MAX_PAIRS = 1 << 20


@dataclass(frozen=True)
class _Part:
    word: int
    slots: tuple[int, ...]
    base: int  # multiplier of the part value inside its word


class Packer:
    """Keys of a layout's states, with or without VCPU symmetry."""

    def __init__(self, layout: Layout, symmetry: bool, jit: bool | None = None) -> None:
        """``jit``: key and unpack with the compiled loops (:mod:`deferral.checks.explicit.jit`):
        None (default) batches of at least ``jit.MIN_ROWS`` rows, once ``jit.AFTER_ROWS`` rows
        were keyed, when ``jit.enabled()``; True every batch (numba permitting); False none."""
        self.layout = layout
        if jit is None:
            self._jit_min_rows: int | None = jit_switch.MIN_ROWS if jit_switch.enabled() else None
            self._jit_after = jit_switch.AFTER_ROWS
        else:
            self._jit_min_rows = 0 if jit and jit_switch.available() else None
            self._jit_after = 0
        self._rows_keyed = 0  # rows keyed on the numpy path while below _jit_after
        self._jit_plan: _JitPlan | None = None
        self.sizes = np.array(layout.sizes, dtype=np.uint64)
        n_slots = len(layout.slots)
        self.n_slots = n_slots
        self.dtype_rows = np.uint8 if max(layout.sizes) <= 256 else np.uint16
        # ---- words and parts (greedy, in slot order) ----
        parts_slots: list[list[int]] = []
        part_word: list[int] = []
        word, word_prod, part_prod = 0, 1, 1
        for j, size in enumerate(layout.sizes):
            if size > _PART_LIMIT:
                raise ValueError(f"slot {layout.slots[j].label()} has {size} values; at most 2**24 supported")
            if word_prod * size > _WORD_LIMIT:
                word, word_prod, part_prod = word + 1, 1, 1
                parts_slots.append([])
                part_word.append(word)
            elif not parts_slots or part_prod * size > _PART_LIMIT:
                part_prod = 1
                parts_slots.append([])
                part_word.append(word)
            parts_slots[-1].append(j)
            part_prod *= size
            word_prod *= size
        self.n_words = word + 1
        # place value of each slot inside its part, and each part's base inside its word
        self.place = [0] * n_slots
        self.part_of = [0] * n_slots
        part_sizes = []
        for p, slots in enumerate(parts_slots):
            mult = 1
            for j in reversed(slots):
                self.place[j] = mult
                self.part_of[j] = p
                mult *= layout.sizes[j]
            part_sizes.append(mult)
        parts: list[_Part] = []
        for p, slots in enumerate(parts_slots):
            base = 1
            for q in range(p + 1, len(parts_slots)):
                if part_word[q] == part_word[p]:
                    base *= part_sizes[q]
            parts.append(_Part(part_word[p], tuple(slots), base))
        self.parts = tuple(parts)
        self.part_sizes = tuple(part_sizes)
        # ---- features and weights ----
        perms = layout.permutations if symmetry else (tuple(range(layout.symmetric_size)),)
        self.perms = perms
        n = layout.symmetric_size
        # features: every slot's raw value (weight 0 for renamed slots), then for each
        # VCPU-valued slot one indicator column per value (renaming is linear on those)
        renamed = [j for j, s in enumerate(layout.slots) if s.vcpu_valued and symmetry and len(perms) > 1]
        self.renamed = np.array(renamed, dtype=np.intp)
        self.renamed_values = max((layout.slots[j].size for j in renamed), default=0)
        features: list[tuple[int, int | None]] = [(j, None) for j in range(n_slots)]
        features += [(j, v) for j in renamed for v in range(self.renamed_values)]
        self.features = tuple(features)
        n_parts = len(parts)
        weights = np.zeros((len(features), n_parts * len(perms)), dtype=np.float64)
        renamed_set = set(renamed)
        for pi, perm in enumerate(perms):
            src, remap = layout.permute_plan(perm)
            dest = [0] * n_slots
            for j, k in enumerate(src):
                dest[k] = j
            for f, (k, v) in enumerate(features):
                if v is None and k in renamed_set:
                    continue  # carried by its indicator columns
                if v is not None and v >= layout.slots[k].size:
                    continue  # value outside this slot's domain: never set
                j = dest[k]
                value = 1 if v is None else (perm[v] if v < n else v)
                weights[f, self.part_of[j] * len(perms) + pi] = value * self.place[j]
        assert weights.max(initial=0) < _PART_LIMIT
        self.weights_t = np.ascontiguousarray(weights.T.astype(np.float32))
        # per permutation: weights over the raw slots (renamed slots carry perm[v]), the
        # renaming table, and the VCPU placed at each position
        self.perm_weights_t = [np.ascontiguousarray(self.weights_t[pi::len(perms)][:, :n_slots]
                                                    .copy()) for pi in range(len(perms))]
        for pi, perm in enumerate(perms):
            src, _ = layout.permute_plan(perm)
            for j, k in enumerate(src):
                if k in renamed_set:
                    self.perm_weights_t[pi][self.part_of[j], k] = self.place[j]
        lut_size = max(self.renamed_values, 1)
        self.rename_lut = [np.array([perm[v] if v < n else v for v in range(lut_size)], dtype=np.float32)
                           for perm in perms]
        self.perm_orders = [tuple(sorted(range(n), key=lambda i, perm=perm: perm[i])) for perm in perms]
        self.sig_slots, self.sig_radix = _signature_plan(layout) if len(perms) > 1 else (None, None)
        self.sig_weights_t = np.zeros((n, n_slots), dtype=np.float32)
        if self.sig_slots is not None:
            for i in range(n):
                self.sig_weights_t[i, self.sig_slots[i]] = self.sig_radix
        self.first_weights_t = np.ascontiguousarray(np.vstack([self.sig_weights_t, self.perm_weights_t[0]]))
        self.groups = tuple(tuple(_digit_groups(layout.sizes, part.slots, self.place, self.dtype_rows))
                            for part in parts)
        self.bytes_per_key = 8 * self.n_words
        self.key_dtype: Any = np.uint64 if self.n_words == 1 else np.dtype(f"V{8 * self.n_words}")
        # per thread: a float32 block reused for every block's rows (a fresh one per block
        # cost a page fault per 4 KiB: a third of the search's faults and system time)
        self._scratch = threading.local()

    @property
    def jit(self) -> bool:
        """Whether (big enough) batches take the compiled loops."""
        return self._jit_min_rows is not None

    def _compiled(self, m: int) -> "_JitPlan | None":
        """The compiled loops' plan for a batch of ``m`` rows, or None for the numpy path
        (numba is imported, and the plan built, on the first batch that takes them)."""
        if self._jit_min_rows is None or m < self._jit_min_rows:
            return None
        if self._jit_plan is None and self._rows_keyed < self._jit_after:
            self._rows_keyed += m  # from several threads: only decides when to switch
            return None
        if self._jit_plan is None:  # two threads may both build it: the same plan
            loops = jit_switch.loops()
            if loops is None:
                self._jit_min_rows = None
                return None
            self._jit_plan = _JitPlan(self, loops)
        return self._jit_plan

    def _float_rows(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` as float32, in this thread's reused block (valid until its next call)."""
        m = rows.shape[0]
        if m > BLOCK_ROWS:
            return rows.astype(np.float32)
        buf = getattr(self._scratch, "rows", None)
        if buf is None:
            buf = self._scratch.rows = np.empty((BLOCK_ROWS, self.n_slots), dtype=np.float32)
        x = buf[:m]
        np.copyto(x, rows, casting="unsafe")
        return x

    # ---- keys --------------------------------------------------------------------------
    def _features(self, rows: np.ndarray) -> np.ndarray:
        if not self.renamed.size:
            return rows.astype(np.float32)
        m = rows.shape[0]
        x = np.empty((m, len(self.features)), dtype=np.uint8)
        x[:, : self.n_slots] = rows
        onehot = rows[:, self.renamed][:, :, None] == np.arange(self.renamed_values, dtype=rows.dtype)
        x[:, self.n_slots:] = onehot.reshape(m, -1)
        return x.astype(np.float32)

    def _combine(self, y: np.ndarray, n_perm: int, m: int) -> list[np.ndarray]:
        """Parts (part-major, then permutation) of a transposed product -> words (perm, m)."""
        yu = y.astype(np.uint64).reshape(len(self.parts), n_perm, m)
        words = [np.zeros((n_perm, m), dtype=np.uint64) for _ in range(self.n_words)]
        for p, part in enumerate(self.parts):
            term = yu[p] if part.base == 1 else yu[p] * np.uint64(part.base)
            words[part.word] += term
        return words

    def canonical_keys(self, rows: np.ndarray) -> np.ndarray:
        """The least key over the images of each row (see :meth:`_canonical_block`)."""
        plan = self._compiled(rows.shape[0])
        if plan is not None:
            return plan.canonical_keys(rows)
        if rows.shape[0] <= BLOCK_ROWS:
            return self._canonical_block(rows)
        return np.concatenate([self._canonical_block(rows[a:a + BLOCK_ROWS])
                               for a in range(0, rows.shape[0], BLOCK_ROWS)])

    def _canonical_block(self, rows: np.ndarray) -> np.ndarray:
        """The least key over the images of each row (the row's own key without symmetry).

        Only the images that can be least are computed: VCPUs are ordered by their
        signature (see :meth:`_signatures`), and a row is keyed under each permutation that
        lists its VCPUs in non-decreasing signature order (one permutation unless some
        VCPUs tie). Same result as :meth:`canonical_keys_all`.

        A VCPU's signature is its own slots at the start of the layout, read as a mixed-radix
        number: the start (up to the first variable that is VCPU-valued or indexed by two
        VCPUs) holds, besides slots no permutation moves, one block of slots per VCPU, and
        the least image lists the VCPUs in non-decreasing order of these blocks (read as
        tuples), so only such orders can give the least key.
        """
        m = rows.shape[0]
        n_perm = len(self.perms)
        if m == 0:
            return np.zeros(0, dtype=self.key_dtype)
        if n_perm == 1 or self.sig_slots is None:
            return self.canonical_keys_all(rows)
        x = self._float_rows(rows)
        # signatures (N rows) and the identity's parts in one product: the identity on every
        # row (no gather: most successors of canonical states are canonical already), the
        # other orders only on the rows they fit
        both = self.first_weights_t @ x.T  # exact integers < 2**24
        n = self.layout.symmetric_size
        sig, y = both[:n], both[n:]
        best = np.stack(self._combine(y, 1, m), axis=1)[0].T.copy()  # (m, words) uint64
        orders = self._fitting_orders(sig)
        if orders is None:  # too many (row, order) pairs at once: half the rows at a time
            h = m // 2
            return np.concatenate([self._canonical_block(rows[:h]), self._canonical_block(rows[h:])])
        fits = self._fits(sig, self.perm_orders[0])
        best[~fits] = np.iinfo(np.uint64).max
        done = fits
        for pi, idx in orders:
            if pi == 0:
                continue
            sub = np.take(x, idx, axis=0)
            for c in self.renamed:
                sub[:, c] = self.rename_lut[pi][rows[idx, c]]
            y = self.perm_weights_t[pi] @ sub.T
            words = np.stack(self._combine(y, 1, idx.size), axis=1)[0].T  # (rows, words)
            if self.n_words == 1:
                best[idx, 0] = np.minimum(best[idx, 0], words[:, 0])
            else:
                cur = np.take(best, idx, axis=0)
                less = _lex_less(words, cur)
                cur[less] = words[less]
                best[idx] = cur
            done[idx] = True
        assert done.all()
        return self.to_sortable(best)

    def _fitting_orders(self, sig: np.ndarray) -> list[tuple[int, np.ndarray]] | None:
        """Per permutation that puts the VCPUs of some rows in non-decreasing signature order:
        (its index, those rows ascending), in permutation order. Found from each row's sorted
        signatures (the orders that fit a row are those that permute only VCPUs of equal
        signature), not by trying every permutation on every row: at 6 VCPUs, 720. None when
        there would be more than :data:`MAX_PAIRS` (row, order) pairs for more than one row."""
        n, m = sig.shape
        if n < 2:
            return [(0, np.arange(m))]
        sig_t = sig.T
        order = np.argsort(sig_t, axis=1, kind="stable")  # VCPU order[r, j] at position j
        ranked = np.take_along_axis(sig_t, order, axis=1)
        tie = ranked[:, 1:] == ranked[:, :-1]
        code = order.astype(np.int64) @ (np.int64(n) ** np.arange(n, dtype=np.int64))
        code += (tie.astype(np.int64) @ (np.int64(2) ** np.arange(n - 1, dtype=np.int64))) * np.int64(n) ** n
        patterns, first, inv = np.unique(code, return_index=True, return_inverse=True)
        index = self._order_index
        fit: list[list[int]] = []
        for r in first.tolist():  # each pattern's orders: the arrangements within each run of ties
            o, t = order[r].tolist(), tie[r].tolist()
            runs, a = [], 0
            for j in range(1, n + 1):
                if j == n or not t[j - 1]:
                    runs.append(o[a:j])
                    a = j
            fit.append([index[sum(choice, ())] for choice in
                        itertools.product(*(list(itertools.permutations(run)) for run in runs))])
        counts = np.array([len(f) for f in fit], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
        flat = np.array([pi for f in fit for pi in f], dtype=np.int64)
        per_row = counts[inv.ravel()]
        if m > 1 and int(per_row.sum()) > MAX_PAIRS:
            return None
        rows = np.repeat(np.arange(m, dtype=np.int64), per_row)
        starts = np.repeat(np.cumsum(per_row) - per_row, per_row)
        pis = flat[np.repeat(offsets[inv.ravel()], per_row) + np.arange(rows.size) - starts]
        by = np.argsort(pis, kind="stable")  # rows stay ascending within a permutation
        pis, rows = pis[by], rows[by]
        cuts = np.flatnonzero(np.r_[True, pis[1:] != pis[:-1]]) if pis.size else pis
        ends = np.r_[cuts[1:], pis.size]
        return [(int(pis[a]), rows[a:b]) for a, b in zip(cuts.tolist(), ends.tolist())]

    @functools.cached_property
    def _order_index(self) -> dict[tuple[int, ...], int]:
        """Each permutation's index by its order (the VCPU placed at each position)."""
        return {order: pi for pi, order in enumerate(self.perm_orders)}

    @staticmethod
    def _fits(sig: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
        """Rows whose VCPUs, placed in ``order`` (VCPU order[j] at position j), have
        non-decreasing signatures."""
        sel = sig[order[0]] <= sig[order[1]]
        for a, b in zip(order[1:-1], order[2:]):
            sel &= sig[a] <= sig[b]
        return sel

    def canonical_keys_all(self, rows: np.ndarray) -> np.ndarray:
        """The least key over all N! images of each row (one matrix product for all)."""
        m = rows.shape[0]
        n_perm = len(self.perms)
        if m == 0:
            return np.zeros(0, dtype=self.key_dtype)
        # transposed product: one contiguous row of m keys per (part, permutation)
        y = self.weights_t @ self._features(rows).T  # exact integers < 2**24
        words = self._combine(y, n_perm, m)
        if self.n_words == 1:
            return np.minimum.reduce(words[0], axis=0) if n_perm > 1 else words[0][0].copy()
        stacked = np.stack(words, axis=1)  # (perm, word, m)
        best = stacked[0].T.copy()
        for pi in range(1, n_perm):
            cand = stacked[pi].T
            less = _lex_less(cand, best)
            best[less] = cand[less]
        return self.to_sortable(best)

    def to_sortable(self, words: np.ndarray) -> np.ndarray:
        """(m, words) uint64 -> a 1-D array whose order is the keys' order."""
        if self.n_words == 1:
            return np.ascontiguousarray(words[:, 0])
        return np.ascontiguousarray(words.astype(">u8")).view(self.key_dtype).ravel()

    def words(self, keys: np.ndarray) -> np.ndarray:
        if self.n_words == 1:
            return keys.reshape(-1, 1)
        return keys.view(">u8").reshape(-1, self.n_words).astype(np.uint64)

    def unpack(self, keys: np.ndarray) -> np.ndarray:
        """Rows (m, slots) of the states with these keys (in blocks of :data:`BLOCK_ROWS`)."""
        rows = np.empty((keys.shape[0], self.n_slots), dtype=self.dtype_rows)
        plan = self._compiled(keys.shape[0])
        if plan is not None:
            plan.unpack(self.words(keys), rows)
            return rows
        for a in range(0, keys.shape[0], BLOCK_ROWS):
            self._unpack_block(keys[a:a + BLOCK_ROWS], rows[a:a + BLOCK_ROWS])
        return rows

    def _unpack_block(self, keys: np.ndarray, rows: np.ndarray) -> None:
        """Digits of each part, a run of consecutive slots at a time, by table look-up."""
        words = self.words(keys)
        for p, part in enumerate(self.parts):
            value = words[:, part.word]
            if part.base != 1:
                value = value // np.uint64(part.base)
            value = _mod(value, self.part_sizes[p]).astype(np.uint32)
            for group in self.groups[p]:
                digits = value // np.uint32(group.place) if group.place != 1 else value
                digits = _mod(digits, group.radix)
                if group.table is None:
                    rows[:, group.first] = digits
                else:  # np.take: much faster than fancy indexing on a 2-D table
                    rows[:, group.first:group.first + group.table.shape[1]] = np.take(group.table, digits, axis=0)

    def rows_of(self, states: Sequence[Sequence[int]]) -> np.ndarray:
        return np.array(states, dtype=self.dtype_rows).reshape(len(states), self.n_slots)


class _JitPlan:
    """A packer's layout as the flat arrays the compiled loops of :mod:`deferral.checks.explicit.jit` take."""

    def __init__(self, packer: Packer, loops: ModuleType) -> None:
        self.loops = loops
        layout = packer.layout
        n_slots, n = packer.n_slots, layout.symmetric_size
        self.n = n
        self.n_words = packer.n_words
        plans = [layout.permute_plan(perm) for perm in packer.perms]
        self.src = np.array([src for src, _ in plans], dtype=np.int64).reshape(len(plans), n_slots)
        self.remap = np.array([remap for _, remap in plans], dtype=np.bool_).reshape(len(plans), n_slots)
        # renaming of a VCPU-valued slot's values (N, "none", stays)
        values = max(layout.sizes)
        self.rename = np.array([[perm[v] if v < n else v for v in range(values)] for perm in packer.perms],
                               dtype=packer.dtype_rows).reshape(len(plans), values)
        assert list(packer.perms[0]) == list(range(n))  # the identity first: the row is image 0
        word_of = [packer.parts[packer.part_of[j]].word for j in range(n_slots)]
        self.word_start = np.array([word_of.index(w) for w in range(packer.n_words)] + [n_slots], dtype=np.int64)
        self.place = np.zeros((packer.n_words, n_slots), dtype=np.uint64)  # 0 outside the word
        for w in range(packer.n_words):
            mult = 1
            for j in range(int(self.word_start[w + 1]) - 1, int(self.word_start[w]) - 1, -1):
                self.place[w, j] = mult
                mult *= layout.sizes[j]
        # unpacking: each word's slots cut into look-up groups, least significant first
        sizes = layout.sizes
        word_groups, first, length, radixes, offsets, tables = [0], [], [], [], [], []
        offset = 0
        for w in range(packer.n_words):
            end = int(self.word_start[w + 1])
            while end > self.word_start[w]:
                start, radix = end - 1, sizes[end - 1]
                while start > self.word_start[w] and radix * sizes[start - 1] <= _GROUP_LIMIT:
                    start -= 1
                    radix *= sizes[start]
                values = np.arange(radix)
                table = np.empty((radix, end - start), dtype=packer.dtype_rows)
                for c in range(end - start - 1, -1, -1):
                    table[:, c] = values % sizes[start + c]
                    values = values // sizes[start + c]
                first.append(start)
                length.append(end - start)
                radixes.append(radix)
                offsets.append(offset)
                tables.append(table.ravel())
                offset += table.size
                end = start
            word_groups.append(len(first))
        self.word_groups = np.array(word_groups, dtype=np.int64)
        self.g_first = np.array(first, dtype=np.int64)
        self.g_len = np.array(length, dtype=np.int64)
        self.g_radix = np.array(radixes, dtype=np.uint64)
        self.g_offset = np.array(offsets, dtype=np.int64)
        self.table = np.concatenate(tables) if tables else np.zeros(0, dtype=packer.dtype_rows)
        self.to_sortable = packer.to_sortable

    def canonical_keys(self, rows: np.ndarray) -> np.ndarray:
        out = np.empty((rows.shape[0], self.n_words), dtype=np.uint64)
        self.loops.canonical_words(np.ascontiguousarray(rows), self.src, self.remap, self.rename, self.place, out)
        return out.reshape(-1) if self.n_words == 1 else self.to_sortable(out)

    def unpack(self, words: np.ndarray, rows: np.ndarray) -> None:
        self.loops.unpack_words(np.ascontiguousarray(words), self.word_groups, self.g_first, self.g_len,
                               self.g_radix, self.g_offset, self.table, rows)


def _mod(x: np.ndarray, m: int) -> np.ndarray:
    """``x % m`` for unsigned ``x``, as ``x - (x // m) * m`` (numpy divides by a scalar far
    faster than it takes a remainder)."""
    mm = x.dtype.type(m)
    return x - (x // mm) * mm


#: Consecutive slots decoded by one table look-up while their radix product is at most this.
_GROUP_LIMIT = 1 << 12


@dataclass(frozen=True)
class _Group:
    """Consecutive slots of one part decoded together: their digits are
    ``(part value // place) % radix``, and ``table[that]`` lists them (None: one slot)."""

    first: int
    place: int
    radix: int
    table: np.ndarray | None


def _digit_groups(sizes: Sequence[int], slots: Sequence[int], place: Sequence[int],
                  dtype: Any) -> list[_Group]:
    """A part's slots (consecutive, most significant first) cut into look-up groups."""
    groups: list[_Group] = []
    end = len(slots)
    while end > 0:
        start, radix = end - 1, sizes[slots[end - 1]]
        while start > 0 and radix * sizes[slots[start - 1]] <= _GROUP_LIMIT:
            start -= 1
            radix *= sizes[slots[start]]
        members = slots[start:end]
        if len(members) == 1:
            table = None
        else:
            values = np.arange(radix)
            table = np.empty((radix, len(members)), dtype=dtype)
            for c in range(len(members) - 1, -1, -1):
                size = sizes[members[c]]
                table[:, c] = values % size
                values = values // size
        groups.append(_Group(members[0], place[members[-1]], radix, table))
        end = start
    return groups


def _lex_less(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Rows of ``a`` (m, words) that are lexicographically less than those of ``b``."""
    less = np.zeros(a.shape[0], dtype=bool)
    decided = np.zeros(a.shape[0], dtype=bool)
    for w in range(a.shape[1]):
        lt = a[:, w] < b[:, w]
        gt = a[:, w] > b[:, w]
        less |= lt & ~decided
        decided |= lt | gt
    return less


#: Signatures are mixed-radix numbers computed in float32: the radix product stays below this.
_SIG_LIMIT = _PART_LIMIT


def _signature_plan(layout: Layout, limit: int = _SIG_LIMIT) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Slots of each VCPU's signature ((N, L) slot numbers) and their radix weights (L,).

    Whole variables from the start of the layout, while each is indexed by at most one
    VCPU and holds no VCPU values; the signature is cut (at a block boundary, so it stays a
    prefix of every VCPU's block) before its radix product reaches ``limit`` (numpy's float32
    products are exact below 2**24; the compiled key's uint64 below 2**64).
    """
    n = layout.symmetric_size
    per_vcpu: list[list[int]] = [[] for _ in range(n)]
    for var in layout.variables:
        vdims = [d for d, sort in enumerate(var.index) if sort.vcpu_valued]
        slots = [j for j, s in enumerate(layout.slots) if s.var is var]
        if len(vdims) > 1 or any(layout.slots[j].vcpu_valued for j in slots):
            break
        if not vdims:
            continue  # no permutation moves these slots
        for j in slots:
            per_vcpu[layout.slots[j].index[vdims[0]]].append(j)
    length, prod = 0, 1
    for j in per_vcpu[0]:
        if prod * layout.slots[j].size >= limit:
            break
        prod *= layout.slots[j].size
        length += 1
    if length == 0:
        return None, None
    slots = np.array([v[:length] for v in per_vcpu], dtype=np.intp)
    radix = np.ones(length, dtype=np.int64)
    for t in range(length - 2, -1, -1):
        radix[t] = radix[t + 1] * layout.slots[per_vcpu[0][t + 1]].size
    return slots, radix


@contextmanager
def blas_threads(n: int) -> Iterator[None]:
    """Run the body with at most ``n`` BLAS threads (threadpoolctl; restored afterwards).

    The key products are small; OpenBLAS's own threads would only compete with the
    search's worker processes for the cores.
    """
    if n >= 1 and getattr(sys.modules.get("deferral.cli"), "ONE_BLAS_THREAD", False):
        yield  # the command line loaded OpenBLAS with one thread already (see deferral.cli)
        return
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=n, user_api="blas"):
        yield
