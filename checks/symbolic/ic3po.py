"""Symmetry-aware invariant inference in the style of IC3PO: IC3 on a small instance, every clause learned as a whole orbit.

Goel and Sakallah, "On Symmetry and Quantification: A New Approach to Verify Distributed
Protocols" (NFM 2021): run IC3/PDR on a small finite instance of the protocol, and boost
every clause it learns by the protocol's symmetry, so that a frame holds whole orbits of
clauses; read each orbit back as one quantified family ("for all distinct i, k, j: ...");
grow the instance until the families stop changing (the cutoff), and prove the result.

Here the IC3 loop is our own (Python + Z3, over the bit-vector encoding of the protocol's own
step functions, :mod:`deferral.checks.symbolic.encoding`), at an instance such as N=3, V=2,
F=2 at the requested Q and S. Its literals are the terms of the learned route's vocabulary
(:mod:`deferral.checks.symbolic.infer`: reads, queue lengths and contents, equalities of
frames) over a signature that names *every* element of the instance (three VCPUs i, k, j,
two pages p, q, ...), each with its abstract value ("lw[p] = k", "len(queue[i]) = full",
"gpt[p] = shadow[k][p]"). A state's cube is all of them; its orbit is the family "never
(these terms) = (these values)" for all distinct variables, an :class:`infer.Family`:

* a counterexample to the property in frame k is blocked recursively (its predecessors in
  lower frames first), as in IC3;
* a blocked cube is shrunk by the unsat core of the relative-induction query, then literal by
  literal (inductive generalization, "down"), each candidate first checked against the
  reachable states the explicit search and random walks give at the instance (a cube some
  reachable state matches cannot be blocked: no solver query is spent on it) and the
  initial state;
* the whole orbit (every permutation of VCPUs, pages, spaces; frames are compared only by
  equality, so their permutations are in it too) is added to the frames, not one clause;
* clauses are pushed forward; two equal frames are an inductive invariant at the instance.

When the explicit search enumerates every reachable state of the instance ("exact"), one frame is
enough: a counterexample to induction is excluded by the literals over the FEWEST variables (then
without nested reads, then the shortest irredundant greedy cover, rarest literal first) that no
reachable state has together; a family over two variables carries to every N. Each instance starts
from the orbits learned at the smaller ones that no reachable state of it violates (exact, cheap),
so only what is new there is learned (the cutoff grows one dimension at a time).

Nothing learned is trusted: the families are then (a) kept by Houdini and proved inductive,
with the property, at the requested bounds (:mod:`deferral.checks.symbolic.induction`) and
(b) proved for every N, V, F at the requested Q and S over uninterpreted sorts
(:mod:`deferral.checks.symbolic.parametric`). Soundness rests only on Z3's unsat answers of
those final proofs; an undecided query makes the route "unknown" with Z3's reason as text.
The shipped lemmas of model/invariant.py are not used.
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import z3

from deferral.checks.symbolic.encoding import Encoding, encode
from deferral.checks.symbolic.induction import check_inductive, houdini, instances
from deferral.checks.symbolic.infer import (FORMAT, OTHER, UNDEF, VAR, VAR_NAMES, Family, InferError, Signature,
                                            Term, codes, elided, family_of_entry, index_sorts, label,
                                            property_lemmas, terms, unique_rows)
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol

#: The instances IC3 runs at, smallest first (each clipped to the requested bounds, at its Q and S):
#: the cutoff grows the instance while the families learned at the last one are not proved.
INSTANCES = ((2, 1, 1), (3, 1, 1), (2, 2, 1), (2, 2, 2), (3, 2, 2))
#: Reachable states used to filter generalizations: at most this many per instance (explicit search,
#: else random walks).
SAMPLE_CAP, WALK_CAP = 150_000, 6_000
#: Each solver query at most this long (seconds).
QUERY_S = 20.0
#: Route names in prove's JSON.
ROUTE_BOUNDED, ROUTE_PARAMETRIC = "ic3po+houdini+induction", "ic3po+parametric"


class Ic3Unknown(Exception):
    """IC3 stopped without an invariant (time, an undecided query, a counterexample at the instance)."""


# ---- the vocabulary of one instance ----------------------------------------------------------------------
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
        from deferral.checks.symbolic.infer import _Eval

        env = {n: pos for (n, _), pos in zip(self.sig.vars, self.identity)}
        ev = _Eval(self.protocol, self.layout, np.array([state], dtype=np.int64), env).with_sig(self.sig)
        return np.array([ev.code(t)[0] for t in self.terms], dtype=np.uint8)

    def orbit(self, state: Sequence[int]) -> np.ndarray:
        return self.rows(np.array([state], dtype=np.int64))

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


# ---- the IC3 loop ----------------------------------------------------------------------------------------
@dataclass
class Clause:
    """A learned orbit: its cube over the instance's vocabulary, its family, its frame level."""

    cube: Cube
    family: Family
    level: int
    use: Any  # z3 Bool: assume the orbit in the pre-state


