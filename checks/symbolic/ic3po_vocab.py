"""The vocabulary of one ic3po instance: terms over a signature naming every element, cubes, orbits as families.

At an instance (N, V, F at the requested Q and S) the signature has one quantified variable per
element of every index sort (three VCPUs i, k, j; two pages p, q; ...) and the terms are those of
the learned route (:mod:`deferral.checks.symbolic.infer`). A :class:`Cube` is a conjunction of
literals "term = abstract value"; its orbit (every permutation of the elements) is one "never"
:class:`~deferral.checks.symbolic.infer.Family` (:func:`orbit_family`). :meth:`Vocabulary.permutations`
gives the signature's permutations as column and value maps, so that a cube's orbit can be
tested against one abstract row per reachable orbit (:mod:`deferral.checks.symbolic.ic3po_sample`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import permutations, product
from typing import Any, Sequence

import numpy as np

from deferral.checks.symbolic.infer import (OTHER, VAR, VAR_NAMES, Family, InferError, Signature, Term, _Eval,
                                            codes, elided, index_sorts, label, terms)
from deferral.model.bounds import Bounds
from deferral.model.protocol import Protocol

#: States evaluated at once by :meth:`Vocabulary.identity_rows`.
CHUNK = 65_536

def full_signature(protocol: Protocol, at: Bounds) -> Signature:
    """One quantified variable per element of every index sort of the instance (i, k, j; p, q; s1, s2)."""
    out = []
    for sort in index_sorts(protocol):
        names = VAR_NAMES.get(sort.name, tuple(f"{sort.name[0]}{n}" for n in range(1, 9)))
        n = sort.size(at)
        if n > len(names):
            raise InferError(f"ic3po: {n} elements of sort {sort.name} at {at.short()} (at most {len(names)})")
        out += [(name, sort) for name in names[:n]]
    return Signature(tuple(out))


@dataclass
class Vocabulary:
    """The terms over the full signature of an instance, and abstract rows of concrete states."""

    protocol: Protocol
    at: Bounds
    sig: Signature = field(init=False)
    terms: list[Term] = field(init=False)

    def __post_init__(self) -> None:
        self.layout = self.protocol.layout(self.at)
        self.sig = full_signature(self.protocol, self.at)
        self.terms = terms(self.protocol, self.sig, self.at)
        self.identity = tuple(self._position(n, s) for n, s in self.sig.vars)

    def _position(self, name: str, sort: Any) -> int:
        return self.sig.of(sort).index(name)

    def rows(self, states: np.ndarray) -> np.ndarray:
        """Abstract rows of concrete states (rows x slots) under every assignment of the signature:
        the first ``len(states)`` rows are the identity assignment; all together, their orbits."""
        return codes(self.protocol, self.layout, states, self.sig, self.terms)

    def row(self, state: Sequence[int]) -> np.ndarray:
        """The abstract row of one state under the identity assignment only (not its whole orbit)."""
        env = {n: pos for (n, _), pos in zip(self.sig.vars, self.identity)}
        ev = _Eval(self.protocol, self.layout, np.array([state], dtype=np.int64), env).with_sig(self.sig)
        return np.array([ev.code(t)[0] for t in self.terms], dtype=np.uint8)

    def orbit(self, state: Sequence[int]) -> np.ndarray:
        return self.rows(np.array([state], dtype=np.int64))

    def identity_rows(self, states: np.ndarray) -> np.ndarray:
        """Abstract rows of concrete states under the identity assignment only (one row a state)."""
        cols = self.identity_columns(states)
        assert cols is not None
        return np.ascontiguousarray(cols.T)

    def identity_columns(self, states: np.ndarray, deadline: float | None = None) -> np.ndarray | None:
        """The same, a column per term (terms x states); None when ``deadline`` (time.monotonic) passes."""
        env = {n: pos for (n, _), pos in zip(self.sig.vars, self.identity)}
        out = np.empty((len(self.terms), states.shape[0]), dtype=np.uint8)
        for at in range(0, states.shape[0], CHUNK):  # in chunks: the evaluator keeps every term's values
            if deadline is not None and time.monotonic() > deadline:
                return None
            ev = _Eval(self.protocol, self.layout, states[at:at + CHUNK].astype(np.int64), env).with_sig(self.sig)
            for j, t in enumerate(self.terms):
                out[j, at:at + CHUNK] = ev.code(t)
        return out

    def permutations(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Every permutation of the signature's variables (within each sort; the identity first) as a
        column map (term -> its renamed term) and a value map (256 codes: "= variable n" -> "= its
        image"): the literal (c, v) permuted is (cols[c], vals[v]). InferError if a renamed term is
        not in the vocabulary."""
        got = getattr(self, "_perms", None)
        if got is not None:
            return got
        col = {t: n for n, t in enumerate(self.terms)}
        names = [n for n, _ in self.sig.vars]
        per_sort = [[dict(zip(self.sig.of(s), image)) for image in permutations(self.sig.of(s))]
                    for s in {id(s): s for _, s in self.sig.vars}.values()]
        out = []
        for combo in product(*per_sort):
            rename: dict[str, str] = {}
            for part in combo:
                rename.update(part)
            cols = np.empty(len(self.terms), dtype=np.int64)
            for n, t in enumerate(self.terms):
                r = t.renamed(rename)
                c = col.get(r)
                if c is None and r.kind == "eq" and isinstance(r.arg, Term):  # an equality's sides swapped
                    c = col.get(Term("eq", r.arg.var, r.arg.index, Term(r.arg.kind, r.var, r.index, r.arg.arg)))
                if c is None:
                    raise InferError(f"ic3po: {t.show()} renamed is not a term at {self.at.short()}")
                cols[n] = c
            vals = np.arange(256, dtype=np.uint8)
            for n, name in enumerate(names):
                vals[VAR + n] = VAR + names.index(rename[name])
            out.append((cols, vals))
        self._perms: list[tuple[np.ndarray, np.ndarray]] = out
        return out

    def cubes_of(self, fam: Family) -> list["Cube"] | None:
        """A "never" family learned at another instance as cubes over this one (its variables are the
        first names of each sort, here too; one cube per forbidden tuple); None if a term is not here."""
        if fam.mode != "never" or any(n not in self.sig.of(s) for n, s in fam.sig.vars):
            return None
        col = getattr(self, "_col", None)
        if col is None:
            col = self._col = {t.show(): n for n, t in enumerate(self.terms)}
        cols = [col.get(t.show()) for t in fam.terms]
        if any(c is None for c in cols):
            return None
        names = [n for n, _ in self.sig.vars]
        out = []
        for row in fam.rows:
            vals = tuple(VAR + names.index(fam.sig.vars[v - VAR][0]) if VAR <= v < OTHER else v for v in row)
            out.append(Cube(tuple(c for c in cols if c is not None), vals))
        return out

    def lit_vars(self, col: int, value: int) -> frozenset[str]:
        """The variables a literal names (its term's and, for a value "= k", k)."""
        names = self.terms[col].names()
        if VAR <= value < OTHER:
            names = names | {self.sig.vars[value - VAR][0]}
        return frozenset(names)


