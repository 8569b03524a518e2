"""The IC3 loop of route ic3po at one instance: orbit clauses, frames, and the one-frame exact mode.

:class:`Ic3` runs IC3/PDR over the bit-vector encoding of the protocol's own step functions
(:mod:`deferral.checks.terms.encoding`) at one instance, its literals the terms of a
:class:`~deferral.checks.symbolic.ic3po_vocab.Vocabulary`:

* a counterexample to the property in frame k is blocked recursively (its predecessors in lower
  frames first); a blocked cube is shrunk by the unsat core of the relative-induction query, then
  literal by literal, each candidate first checked against the sampled reachable states and the
  initial state (a cube some reachable state matches cannot be blocked: no query is spent on it);
* the whole orbit (every permutation of VCPUs, pages, spaces) is added to the frames, not one clause;
* clauses are pushed forward; two equal frames are an inductive invariant at the instance.

With every reachable state of the instance at hand (``exact``) one frame is enough
(:meth:`Ic3.strengthen`): each counterexample to induction is excluded by a few of its literals
no reachable state has together (:func:`deferral.checks.symbolic.ic3po_sample.exclusion`).
Every solver query stops at the deadline (time limit: :class:`Ic3Unknown`).
"""

from __future__ import annotations

import heapq
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import z3

from deferral.checks.terms.encoding import Encoding, encode
from deferral.checks.symbolic.ic3po_sample import Rows, exclusion
from deferral.checks.symbolic.ic3po_vocab import Cube, Vocabulary, orbit_family
from deferral.checks.symbolic.induction import houdini, instances
from deferral.checks.symbolic.infer import UNDEF, Family, property_lemmas
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.protocol import Protocol

#: Each solver query at most this long (seconds).
QUERY_S = 20.0


class Ic3Unknown(Exception):
    """IC3 stopped without an invariant (time, an undecided query, a counterexample at the instance:
    ``violated``)."""

    def __init__(self, reason: str, violated: bool = False, inseparable: bool = False) -> None:
        super().__init__(reason)
        self.violated, self.inseparable = violated, inseparable


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
                 note: Callable[[str], None] | None = None, samples: Rows | None = None) -> None:
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
        #: sampled reachable states (one row an orbit): set by the caller (ic3po_sample.reachable_samples)
        self.samples = samples if samples is not None else Rows.of_rows(
            self.vocab.identity_rows(np.array([self.model.initial], dtype=np.int64)), self.vocab.permutations())
        self.queries = 0
        self.exact = False  # the samples are every reachable state of the instance
        self.general = True  # exclude counterexamples by the literals over the fewest variables (else: rarest)

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
            if cand.matches(self.init_rows) or self.samples.matches(cand):
                continue
            ok, core2 = self.relative(cand, i)
            if ok:
                kept = cand.restricted(core2)
                small = kept if kept.cols and not kept.matches(self.init_rows) else cand
        return small

    def excluding(self, cube: Cube) -> Cube | None:
        """A few of the cube's literals no sampled reachable state has together (ic3po_sample.exclusion)."""
        return exclusion(self.vocab, self.samples, cube, self.general)

    def seed(self, fams: Sequence[Family]) -> int:
        """Adopt the families (learned at a smaller instance) that no reachable state here violates (only
        with every reachable state at hand: ``exact``); how many orbits were adopted."""
        if not self.exact:
            return self._seed_inductive(fams)
        n = 0
        seen = {c.family.show() for c in self.clauses}
        for fam in fams:
            cubes = self.vocab.cubes_of(fam)
            if not cubes or any(self.samples.matches(c) for c in cubes):
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
                               timeout=QUERY_S, deadline=self.deadline)
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
                raise Ic3Unknown(f"a counterexample at {self.at.short()} (bmc gives the shortest trace)", True)
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
                if self.samples.reachable(state):  # a reachable state whose successor leaves P
                    raise Ic3Unknown(f"a counterexample at {self.at.short()}: a reachable state leaves the property "
                                     "(bmc gives the shortest trace)", True)
                raise Ic3Unknown(f"a counterexample to induction at {self.at.short()} that no literal separates "
                                 "from a reachable state (the terms cannot tell them apart)", inseparable=True)
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
                             reason, len(self.samples))

        if self.model.violations(self.model.initial):
            return res("violated", [], 0, "the initial state violates the property")
        if self.exact:
            try:
                return res("invariant", self.strengthen(), 1)
            except Ic3Unknown as exc:
                if not exc.inseparable:
                    return res("violated" if exc.violated else "unknown", [], 1, str(exc))
                # the terms cannot tell a counterexample to induction from a reachable state: go on with
                # frames (relative induction decides), from the orbits learned so far
                self.say(f"ic3po at {self.at.short()}: {exc}; IC3 with frames from the {len(self.clauses)} orbits")
                for c in self.clauses:  # invariants of the instance, so in F_1; pushed (or not) like any other
                    c.level = min(c.level, 1)
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
            status = "violated" if exc.violated else "unknown"
            return res(status, [], k, str(exc))