INF = 1 << 30


@dataclass
class Ic3Result:
    status: str  # invariant | violated | unknown
    at: Bounds
    families: list[Family]
    frames: int
    clauses: int
    queries: int
    elapsed_s: float
    reason: str = ""
    samples: int = 0


class Ic3:
    """IC3 with symmetric (orbit) clauses over a :class:`Vocabulary` at one instance."""

    def __init__(self, protocol: Protocol, at: Bounds, deadline: float | None,
                 note: Callable[[str], None] | None = None, samples: np.ndarray | None = None) -> None:
        self.protocol, self.at, self.deadline = protocol, at, deadline
        self.say = note or (lambda text: None)
        self.enc: Encoding = encode(protocol, at, check=False)
        self.vocab = Vocabulary(protocol, at)
        self.model = Model(protocol, at)
        enc = self.enc
        self.xs, self.ys, self.act = enc.state("i3x"), enc.state("i3y"), enc.selector("i3")
        self.solver = z3.SolverFor("QF_BV")
        self.solver.add(enc.valid(self.xs), enc.trans(self.xs, self.ys, self.act))
        self.init_solver = z3.SolverFor("QF_BV")
        self.init_solver.add(enc.init(self.xs), enc.trans(self.xs, self.ys, self.act))
        self.prop = z3.Bool("i3:P")
        self.solver.add(z3.Implies(self.prop, enc.invariants(self.xs)))
        self.bad = z3.Bool("i3:bad")
        self.solver.add(z3.Implies(self.bad, z3.Not(enc.invariants(self.ys))))  # a successor leaves P
        self.clauses: list[Clause] = []
        self.indicators: dict[tuple[int, int], Any] = {}  # (col, value) -> Bool assuming the literal in the post-state
        self.pre_terms: dict[tuple[int, int], Any] = {}
        self.init_rows = self.vocab.orbit(self.model.initial)  # every permutation of the initial state
        self.samples = np.zeros((0, len(self.vocab.terms)), dtype=np.uint8) if samples is None else samples
        self.queries = 0
        self.exact = False  # the samples are every reachable state of the instance
        self.general = True  # exclude counterexamples by the literals over the fewest variables (else: rarest)
        self._table = self.samples
        self._columns = self.samples.T
        self._hits: dict[tuple[int, int], np.ndarray] = {}
        self._counts: tuple[np.ndarray, np.ndarray] | None = None

    # ---- terms ---------------------------------------------------------------------------------------------
    def _literal(self, col: int, value: int, xs: Sequence[Any]) -> Any:
        t = self.vocab.terms[col]
        fam = Family(self.vocab.sig, (t,), ((value,),), "in")
        out = fam.lemma().fn(self.enc.context(xs), *self.vocab.identity)
        return self.enc.ops.boolean(out) if self.enc.ops.is_value(out) else z3.BoolVal(bool(out))

    def post_literal(self, col: int, value: int) -> Any:
        key = (col, value)
        if key not in self.indicators:
            ind = z3.Bool(f"i3:l{col}={value}")
            term = self._literal(col, value, self.ys)
            self.solver.add(z3.Implies(ind, term))
            self.init_solver.add(z3.Implies(ind, term))
            self.indicators[key] = ind
        return self.indicators[key]

    def pre_cube(self, cube: Cube) -> Any:
        lits = []
        for c, v in zip(cube.cols, cube.values):
            if (c, v) not in self.pre_terms:
                self.pre_terms[(c, v)] = self._literal(c, v, self.xs)
            lits.append(self.pre_terms[(c, v)])
        return z3.And(lits) if lits else z3.BoolVal(True)

    def cube_of(self, state: Sequence[int]) -> Cube:
        row = self.vocab.row(state)
        cols = tuple(c for c in range(len(row)) if row[c] != UNDEF)
        return Cube(cols, tuple(int(row[c]) for c in cols))

    # ---- queries -------------------------------------------------------------------------------------------
    def frame(self, i: int) -> list[Any]:
        """Assumptions for F_i (i >= 1): the property and every orbit at level >= i."""
        return [self.prop] + [c.use for c in self.clauses if c.level >= i]

    def _check(self, s: z3.Solver, assumptions: list[Any]) -> Any:
        left = None if self.deadline is None else self.deadline - time.monotonic()
        if left is not None and left <= 0:
            raise Ic3Unknown("time limit")
        s.set("timeout", int(1000 * min(QUERY_S, left if left is not None else QUERY_S)))
        self.queries += 1
        r = s.check(assumptions)
        if r == z3.unknown:
            raise Ic3Unknown(f"a solver query was not decided ({s.reason_unknown()})")
        return r

    def relative(self, cube: Cube, i: int) -> tuple[bool, Any]:
        """Is ``F_{i-1} & !cube & T & cube'`` unsat? (True, the core's literals) or (False, a predecessor)."""
        inds = [self.post_literal(c, v) for c, v in zip(cube.cols, cube.values)]
        back = {ind.get_id(): (c, v) for ind, c, v in zip(inds, cube.cols, cube.values)}
        if i - 1 == 0:
            s, assume = self.init_solver, inds
            s.push()
        else:
            s, assume = self.solver, self.frame(i - 1) + inds
            s.push()
            s.add(z3.Not(self.pre_cube(cube)))
        try:
            r = self._check(s, assume)
            if r == z3.sat:
                return False, self.enc.decode(s.model(), self.xs)
            core = {back[x.get_id()] for x in s.unsat_core() if x.get_id() in back}
            return True, {c for c, _ in core}
        finally:
            s.pop()

    def blocked(self, row_orbit: np.ndarray, i: int) -> bool:
        """Is a state (its orbit's abstract rows) outside F_i already (an orbit at level >= i matches it)?"""
        return any(c.level >= i and c.cube.matches(row_orbit) for c in self.clauses)

    # ---- generalization ------------------------------------------------------------------------------------
    def generalize(self, cube: Cube, core: set[int], i: int) -> Cube:
        """The core of the blocking query, then drop literals while the cube stays unreachable (samples,
        initial state) and inductive relative to F_{i-1}."""
        small = cube.restricted(core)
        if small.matches(self.init_rows) or not small.cols:  # add literals until no permutation of Init has them
            cols = set(small.cols)
            for c, v in zip(cube.cols, cube.values):
                if not cube.restricted(cols).matches(self.init_rows):
                    break
                if c not in cols and np.any(self.init_rows[:, c] != v):
                    cols.add(c)
            small = cube.restricted(cols)
        few = self.excluding(small)
        if few is not None and len(few.cols) < len(small.cols):  # the fewest literals no reachable state has
            ok, core2 = self.relative(few, i)
            if ok:
                kept = few.restricted(core2)
                small = kept if kept.cols and not kept.matches(self.init_rows) else few
        for col in sorted(small.cols, key=lambda c: -len(self.vocab.terms[c].show())):
            if col not in small.cols or len(small.cols) == 1:
                continue
            cand = small.without(col)
            if cand.matches(self.init_rows) or cand.matches(self.samples):
                continue
            ok, core2 = self.relative(cand, i)
            if ok:
                kept = cand.restricted(core2)
                small = kept if kept.cols and not kept.matches(self.init_rows) else cand
        return small

    def excluding(self, cube: Cube) -> Cube | None:
        """A few of the cube's literals that no sampled reachable state (nor a permutation of the initial
        one) has together, chosen for generality: the literals over the fewest variables (a family over
        two variables carries to every N), then without nested reads if they suffice, then greedily the
        literal that rules out most of the rows still matching (None if the samples match the whole cube)."""
        vals = dict(zip(cube.cols, cube.values))
        if self._counts is None or self._counts[1] is not self.samples:  # per column, how many rows have each value
            cols = np.ascontiguousarray(self.samples.T)
            self._counts = (np.stack([np.bincount(col, minlength=256) for col in cols]), self.samples)
            self._table = np.concatenate([self.samples, self.init_rows.astype(self.samples.dtype)])
            self._columns = np.ascontiguousarray(self._table.T)  # a column per term: fast scans
            self._hits = {}  # (col, value) -> the rows having it, for the rarest literals asked
        counts = self._counts[0]
        if not self.general:
            return self._greedy(cube, cube.cols, counts)
        lv = {c: self.vocab.lit_vars(c, v) for c, v in vals.items()}
        every = sorted(frozenset().union(*lv.values()), key=[n for n, _ in self.vocab.sig.vars].index)
        hit, columns = self._hits, self._columns

        def excluded(cols: list[int]) -> bool:
            # rows matching every literal: start from the rarest literal's rows (few), then narrow
            cols = sorted(cols, key=lambda c: counts[c, vals[c]])
            key = (cols[0], vals[cols[0]])
            if key not in hit:
                hit[key] = np.flatnonzero(columns[cols[0]] == vals[cols[0]])
            rows = hit[key]
            for c in cols[1:]:
                if rows.shape[0] == 0:
                    break
                rows = rows[columns[c][rows] == vals[c]]
            return rows.shape[0] == 0

        from itertools import combinations
        for size in range(len(every) + 1):  # the fewest variables; among those, the shortest clause
            best: Cube | None = None
            for names in combinations(every, size):
                inside = [c for c in cube.cols if lv[c] <= set(names)]
                if not inside:
                    continue
                flat = [c for c in inside if not self.vocab.terms[c].nested() and self.vocab.terms[c].kind != "eq"]
                for cols in ([flat, inside] if flat and len(flat) < len(inside) else [inside]):
                    if excluded(cols):
                        got = self._greedy(cube, tuple(cols), counts)
                        if got is not None and (best is None or len(got.cols) < len(best.cols)):
                            best = got
                        break
            if best is not None:
                return best
        return None

    def _greedy(self, cube: Cube, allowed: Sequence[int], counts: np.ndarray) -> Cube | None:
        """Greedy cover: the rarest allowed literal first, then the one that rules out most rows left;
        then each chosen literal dropped if the others still rule out every row (irredundant)."""
        vals = dict(zip(cube.cols, cube.values))
        columns = self._columns
        first = min(allowed, key=lambda c: counts[c, vals[c]])
        chosen: list[int] = [first]
        live = np.flatnonzero(columns[first] == vals[first])
        while live.shape[0]:
            best, best_left = None, live.shape[0]
            for c in allowed:
                if c in chosen:
                    continue
                left = int(np.count_nonzero(columns[c][live] == vals[c]))
                if left < best_left:
                    best, best_left = c, left
            if best is None:
                return None
            chosen.append(best)
            live = live[columns[best][live] == vals[best]]
        for c in list(chosen):
            rest = [x for x in chosen if x != c]
            if not rest:
                break
            rest.sort(key=lambda x: counts[x, vals[x]])
            rows = np.flatnonzero(columns[rest[0]] == vals[rest[0]])
            for x in rest[1:]:
                rows = rows[columns[x][rows] == vals[x]]
            if rows.shape[0] == 0:
                chosen = rest
        return cube.restricted(set(chosen))

    def seed(self, fams: Sequence[Family]) -> int:
        """Adopt the families (learned at a smaller instance) that no reachable state here violates (only
        with every reachable state at hand: ``exact``); how many orbits were adopted."""
        if not self.exact:
            return self._seed_inductive(fams)
        table = np.concatenate([self.samples, self.init_rows.astype(self.samples.dtype)])
        n = 0
        seen = {c.family.show() for c in self.clauses}
        for fam in fams:
            cubes = self.vocab.cubes_of(fam)
            if not cubes or any(c.matches(table) for c in cubes):
                continue
            for cube in cubes:
                fam = orbit_family(self.vocab, cube)
                if fam.show() not in seen:
                    seen.add(fam.show())
                    self.learn(cube, INF, fam)
                    n += 1
        return n

    def _seed_inductive(self, fams: Sequence[Family]) -> int:
        """Without every reachable state: adopt the families Houdini keeps here (with the property), an
        inductive set, so invariants of the instance."""
        if not fams:
            return 0
        cands = [(f, c) for f in fams for c in (self.vocab.cubes_of(f) or [])[:1] if len(f.rows) == 1]
        try:
            alive, _ = houdini(self.enc, [f.lemma() for f, _ in cands] + property_lemmas(self.protocol),
                               timeout=None if self.deadline is None else max(1.0, self.deadline - time.monotonic()))
        except TimeoutError:
            return 0
        names = {lem.name for lem in alive}
        n = 0
        for f, cube in cands:
            if f.show() in names:
                self.learn(cube, INF, orbit_family(self.vocab, cube))
                n += 1
        return n

    def learn(self, cube: Cube, i: int, fam: Family | None = None) -> None:
        fam = fam or orbit_family(self.vocab, cube)
        lem = fam.lemma()
        use = z3.Bool(f"i3:c{len(self.clauses)}")
        self.solver.add(z3.Implies(use, z3.And([t for _, t in instances(self.enc, lem, self.xs)])))
        self.clauses.append(Clause(cube, fam, i, use))

    def push_forward(self, k: int) -> int | None:
        """Push every orbit as far as it goes (up to k); the first level i whose frame equals the next, if any."""
        for i in range(1, k):
            for c in [c for c in self.clauses if c.level == i]:
                lem = c.family.lemma()
                post = [t for _, t in instances(self.enc, lem, self.ys)]
                self.solver.push()
                self.solver.add(z3.Or([z3.Not(t) for t in post]))
                try:
                    r = self._check(self.solver, self.frame(i))
                finally:
                    self.solver.pop()
                if r == z3.unsat:
                    c.level = i + 1
            if not any(c.level == i for c in self.clauses):
                return i
        return None

    def block(self, state: tuple[int, ...], k: int) -> None:
        heap: list[tuple[int, int, tuple[int, ...]]] = [(k, 0, state)]
        count = 1
        while heap:
            i, _, st = heapq.heappop(heap)
            if i == 0:
                raise Ic3Unknown(f"a counterexample at {self.at.short()} (bmc gives the shortest trace)")
            if self.blocked(self.vocab.orbit(st), i):
                continue
            cube = self.cube_of(st)
            ok, got = self.relative(cube, i)
            if not ok:
                heapq.heappush(heap, (i - 1, count, got))
                heapq.heappush(heap, (i, count + 1, st))
                count += 2
                continue
            small = self.generalize(cube, got, i)
            level = i
            while level < k:  # push the new orbit as far as it is inductive relative to the frames
                ok, _ = self.relative(small, level + 1)
                if not ok:
                    break
                level += 1
            self.learn(small, level)
            self.say(f"ic3po at {self.at.short()}: frame {level}: {self.clauses[-1].family.show()}")

    def strengthen(self) -> list[Family]:
        """With every reachable state of the instance at hand (``exact``), one frame is enough: each
        counterexample to induction of P and the orbits so far is unreachable, and the fewest of its
        literals no reachable state has together (every permutation of them) is an invariant of the
        instance; the loop ends when P and the orbits are inductive."""
        post: dict[int, Any] = {}
        while True:
            for n, c in enumerate(self.clauses):
                if n not in post:
                    post[n] = z3.And([t for _, t in instances(self.enc, c.family.lemma(), self.ys)])
            self.solver.push()
            self.solver.add(z3.Or([z3.Not(t) for t in post.values()] + [z3.Not(self.enc.invariants(self.ys))]))
            try:
                r = self._check(self.solver, self.frame(1))
                state = self.enc.decode(self.solver.model(), self.xs) if r == z3.sat else None
            finally:
                self.solver.pop()
            if state is None:
                out: dict[str, Family] = {}
                for c in self.support(post):
                    out.setdefault(c.family.show(), c.family)
                return list(out.values())
            cube = self.cube_of(state)
            few = self.excluding(cube)
            if few is None:
                raise Ic3Unknown(f"a counterexample at {self.at.short()}: a reachable state leaves the property "
                                 "(bmc gives the shortest trace)")
            self.learn(few, INF)
            self.say(f"ic3po at {self.at.short()}: {self.clauses[-1].family.show()}")

    def support(self, post: Mapping[int, Any]) -> list[Clause]:
        """The orbits the property's induction needs, closed under what their own induction needs (unsat
        cores over the orbits assumed in the pre-state): an inductive subset, often a small one."""
        by_use = {c.use.get_id(): n for n, c in enumerate(self.clauses)}
        need: set[int] = set()
        todo: list[Any] = [z3.Not(self.enc.invariants(self.ys))]
        while todo:
            goal = todo.pop()
            self.solver.push()
            self.solver.add(goal)
            try:
                r = self._check(self.solver, self.frame(1))
                core = self.solver.unsat_core() if r == z3.unsat else None
            finally:
                self.solver.pop()
            if core is None:  # cannot happen for an inductive set; keep everything
                return list(self.clauses)
            for x in core:
                n = by_use.get(x.get_id())
                if n is not None and n not in need:
                    need.add(n)
                    todo.append(z3.Not(post[n]))
        return [c for n, c in enumerate(self.clauses) if n in need]

    def run(self) -> Ic3Result:
        start = time.monotonic()

        def res(status: str, fams: list[Family], k: int, reason: str = "") -> Ic3Result:
            return Ic3Result(status, self.at, fams, k, len(self.clauses), self.queries, time.monotonic() - start,
                             reason, int(self.samples.shape[0]))

        if self.model.violations(self.model.initial):
            return res("violated", [], 0, "the initial state violates the property")
        if self.exact:
            try:
                return res("invariant", self.strengthen(), 1)
            except Ic3Unknown as exc:
                return res("violated" if "counterexample" in str(exc) else "unknown", [], 1, str(exc))
        k = 1
        try:
            while True:
                while True:
                    r = self._check(self.solver, self.frame(k) + [self.bad])
                    if r == z3.unsat:
                        break
                    self.block(self.enc.decode(self.solver.model(), self.xs), k)
                k += 1
                fixed = self.push_forward(k)
                if fixed is not None:
                    fams = [c.family for c in self.clauses if c.level > fixed]
                    out: dict[str, Family] = {}
                    for f in fams:
                        out.setdefault(f.show(), f)
                    return res("invariant", list(out.values()), k)
        except Ic3Unknown as exc:
            status = "violated" if "counterexample" in str(exc) else "unknown"
            return res(status, [], k, str(exc))