@dataclass(frozen=True)
class Cube:
    """Literals "term ``cols[n]`` has abstract value ``values[n]``" over a :class:`Vocabulary`."""

    cols: tuple[int, ...]
    values: tuple[int, ...]

    def without(self, col: int) -> "Cube":
        keep = [(c, v) for c, v in zip(self.cols, self.values) if c != col]
        return Cube(tuple(c for c, _ in keep), tuple(v for _, v in keep))

    def restricted(self, cols: set[int]) -> "Cube":
        keep = [(c, v) for c, v in zip(self.cols, self.values) if c in cols]
        return Cube(tuple(c for c, _ in keep), tuple(v for _, v in keep))

    def matches(self, rows: np.ndarray) -> bool:
        """Does some abstract row have these values (an orbit of a state, or samples)?"""
        if rows.shape[0] == 0:
            return False
        if not self.cols:
            return True
        return bool(np.any(np.all(rows[:, list(self.cols)] == np.array(self.values, dtype=rows.dtype), axis=1)))


def orbit_family(vocab: Vocabulary, cube: Cube) -> Family:
    """The orbit of a cube as one family: "for all distinct <the variables it names>: never (its terms) =
    (its values)", the variables renamed in order of first use (i, k, j; p, q; ...)."""
    sig = vocab.sig
    names = [n for n, _ in sig.vars]
    used: list[str] = []
    for c, v in zip(cube.cols, cube.values):
        t = vocab.terms[c]
        mentioned = sorted(t.names(), key=names.index)
        if VAR <= v < OTHER:
            mentioned.append(names[v - VAR])
        for n in mentioned:
            if n not in used:
                used.append(n)
    rename: dict[str, str] = {}
    for sort in {id(s): s for _, s in sig.vars}.values():
        mine = [n for n in used if n in sig.of(sort)]
        rename.update(zip(mine, sig.of(sort)[:len(mine)]))
    new_sig = Signature(tuple(sorted(((rename[n], s) for n, s in sig.vars if n in rename),
                                     key=lambda x: names.index(x[0]))))
    new_names = [n for n, _ in new_sig.vars]
    ts, vals = [], []
    for c, v in zip(cube.cols, cube.values):
        ts.append(vocab.terms[c].renamed(rename))
        vals.append(VAR + new_names.index(rename[names[v - VAR]]) if VAR <= v < OTHER else v)
    order = sorted(range(len(ts)), key=lambda n: ts[n].show())
    ts, vals = [ts[n] for n in order], [vals[n] for n in order]
    labels = tuple(label(t, v, new_sig, vocab.layout) for t, v in zip(ts, vals))
    return Family(new_sig, tuple(ts), (tuple(vals),), "never", (labels,), elided(new_sig, vocab.at))
