"""Which candidate lemmas a parametric query needs: Houdini and unsat cores at one bounded instance.

A parametric consecution query (:class:`deferral.checks.symbolic.parametric.Houdini`) that
assumes every live quantified family (50-80 of them) is often undecided by Z3's MBQI within
seconds, while the same question at one fixed instance (bit-vectors, e.g. 3 VCPUs, 2 pages
and frames) is decidable and fast. This module asks it there first:

* :meth:`Relevance.houdini`: the candidates some step does not preserve at the bounded
  instance are dropped (a bounded counterexample is a finite model of the parametric query
  too, so the parametric Houdini would drop them as well); if a property is not preserved
  by what is left, the pre-state is a counterexample to induction to learn from.
* :meth:`Relevance.core`: for one lemma and step, the unsat core over the assumed lemmas
  there: the parametric query of that lemma and step is asked with only those too (an
  unsat answer with fewer assumptions is an unsat answer with all of them).

Soundness never depends on this module: it only chooses what to drop early (Houdini's
fixpoint is proved afterwards) and which assumptions to try first.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Sequence

import z3

from deferral.model.bounds import Bounds
from deferral.model.concrete import State
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol

if TYPE_CHECKING:
    from deferral.checks.symbolic.forward import Forward


class Relevance:
    """Bounded Houdini and per-query unsat cores at ``at`` (the encoding is built on first use;
    lemma terms are kept across calls, by name)."""

    def __init__(self, protocol: Protocol, at: Bounds, enc: Any = None) -> None:
        self.protocol, self.at = protocol, at
        self._enc: Any = enc  # built on first use where not given (an encoding of ``protocol`` at ``at``)
        self._base: Any = None  # its state variables, selector and transition formula (infer._base)
        self._at_init: Any = None  # the initial values put in for the state variables (a Renaming)
        self._terms: dict[str, tuple[Any, Any] | None] = {}  # name -> (at x, at y); None: fails initially
        self._known: dict[str, Lemma] = {}  # every lemma :meth:`houdini` was given, by name
        self._solver: Any = None  # :meth:`core`'s (the transition relation and the lemmas' switches)
        self._use: dict[str, Any] = {}
        self._cache: dict[tuple[str, str], set[str]] = {}
        #: :meth:`houdini`'s solvers by step set (None: every step instance), each with its lemmas' switches
        self._hsolvers: dict[Any, tuple[Any, dict[str, Any]]] = {}
        self._neg: dict[str, Any] = {}  # name -> not (the lemma at y), built once
        self._last: Any = ()  # the step set of :meth:`houdini`'s last call (its solver's key)
        self._probes: list[tuple[list[str], Any]] = []  # (names, their y-terms as one bit-vector): :meth:`_false_in`
        self.seconds = 0.0  # spent here in all (building and solving)
        self.asked = 0  # :meth:`core` queries
        #: (a candidate dropped, the pre-state of the step that broke it) of :meth:`houdini`'s calls,
        #: in order: counterexamples to the candidates' induction, for a learner to exclude too
        self.dropped: list[tuple[str, State]] = []
        #: each candidate :meth:`houdini` dropped, by name: the pre-state of the step that broke it (the
        #: latest); a learner may leave it dropped while that state satisfies every candidate it offers
        self.witness: dict[str, State] = {}

    def _setup(self) -> None:
        if self._base is None:
            from deferral.checks.terms.encoding import Renaming, encode
            from deferral.checks.symbolic.infer import _base

            if self._enc is None:
                self._enc = encode(self.protocol, self.at, check=False)
            self._base = _base(self._enc)
            enc = self._enc
            self._at_init = Renaming(self._base[0], [enc.const(slot, v) for slot, v in zip(enc.layout.slots,
                                                                                          enc.layout.initial)])
            self._steps: dict[str, list[int]] = {}
            for k, action in enumerate(self._enc.model.actions):
                self._steps.setdefault(action.step.name, []).append(k)

    def _term(self, lem: Lemma) -> tuple[Any, Any] | None:
        from deferral.checks.symbolic.induction import instances

        if lem.name not in self._terms:
            xs, ys = self._base[0], self._base[1]
            at_x = z3.And([t for _, t in instances(self._enc, lem, xs)])
            # false in the initial state: the conjunction with the initial values put in, simplified (ground:
            # exact, no solver; one substitution per family, not one per instance with its renaming built anew)
            ok = z3.is_true(z3.simplify(self._at_init(at_x)))
            self._terms[lem.name] = None if not ok else (
                at_x, z3.And([t for _, t in instances(self._enc, lem, ys)]))
            if ok:
                self._neg[lem.name] = z3.Not(self._terms[lem.name][1])  # type: ignore[index]
        return self._terms[lem.name]

    def _false_in(self, m: Any, names: Sequence[str]) -> set[str]:
        """Those of ``names`` whose term at y is false in the model ``m``: the lemmas' y-terms are packed,
        :data:`PROBE` at a time, into bit-vectors (one bit each, built once) and each is evaluated once:
        one model evaluation per :data:`PROBE` lemmas instead of one per lemma (the Python side of a
        Houdini round, PROVE.md, 5 Dec, morning)."""
        probed = {n for names_, _ in self._probes for n in names_}
        fresh = [n for n in dict.fromkeys(names) if n not in probed]
        for j in range(0, len(fresh), PROBE):
            part = fresh[j:j + PROBE]
            one, zero = z3.BitVecVal(1, 1), z3.BitVecVal(0, 1)
            bits = [z3.If(self._terms[n][1], one, zero) for n in part]  # type: ignore[index]
            self._probes.append((part, bits[0] if len(bits) == 1 else z3.Concat(*bits)))
        want = set(names)
        out: set[str] = set()
        for part, vec in self._probes:
            if not want.intersection(part):
                continue
            v = m.eval(vec, model_completion=True).as_long()
            width = len(part)
            for pos, n in enumerate(part):  # Concat: the first part is the most significant bit
                if n in want and not (v >> (width - 1 - pos)) & 1:
                    out.add(n)
        return out

    def offer(self, lemmas: Sequence[Lemma]) -> None:
        """Lemmas :meth:`core` may name without a :meth:`houdini` here first (the encoding and their terms are built
        at the first core asked)."""
        self._known.update({lem.name: lem for lem in lemmas})

    def houdini(self, cands: Sequence[Lemma], must: Sequence[Lemma], deadline: float | None,
                settle: bool = False, forward: "Forward | None" = None) -> tuple[list[Lemma], str | None, State | None]:
        """Drop the candidates some step does not preserve at the bounded instance (given the
        live ones and ``must``, never dropped). Returns (alive, the ``must`` lemma not preserved
        or None, that counterexample's pre-state or None). TimeoutError past ``deadline``.
        ``settle``: a step that breaks a ``must`` lemma and candidates too drops those candidates and
        Houdini goes on: the counterexample returned is then one that every candidate left survives
        (the step breaks ``must`` alone), a state the candidates' fixpoint does not rule out.
        ``forward`` (a :class:`~deferral.checks.symbolic.forward.Forward` at these bounds): each
        counterexample is also run forward and every candidate false on the way dropped with it."""
        t0 = time.monotonic()
        self._setup()
        xs, ys, act, trans = self._base
        self._known.update({lem.name: lem for lem in list(cands) + list(must)})
        alive = [lem for lem in cands if self._term(lem) is not None]
        for lem in must:
            self._term(lem)
        # one step instance per orbit of VCPU permutations where every step and family is checked
        # symmetric (checks/symbolic/symmetry.py: Houdini drops the same families, and a
        # counterexample is one at a representative step; at 6,3,3,3 every instance made one query
        # of 30 s where the shipped route's symmetric Houdini takes 3 s: PROVE.md, 5 Dec)
        steps = self._representatives(list(alive) + list(must), deadline)
        # one solver per step set for every call (a learner's rounds offer mostly the same candidates
        # again): the transition relation and each lemma's term are added once, each behind a switch
        key = None if steps is None else tuple(steps)
        if key not in self._hsolvers:
            solver = _solver(None)
            solver.add(trans if steps is None else z3.And(self._enc.valid(xs), self._enc.trans(xs, ys, act, only=steps)))
            self._hsolvers[key] = (solver, {})
        s, use = self._hsolvers[key]
        self._last = key
        for lem in list(alive) + list(must):
            if lem.name not in use:
                use[lem.name] = z3.Bool(f"rel.{len(use)}")
                s.add(z3.Implies(use[lem.name], self._terms[lem.name][0]))  # type: ignore[index]
        try:
            while True:
                if deadline is not None and time.monotonic() >= deadline:
                    raise TimeoutError(f"bounded houdini at {self.at.short()}: timeout")
                live = list(alive) + list(must)
                s.push()
                s.add(_any([self._neg[lem.name] for lem in live]))
                with _Alarm(deadline) as alarm:
                    r = _check(s, [use[lem.name] for lem in live])
                if r == z3.unsat:
                    s.pop()
                    return alive, None, None
                if r == z3.unknown or alarm.fired:  # a model raced by the interrupt is not read
                    why = alarm.reason(s)
                    s.pop()
                    raise TimeoutError(f"bounded houdini at {self.at.short()}: {why}")
                m = s.model()
                false = self._false_in(m, [lem.name for lem in live])
                broke = [lem for lem in must if lem.name in false]
                gone = [lem for lem in alive if lem.name in false]
                if not broke and not gone:  # cannot be (the query asks for one false): never loop on it
                    raise TimeoutError(f"bounded houdini at {self.at.short()}: a model with no lemma false")
                state = tuple(self._enc.decode(m, xs))
                if gone and (not broke or settle):
                    self.dropped.append((gone[0].name, state))
                    self.witness.update((lem.name, state) for lem in gone)
                s.pop()
                if broke and (not settle or not gone):
                    return alive, broke[0].name, state
                out = {lem.name for lem in gone}
                alive = [lem for lem in alive if lem.name not in out]
                if forward is not None and alive:
                    more = forward.drops(state, alive)
                    self.witness.update(more)
                    alive = [lem for lem in alive if lem.name not in more]
        finally:
            if s.num_scopes():  # an exception between push and pop: the solver is reused
                s.pop(s.num_scopes())
            self.seconds += time.monotonic() - t0

    def counterexample(self, assumed: Sequence[Lemma], must: Sequence[Lemma], deadline: float | None) -> State | None:
        """A pre-state of a step that breaks a ``must`` lemma from a state where every lemma of ``assumed``
        and ``must`` holds (none is checked: a learner asks for the next counterexample as if the families
        it just made were kept), or None where there is none. On the solver :meth:`houdini` used last
        (its step set). TimeoutError past ``deadline``."""
        t0 = time.monotonic()
        self._setup()
        xs = self._base[0]
        live = [lem for lem in list(assumed) + list(must) if self._term(lem) is not None]
        if self._last not in self._hsolvers:
            return None
        s, use = self._hsolvers[self._last]
        for lem in live:
            if lem.name not in use:
                use[lem.name] = z3.Bool(f"rel.{len(use)}")
                s.add(z3.Implies(use[lem.name], self._terms[lem.name][0]))  # type: ignore[index]
        try:
            s.push()
            s.add(_any([self._neg[lem.name] for lem in must if lem.name in self._neg]))
            with _Alarm(deadline) as alarm:
                r = _check(s, [use[lem.name] for lem in live])
            if r == z3.unknown or (r == z3.sat and alarm.fired):  # a model raced by the interrupt is not read
                raise TimeoutError(f"bounded houdini at {self.at.short()}: {alarm.reason(s)}")
            return tuple(self._enc.decode(s.model(), xs)) if r == z3.sat else None
        finally:
            if s.num_scopes():
                s.pop(s.num_scopes())
            self.seconds += time.monotonic() - t0

    def _representatives(self, lemmas: Sequence[Lemma], deadline: float | None) -> list[int] | None:
        """The step instances Houdini must try for ``lemmas`` (symmetry.representatives), None for all."""
        from deferral.checks.symbolic.symmetry import representatives

        left = None if deadline is None else deadline - time.monotonic()
        if left is not None and left <= 0:
            return None
        try:
            return representatives(self._enc, lemmas, None if left is None else min(10.0, left))
        except z3.Z3Exception:
            return None

    def support(self, alive: Sequence[Lemma], must: Sequence[Lemma], deadline: float | None) -> list[Lemma] | None:
        """The members of ``alive`` that ``must``'s consecution at the bounded instance needs, closed
        (each one's consecution over every step needs only members: unsat cores), or None if some
        consecution is not unsat there (within ``deadline``). For a smaller parametric Houdini."""
        t0 = time.monotonic()
        self._setup()
        xs, ys, act, trans = self._base
        every = [lem for lem in list(alive) + list(must) if self._term(lem) is not None]
        use = {lem.name: z3.Bool(f"sup.{n}") for n, lem in enumerate(every)}
        back = {str(u): name for name, u in use.items()}
        s = _solver(None)
        s.set("core.minimize", True)
        # the step instances Houdini tries (one per orbit where every family is checked symmetric): a
        # lemma's consecution over those is its consecution over every step (symmetry.representatives)
        steps = self._representatives(every, deadline)
        s.add(trans if steps is None else z3.And(self._enc.valid(xs), self._enc.trans(xs, ys, act, only=steps)))
        for lem in every:
            s.add(z3.Implies(use[lem.name], self._terms[lem.name][0]))  # type: ignore[index]
        todo = [lem.name for lem in must if lem.name in use]
        needed = set(todo)
        rank = {name: n for n, name in enumerate(use)}
        try:
            while todo:
                name = todo.pop()
                s.push()
                s.add(z3.Not(self._terms[name][1]))  # type: ignore[index]
                with _Alarm(deadline):
                    r = s.check(list(use.values()))
                core = {back[str(c)] for c in s.unsat_core() if str(c) in back} if r == z3.unsat else None
                s.pop()
                if core is None:
                    return None
                for other in sorted(core - needed, key=rank.__getitem__):  # not set order: runs repeat
                    needed.add(other)
                    todo.append(other)
            return [lem for lem in alive if lem.name in needed]
        finally:
            self.seconds += time.monotonic() - t0

    def core(self, name: str, step: str, live: Sequence[str], limit_s: float = 2.0) -> set[str] | None:
        """The names among ``live`` that lemma ``name``'s consecution by ``step`` at the bounded
        instance used (unsat core), or None (not unsat there within ``limit_s``, or a lemma
        :meth:`houdini` was never given). For :attr:`parametric.Houdini.relevant`."""
        t0 = time.monotonic()
        self._setup()
        known = [n for n in live if n in self._known and self._term(self._known[n]) is not None]
        if name not in self._known or self._term(self._known[name]) is None or step not in self._steps:
            return None
        cached = self._cache.get((name, step))
        if cached is not None and cached <= set(known):
            return cached
        xs, ys, act, trans = self._base
        if self._solver is None:
            self._solver = _solver(None)
            self._solver.set("core.minimize", True)
            self._solver.add(trans)
        s = self._solver
        for n in known:
            if n not in self._use:
                self._use[n] = z3.Bool(f"need.{len(self._use)}")
                s.add(z3.Implies(self._use[n], self._terms[n][0]))  # type: ignore[index]
        back = {str(self._use[n]): n for n in known}
        try:
            self.asked += 1
            s.push()
            s.add(z3.Or([act == k for k in self._steps[step]]), z3.Not(self._terms[name][1]))  # type: ignore[index]
            s.set("timeout", max(1, int(1000 * limit_s)))
            r = s.check([self._use[n] for n in known])
            got = {back[str(c)] for c in s.unsat_core() if str(c) in back} if r == z3.unsat else None
            s.pop()
            if got is not None:
                self._cache[(name, step)] = got
            return got
        finally:
            self.seconds += time.monotonic() - t0


#: Lemmas per bit-vector probe (:meth:`Relevance._false_in`).
PROBE = 64


class _Alarm:
    """Interrupts Z3 once ``deadline`` passes while a query of this module runs (a timer thread calls the
    context's interrupt, again every :data:`REARM_S` until the query ends), instead of a solver
    ``timeout`` set to the time left: Z3's answers (its models: which lemmas Houdini drops, which
    counterexample comes back) depended on that value, so two runs of one learning loop took 9 and 24
    rounds (PROVE.md, 5 Dec, evening). A query started past the deadline is interrupted at once."""

    def __init__(self, deadline: float | None, ctx: Any = None) -> None:
        self.deadline, self.ctx = deadline, ctx
        self._timer: threading.Timer | None = None
        self._on = self._fired = False
        self._lock = threading.Lock()  # no interrupt once the query has ended

    def __enter__(self) -> "_Alarm":
        if self.deadline is not None:
            self._on = True
            self._arm(max(0.0, self.deadline - time.monotonic()))
        return self

    def _arm(self, after: float) -> None:
        self._timer = threading.Timer(after, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        with self._lock:
            if self._on:
                self._fired = True
                (self.ctx or z3.main_ctx()).interrupt()
                self._arm(REARM_S)

    @property
    def fired(self) -> bool:
        """Did this alarm interrupt the context? Then a ``sat`` that raced the interrupt is not read:
        the deadline has passed, and its model may be unavailable."""
        return self._fired

    def reason(self, s: z3.Solver) -> str:
        """Why the query ended unknown: "timeout" where this alarm interrupted it, else the solver's reason."""
        return "timeout" if self._fired else s.reason_unknown()

    def __exit__(self, *exc: Any) -> None:
        with self._lock:
            self._on = False
        if self._timer is not None:
            self._timer.cancel()
        if self._fired:
            clear_interrupt(self.ctx)


def clear_interrupt(ctx: Any = None) -> None:
    """Clear an interrupt a query did not consume: Z3 keeps the context's cancel flag until its next
    check, and until then every model evaluation in that context fails with "canceled" (an interrupt
    that lands as a query ends: a learner's next step, or another route, would crash on it). An empty
    check in the same context clears it."""
    z3.SolverFor("QF_FD", ctx=ctx or z3.main_ctx()).check()


#: Seconds between an :class:`_Alarm`'s interrupts once its deadline has passed.
REARM_S = 0.2


def _any(terms: Sequence[Any]) -> Any:
    """``z3.Or(terms)`` through the C API (z3.Or's argument checks took seconds over a learner's rounds)."""
    if len(terms) <= 1:
        return terms[0] if terms else z3.BoolVal(False)
    ctx = terms[0].ctx
    arr = (z3.Ast * len(terms))(*[t.as_ast() for t in terms])
    return z3.BoolRef(z3.Z3_mk_or(ctx.ref(), len(terms), arr), ctx)


def _check(s: z3.Solver, assumptions: Sequence[Any]) -> Any:
    """``s.check(assumptions)`` for Bool constants, without z3's per-assumption cast (a Houdini round
    passes hundreds: that cast was a third of the rounds' time, PROVE.md, 5 Dec, morning)."""
    arr = (z3.Ast * len(assumptions))(*[a.as_ast() for a in assumptions])
    return z3.CheckSatResult(z3.Z3_solver_check_assumptions(s.ctx.ref(), s.solver, len(assumptions), arr))


def _solver(deadline: float | None) -> z3.Solver:
    s = z3.SolverFor("QF_BV")
    if deadline is not None:
        s.set("timeout", max(1, int(1000 * (deadline - time.monotonic()))))
    return s