def reachable_samples(protocol: Protocol, at: Bounds, vocab: Vocabulary,
                      deadline: float | None) -> tuple[np.ndarray, bool]:
    """Abstract rows (every assignment) of reachable states at ``at``: the explicit search when it is
    small (then also True: they are all of them), else random walks; an empty table when there is no time."""
    from deferral.checks.symbolic.infer import reachable_rows
    from deferral.checks.symbolic.paramlearn import walk_rows

    if deadline is not None and deadline - time.monotonic() < 5:
        return np.zeros((0, len(vocab.terms)), dtype=np.uint8), False
    exact = True
    states = reachable_rows(protocol, at, SAMPLE_CAP)
    if states.shape[0] >= SAMPLE_CAP:
        exact, states = False, walk_rows(Model(protocol, at), cap=WALK_CAP)
    return unique_rows(vocab.rows(states.astype(np.int64))), exact


# ---- the route: learn at growing instances, prove at the requested bounds and for every N, V, F --------
@dataclass
class Ic3poResult:
    status: str  # proved | unknown
    route: str
    families: list[Family]
    elapsed_s: float
    reason: str = ""
    learned_at: list[Bounds] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # per instance: figures of IC3 and the proofs
    for_every: dict[str, Any] | None = None
    lemmas: list[Lemma] = field(default_factory=list)


