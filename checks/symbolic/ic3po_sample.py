"""Reachable states of an ic3po instance as abstract rows, one per orbit, and the scans ic3po makes over them.

The explicit search already enumerates orbits (one representative state each). A cube's orbit
matches a reachable state iff some permutation of the cube matches the abstract row of its orbit's
representative (under the identity assignment), so :class:`Rows` stores one row a representative
and tests every permutation of a cube (:meth:`Vocabulary.permutations`; bit sets of the rows having
each literal), instead of storing every image of every state: N! V! S! times fewer rows to compute and keep, which affords instances of
about a million orbits (:data:`SAMPLE_CAP`) in exact mode. Random walks (when the instance is larger)
are stored the same way. The scans answer: does a cube's orbit match a sampled state
(:meth:`Rows.matches`), and which few of a cube's literals does no sampled state have together
(:func:`exclusion`: over the fewest variables, then without nested reads, then the shortest greedy
cover, rarest literal first).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Sequence

import numpy as np

from deferral.checks.symbolic.ic3po_vocab import Cube, Vocabulary
from deferral.checks.symbolic.infer import unique_rows
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.protocol import Protocol

#: Reachable orbits used as samples: at most this many per instance (the explicit search, exact), else
#: random walks (at most WALK_CAP distinct states).
SAMPLE_CAP, WALK_CAP = 1_500_000, 6_000
#: An instance above (in every dimension) one with more orbits than this is not searched (its orbits
#: would exceed SAMPLE_CAP: the search would only cost time).
GROWTH_CAP = SAMPLE_CAP // 16
#: Under this many seconds left, no explicit search (random walks).
SAMPLE_LEFT_S = 20.0
#: Bit sets of literals kept at most (each a bit per row: 1.5M rows, 190 KB).
BITS_CACHED = 2_048

Literals = tuple[tuple[int, int], ...]  # ((column, value), ...) sorted


@dataclass
class Rows:
    """Abstract rows of sampled reachable states, one per state (identity assignment), with the
    signature's permutations: a cube's orbit matches a state iff some permutation of it matches a row."""

    columns: np.ndarray  # uint8, terms x states (one column a term: fast scans), C-contiguous
    perms: list[tuple[np.ndarray, np.ndarray]]  # (column map, value map) per permutation, identity first
    #: exact samples: the explicit search's canonical keys and packer (is a concrete state reachable?)
    keys: np.ndarray | None = field(default=None, repr=False)
    packer: Any = field(default=None, repr=False)
    counts: np.ndarray = field(init=False, repr=False)  # terms x 256: how many rows have each value
    _hits: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)
    _bits: dict[tuple[int, int], np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.columns = np.ascontiguousarray(self.columns)
        self.counts = (np.stack([np.bincount(col, minlength=256) for col in self.columns]) if self.columns.shape[1]
                       else np.zeros((self.columns.shape[0], 256), dtype=np.int64))

    @classmethod
    def of_rows(cls, rows: np.ndarray, perms: list[tuple[np.ndarray, np.ndarray]]) -> "Rows":
        """From abstract rows (states x terms)."""
        return cls(np.ascontiguousarray(rows.T), perms)

    @property
    def rows(self) -> np.ndarray:
        """The abstract rows (states x terms, a view)."""
        return self.columns.T

    def __len__(self) -> int:
        return int(self.columns.shape[1])

    def images(self, lits: Literals) -> list[Literals]:
        """The distinct permutations of a set of literals."""
        out = {tuple(sorted((int(cm[c]), int(vm[v])) for c, v in lits)) for cm, vm in self.perms}
        return sorted(out)

    def hits(self, col: int, value: int) -> np.ndarray:
        """The rows having ``value`` at ``col`` (cached when few)."""
        key = (col, value)
        got = self._hits.get(key)
        if got is None:
            got = np.flatnonzero(self.columns[col] == value)
            if got.shape[0] * 8 <= len(self):
                self._hits[key] = got
        return got

    def bits(self, col: int, value: int) -> np.ndarray:
        """The rows having ``value`` at ``col`` as a bit set (uint64 words; cached)."""
        key = (col, value)
        got = self._bits.get(key)
        if got is None:
            packed = np.packbits(self.columns[col] == value)
            got = np.zeros(-(-packed.shape[0] // 8) * 8, dtype=np.uint8)
            got[:packed.shape[0]] = packed
            got = got.view(np.uint64)
            if len(self._bits) >= BITS_CACHED:
                self._bits.clear()
            self._bits[key] = got
        return got

    def _any_match(self, lits: Literals) -> bool:
        """Does some row have every literal (no permutation)? From the rarest literal: its rows narrowed
        when they are few, else bit sets intersected."""
        order = sorted(lits, key=lambda cv: self.counts[cv[0], cv[1]])
        few = self.counts[order[0][0], order[0][1]]
        if few == 0:
            return False
        if few * 32 <= len(self):
            rows = self.hits(*order[0])
            for c, v in order[1:]:
                rows = rows[self.columns[c][rows] == v]
                if rows.shape[0] == 0:
                    return False
            return True
        acc = self.bits(*order[0]).copy()
        for n, (c, v) in enumerate(order[1:]):
            acc &= self.bits(c, v)
            if n % 4 == 3 and not acc.any():
                return False
        return bool(acc.any())

    def excluded(self, lits: Literals) -> bool:
        """No sampled state has these literals together under any permutation."""
        if not lits:
            return len(self) == 0
        return not any(self._any_match(img) for img in self.images(lits))

    def matches(self, cube: Cube) -> bool:
        """Does a permutation of the cube match some row (the cube's orbit some sampled state)?"""
        return len(self) > 0 and not self.excluded(tuple(sorted(zip(cube.cols, cube.values))))

    def reachable(self, state: Sequence[int]) -> bool:
        """Is this concrete state among the explicit search's (False without its keys)?"""
        if self.keys is None or self.packer is None:
            return False
        key = self.packer.canonical_keys(np.array([state], dtype=np.int64))
        return bool(np.any(self.keys == key[0]))

    def count(self, col: int, value: int) -> int:
        """How many (row, permutation) pairs have the literal: its frequency over the orbits."""
        return int(sum(self.counts[cm[col], vm[value]] for cm, vm in self.perms))

    def greedy(self, cube: Cube, allowed: Sequence[int]) -> Cube | None:
        """Greedy cover: the rarest allowed literal first, then the one that rules out most (row,
        permutation) pairs left; then each chosen literal dropped if the others still rule out every one
        (irredundant). None if the allowed literals do not rule out every sampled state. Over bit sets:
        the pairs left are a bit set per permutation, each allowed literal's count one AND and popcount."""
        vals = dict(zip(cube.cols, cube.values))
        allowed = list(allowed)
        first = min(range(len(allowed)), key=lambda n: self.count(allowed[n], vals[allowed[n]]))
        chosen: list[int] = [first]
        # per permutation: the image of each allowed literal as bit sets (allowed x words), the rows left
        mats = [np.stack([self.bits(int(cm[c]), int(vm[vals[c]])) for c in allowed]) for cm, vm in self.perms]
        live = [m[first].copy() for m in mats]
        while True:
            total = sum(int(np.bitwise_count(x).sum(dtype=np.int64)) for x in live)
            if total == 0:
                break
            left = sum(np.bitwise_count(m & x).sum(axis=1, dtype=np.int64) for m, x in zip(mats, live))
            left[chosen] = np.iinfo(np.int64).max
            best = int(np.argmin(left))
            if left[best] >= total:
                return None
            chosen.append(best)
            live = [x & m[best] for m, x in zip(mats, live)]
        picked = [allowed[n] for n in chosen]
        for c in list(picked):
            rest = [x for x in picked if x != c]
            if rest and self.excluded(tuple(sorted((x, vals[x]) for x in rest))):
                picked = rest
        return cube.restricted(set(picked))


def exclusion(vocab: Vocabulary, table: Rows, cube: Cube, general: bool = True) -> Cube | None:
    """A few of the cube's literals that no sampled reachable state has together (under any
    permutation), chosen for generality: the literals over the fewest variables (a family over two
    variables carries to every N), then without nested reads if they suffice, then greedily the literal
    that rules out most of the rows still matching (None if the samples match the whole cube)."""
    vals = dict(zip(cube.cols, cube.values))
    if not general:
        return table.greedy(cube, cube.cols)
    lv = {c: vocab.lit_vars(c, v) for c, v in vals.items()}
    every = sorted(frozenset().union(*lv.values()), key=[n for n, _ in vocab.sig.vars].index)
    for size in range(len(every) + 1):  # the fewest variables; among those, the shortest clause
        best: Cube | None = None
        for names in combinations(every, size):
            inside = [c for c in cube.cols if lv[c] <= set(names)]
            if not inside:
                continue
            flat = [c for c in inside if not vocab.terms[c].nested() and vocab.terms[c].kind != "eq"]
            for cols in ([flat, inside] if flat and len(flat) < len(inside) else [inside]):
                if table.excluded(tuple(sorted((c, vals[c]) for c in cols))):
                    got = table.greedy(cube, tuple(cols))
                    if got is not None and (best is None or len(got.cols) < len(best.cols)):
                        best = got
                    break
        if best is not None:
            return best
    return None


def reachable_samples(protocol: Protocol, at: Bounds, vocab: Vocabulary,
                      deadline: float | None, explicit: bool = True) -> tuple[Rows, bool]:
    """The reachable states at ``at`` as :class:`Rows` (one per orbit): the explicit search when it ends
    within :data:`SAMPLE_CAP` orbits and a third of the time left, and their abstract rows are computed
    within half of it (then also True: they are all of them); else (or without ``explicit``, or under
    :data:`SAMPLE_LEFT_S` left) random walks and the initial state; only the latter under 1 s left."""
    from deferral.checks.explicit.vectorized import reachable_levels
    from deferral.checks.symbolic.paramlearn import walk_rows

    model = Model(protocol, at)
    initial = np.array([model.initial], dtype=np.int64)
    began = time.monotonic()
    left = None if deadline is None else deadline - began
    if explicit and (left is None or left >= SAMPLE_LEFT_S):
        levels = reachable_levels(model, max_states=SAMPLE_CAP, time_limit=None if left is None else left / 3)
        if levels.stopped_by is None:
            until = None if left is None else began + left / 2  # the search and its abstraction: half the time
            cols = vocab.identity_columns(levels.packer.unpack(levels.keys), until)
            if cols is not None:
                return Rows(cols, vocab.permutations(), keys=levels.keys, packer=levels.packer), True
        del levels
    states = initial
    if left is None or left >= 1:
        states = unique_rows(np.concatenate([initial, walk_rows(model, cap=WALK_CAP).astype(np.int64)]))
    cols = vocab.identity_columns(states)
    assert cols is not None
    return Rows(cols, vocab.permutations()), False