def instances_for(protocol: Protocol, bounds: Bounds, clipped: bool = True) -> list[Bounds]:
    """:data:`INSTANCES` at ``bounds``' other bounds (Q, S), ``clipped`` to ``bounds``; duplicates dropped."""
    out: list[Bounds] = []
    for n, v, f in INSTANCES:
        b = bounds.replace(vcpus=min(n, bounds.vcpus), pages=min(v, bounds.pages), frames=min(f, bounds.frames)
                           ) if clipped else bounds.replace(vcpus=n, pages=v, frames=f)
        if b not in out:
            out.append(b)
    return out


def prove_bounded(enc: Encoding, fams: Sequence[Family], timeout: float | None) -> tuple[str, list[Family], str]:
    """Houdini over the families (with the property) at ``enc``'s bounds, then induction: (status, kept, why)."""
    cands = [f.lemma() for f in fams] + property_lemmas(enc.protocol)
    try:
        alive, _ = houdini(enc, cands, timeout=timeout)
    except TimeoutError as exc:
        return "unknown", [], str(exc)
    names = {lem.name for lem in alive}
    if not all(lem.name in names for lem in property_lemmas(enc.protocol)):
        return "unknown", [], "the property is not inductive with the families"
    r = check_inductive(enc, alive, timeout=timeout, inductive=True)
    kept = [f for f in fams if f.show() in names]
    return ("proved" if r.status == "proved" else "unknown"), kept, r.reason or r.status


def prove_parametric(protocol: Protocol, bounds: Bounds, fams: Sequence[Family], timeout: float | None,
                     note: Callable[[str], None] | None = None) -> Any:
    """The families (and the property) for every N, V, F at ``bounds``' Q and S: Houdini over uninterpreted
    sorts drops what a step does not preserve, then the parametric obligations (a ParametricResult)."""
    from deferral.checks.symbolic import parametric

    lems = parametric.learned_lemmas(list(fams), protocol)
    props = lems[len(fams):]
    first = parametric.prove(protocol, dict(bounds), lems, timeout=timeout, note=note)
    if first.status == "proved":
        return first
    h = parametric.houdini(protocol, dict(bounds), lems[:len(fams)], props, timeout=timeout, note=note)
    if h.broken is not None:
        first.obligations.append(parametric.Obligation("houdini over uninterpreted sorts", "unknown", h.elapsed_s,
                                                       reason=h.broken))
        return first
    return parametric.prove(protocol, dict(bounds), list(h.alive) + props, timeout=timeout, note=note)


def learn_and_prove(protocol: Protocol, bounds: Bounds, *, timeout: float | None = 120.0, for_every: bool = True,
                    note: Callable[[str], None] | None = None) -> Ic3poResult:
    """IC3 with orbit clauses at growing instances; the families proved at ``bounds`` (bounded) and, with
    ``for_every``, for every N, V, F at its Q and S. Unknown (never proved) when the time runs out, IC3
    finds a counterexample at an instance, or the families are not inductive."""
    t0 = time.monotonic()
    deadline = None if timeout is None else t0 + timeout
    say = note or (lambda text: None)
    res = Ic3poResult("unknown", ROUTE_BOUNDED, [], 0.0)
    enc_req: Encoding | None = None
    last: set[str] = set()

    def left() -> float | None:
        return None if deadline is None else max(0.5, deadline - time.monotonic())

    reasons = []
    before: list[Family] = []  # every orbit learned at the instances so far: the seeds of the next one
    pool: dict[str, Family] = {}
    for at in instances_for(protocol, bounds, clipped=not for_every):
        began = time.monotonic()
        say(f"ic3po: sampling reachable states at {at.short()}")
        engine = Ic3(protocol, at, deadline, note)
        engine.samples, engine.exact = reachable_samples(protocol, at, engine.vocab, deadline)
        seeded = engine.seed(before)
        say(f"ic3po: IC3 with orbit clauses at {at.short()} ({len(engine.vocab.terms)} terms, "
            f"{seeded} of {len(before)} orbits learned at smaller instances hold here)")
        r = engine.run()
        for c in engine.clauses:
            pool.setdefault(c.family.show(), c.family)
        before = list(pool.values())
        row: dict[str, Any] = {"bounds": at.as_dict(), "status": r.status, "frames": r.frames,
                               "clauses": r.clauses, "seeded": seeded, "families": len(r.families),
                               "queries": r.queries, "samples": r.samples, "seconds": round(r.elapsed_s, 2)}
        res.rounds.append(row)
        if r.status != "invariant":
            reasons.append(f"IC3 at {at.short()}: {r.status} ({r.reason})")
            if r.status == "violated":
                break
            continue
        res.learned_at = [at]
        shown = {f.show() for f in r.families}
        row["same_as_before"] = shown == last
        last = shown
        if True:  # the requested bounds first: Houdini there drops what holds only at the instance
            enc_req = enc_req or (engine.enc if at == bounds else encode(protocol, bounds, check=False))
            status, kept, why = prove_bounded(enc_req, before, left())  # every instance's orbits
            row["bounded"] = status
            if status != "proved":
                reasons.append(f"at {bounds.short()}, the {len(before)} orbits learned up to {at.short()}: {why}")
                continue
            res.families = kept
        if for_every:
            say(f"ic3po: proving {len(res.families)} families for every N, V, F")
            p = prove_parametric(protocol, bounds, res.families, None if left() is None else left() / 2, note)
            row["parametric"] = p.verdict
            row["seconds_total"] = round(time.monotonic() - began, 2)
            if p.status == "proved":
                res.status, res.route = "proved", ROUTE_PARAMETRIC
                res.for_every = {"for_every": p.open_bounds, "assumed_concrete": p.concrete}
                res.lemmas = list(p.lemmas)
                break
            reasons.append(f"for every N, V, F, the families from {at.short()}: {p.reason[:300]}")
            if enc_req is not None:  # proved at the requested bounds at least
                res.status = "proved"
            continue
        res.status = "proved"
        break
    res.elapsed_s = time.monotonic() - t0
    if res.status != "proved" or (for_every and res.route != ROUTE_PARAMETRIC):
        res.reason = "; ".join(reasons) or "no instance left"
    return res


# ---- saving and loading ------------------------------------------------------------------------------------
def load(doc: Any, protocol: Protocol, bounds: Bounds) -> list[Family]:
    """Families from a ``deferral-lemmas/2`` document written after route ic3po (any signature of the
    protocol's sorts; InferError, one line)."""
    try:
        if doc.get("format") != FORMAT:
            raise InferError(f"not a {FORMAT} file")
        layout = protocol.layout(bounds)
        sorts = {s.name: s for s in index_sorts(protocol)}
        out = []
        for entry in list(doc["lemmas"]) + list(doc.get("inductive", [])):
            pairs = [(str(n), str(s)) for n, s in entry["vars"]]
            if any(s not in sorts for _, s in pairs):
                raise InferError(f"lemma {entry.get('shown')!r}: {protocol.name} has no such sort")
            sig = Signature(tuple((n, sorts[s]) for n, s in pairs))
            out.append(family_of_entry(entry, sig, terms(protocol, sig, bounds),
                                       lambda t: _labels(t, sig, layout), bounds, default_mode="never",
                                       owner=protocol.name))
        return out
    except InferError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InferError(f"malformed lemma file: {type(exc).__name__}: {exc}") from None


def _labels(t: Term, sig: Signature, layout: Any) -> dict[str, int]:
    """Every abstract value a term can have, by its label."""
    from deferral.checks.symbolic.infer import value_sort

    if t.kind == "len":
        candidates = [0, 1, 2]
    elif t.kind in ("holds", "eq"):
        candidates = [0, 1]
    else:
        var = layout.var(t.var)
        concrete = value_sort(var.domain, index_sorts(layout), layout.bounds)[0] == "concrete"
        candidates = list(range(var.domain.size(layout.bounds))) if concrete else [OTHER, *range(200, 250)]
    out: dict[str, int] = {}
    for code in [*candidates, UNDEF]:
        try:
            out.setdefault(label(t, code, sig, layout), code)
        except (KeyError, IndexError, ValueError, TypeError):
            continue
    return out


def is_ic3po_file(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("route", "")).startswith("ic3po")


