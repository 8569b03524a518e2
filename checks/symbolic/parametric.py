"""A parametric proof of a protocol's invariants for every number of VCPUs, pages and frames.

Nothing here restates the protocol. The protocol's own step, procedure, property and lemma
functions (model/reference.py, a variant's, model/invariant.py) are evaluated by the
parametric backend of the step context (checks/symbolic/parametric_ops.py): VCPUs, pages
and frames (every open sort) are uninterpreted Z3 sorts, so a proof holds for every N, V
and F; the queue capacity Q and the number of address spaces S stay concrete (the JSON
says so). The proof obligations, each unsat = proved:

* initiation: ``Init & !L`` for each lemma L;
* consecution, per step (its open-sort parameters Skolem constants, its concrete ones, a
  space, enumerated): ``Inv(x) & guard(x) & !L(post(x))`` for each lemma L;
* safety: ``Inv(x) & !P(x)`` for each invariant property P;
* no failing step: ``Inv(x) & (the guard fails | the guard holds and the effect fails)`` for each
  step instance, and ``Inv(x) & P fails`` for each invariant property, where "fails" is a read or
  write the concrete model refuses (a VCPU-or-none holding none used as a VCPU, a queue position
  past its capacity; checks/symbolic/parametric_ops.py records where): Z3 gives such a read some
  value, so without it the lemmas would say nothing about states where a step fails. Unsat for
  every N, V, F: the concrete model and the encoding agree along every run.

A satisfiable consecution query is a counterexample to induction of the lemmas (not
necessarily a bug: the lemmas may be too weak), so the result is then "unknown", naming the
lemma and the step, never "proved"; so is a query Z3 does not decide (its reason as text).

For the agreement tests, :class:`ParamEncoding` also builds finite universes (exactly N
VCPUs, V pages, F+1 frames as enumeration sorts), where :func:`successors` enumerates the
post-states the same functions allow from a concrete state.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import z3

from deferral.checks.terms.encoding import EncodingError
from deferral.checks.symbolic.parametric_ops import (Fn, Key, ParamBounds, ParamContext, ParamError, Universe,
                                                     base_functions, evaluate, initial_functions,
                                                     mentions, state_keys)
from deferral.model.context import USER_ERRORS, StepError, describe_user_error
from deferral.model.invariant import Lemma, invariant_for
from deferral.model.protocol import Protocol, Step
from deferral.model.schema import BOOL, FRAME, Domain, Layout, OrNone, Pair, Range, Sort

if TYPE_CHECKING:
    from deferral.checks.symbolic.parametric_refute import Refutation

#: The bounds a parametric proof keeps concrete (when the protocol declares them).
CONCRETE = ("queue", "spaces")

State = dict[Key, Fn]


class ParamEncoding:
    """A protocol over uninterpreted sorts (or a finite universe): states, steps, lemmas."""

    def __init__(self, protocol: Protocol, concrete: Mapping[str, int],
                 finite: Mapping[str, int] | None = None) -> None:
        self.protocol = protocol
        sorts = {d.bound: d for v in protocol.variables for d in (*v.index, v.domain) if isinstance(d, Sort)}
        self.bounds = ParamBounds(protocol.bound_decls, concrete, sorts)
        self.universe = Universe(concrete, finite)
        self.variables = protocol.variables
        self.procedures = protocol.procedure_table
        self.fresh: list[Any] = []  # every loop constant made (with its sentinel): none may be free in a result
        self._bound = 0  # lemma parameters bound so far (their names)

    @property
    def open_bounds(self) -> list[str]:
        return [d.name for d in self.protocol.bound_decls if d.name not in self.bounds.concrete]

    # ---- states -------------------------------------------------------------------------------------
    def state(self, tag: str) -> State:
        return base_functions(self.universe, self.variables, self.bounds, tag)

    def init(self) -> State:
        return initial_functions(self.universe, self.variables, self.bounds)

    def keys(self) -> list[Key]:
        return state_keys(self.variables, self.bounds)

    # ---- evaluating the protocol's functions -----------------------------------------------------------
    def run(self, what: str, fn: Callable[..., Any], fns: State, args: Sequence[Any],
            doms: Sequence[Domain]) -> tuple[ParamContext, Any]:
        """``fn(ctx, *args)`` on a context over ``fns``; args that are Z3 terms are wrapped as
        values of their domain. Any failure is one line naming ``what``."""
        def make(plan: Mapping[Any, list[Any]]) -> ParamContext:
            ctx = ParamContext(self.universe, self.variables, fns, self.procedures, self.bounds, plan)
            object.__setattr__(ctx, "fresh", self.fresh)
            return ctx

        def call(ctx: ParamContext, *raw: Any) -> Any:
            wrapped = [ctx.ops.wrap(a, d) if isinstance(a, z3.ExprRef) else a for a, d in zip(raw, doms)]
            return fn(ctx, *wrapped)

        where = f"{self.protocol.name} ({self.protocol.source}): {what} (parametric encoding):"
        try:
            return evaluate(make, call, args)
        except ParamError as exc:
            raise EncodingError(f"{where} {exc}") from None
        except (StepError, z3.Z3Exception) as exc:
            raise EncodingError(f"{where} cannot be evaluated for every number of elements ({exc})") from None
        except USER_ERRORS as exc:
            raise EncodingError(f"{where} {describe_user_error(exc)}") from None

    def _closed(self, what: str, term: Any) -> Any:
        if mentions(term, self.fresh):
            raise EncodingError(f"{self.protocol.name} ({self.protocol.source}): {what} (parametric encoding): "
                                "a loop variable of s.each is used outside its loop (collect over a loop "
                                "with s.all / s.any)")
        return term

    def instances(self, step: Step, tag: str = "") -> list[tuple[Any, ...]]:
        """The step's argument tuples: a Skolem constant per open-sort parameter, every value of
        a concrete one (a space)."""
        if step.exists is not None and not step.exists(self.bounds):  # type: ignore[arg-type]
            return []
        choices: list[Sequence[Any]] = []
        for name, dom in step.params:
            if self.universe.is_open(dom):
                choices.append([z3.Const(f"{step.name}{tag}.{name}", self.universe.sort(dom))])
            else:
                choices.append(range(self.universe.size(dom)))
        return list(itertools.product(*choices))

    def label(self, step: Step, args: Sequence[Any]) -> str:
        shown = [name if isinstance(a, z3.ExprRef) else str(a)
                 for (name, dom), a in zip(step.params, args)
                 if isinstance(a, z3.ExprRef) or not self.universe.single(dom)]
        return f"{step.name}({','.join(shown)})"

    def guard(self, step: Step, args: Sequence[Any], fns: State) -> Any:
        what = f"guard of {self.label(step, args)}"
        ctx, value = self.run(what, step.guard, fns, args, [d for _, d in step.params])
        return self._closed(what, ctx.ops.boolean(value))

    def post(self, step: Step, args: Sequence[Any], fns: State) -> State:
        ctx, _ = self.run(f"step {self.label(step, args)}", step.effect, fns, args, [d for _, d in step.params])
        return ctx.fns

    def failing(self, step: Step, args: Sequence[Any], fns: State) -> Any:
        """Where the step instance fails on the concrete model (a read or write through a VCPU-or-none
        holding none, a queue position past its capacity): its guard fails, or the guard holds and its
        effect fails. Recorded under the enclosing ``s.when`` conditions; a loop's iteration fails for
        some element. False where it never fails."""
        label = self.label(step, args)
        doms = [d for _, d in step.params]
        at_guard, value = self.run(f"guard of {label}", step.guard, fns, args, doms)
        guard = at_guard.ops.boolean(value)
        in_effect, _ = self.run(f"step {label}", step.effect, fns, args, doms)
        fails = self._some_iteration(at_guard, at_guard.failures)
        then = self._some_iteration(in_effect, in_effect.failures)
        if not z3.is_false(then):
            fails = z3.Or(fails, z3.And(guard, then))
        return self._closed(f"step {label}", fails)

    def _some_iteration(self, ctx: ParamContext, terms: Sequence[Any]) -> Any:
        """The disjunction of ``terms``, each existentially closed over the loop variables it mentions."""
        out = []
        for term in terms:
            free = [c for c, sen in self.fresh if mentions(term, [(c, sen)])]
            out.append(ctx.quantify(free, term, False) if free else term)
        return z3.BoolVal(False) if not out else out[0] if len(out) == 1 else z3.Or(out)

    def property_failing(self, fns: State) -> list[tuple[str, Any]]:
        """Where each invariant property's evaluation fails (some parameter value): (name, condition)."""
        out = []
        for p in self.protocol.properties:
            if p.kind != "invariant":
                continue
            cases = []
            choices: list[Sequence[Any]] = []
            bound: list[Any] = []
            for pname, dom in p.params:
                if self.universe.is_open(dom):
                    self._bound += 1
                    c = z3.Const(f"{pname}!f{self._bound}", self.universe.sort(dom))
                    bound.append(c)
                    choices.append([c])
                else:
                    choices.append(range(self.universe.size(dom)))
            for args in itertools.product(*choices):
                ctx, _ = self.run(p.name, p.predicate, fns, args, [d for _, d in p.params])
                term = self._some_iteration(ctx, ctx.failures)
                if not z3.is_false(term):
                    cases.append(ctx.quantify(bound, term, False) if bound else term)
            if cases:
                out.append((p.name, self._closed(p.name, z3.Or(cases) if len(cases) > 1 else cases[0])))
        return out

    def holds(self, name: str, fn: Callable[..., Any], params: Sequence[tuple[str, Domain]], fns: State) -> Any:
        """``fn(s, *params)`` for every parameter value: ForAll over open sorts, a conjunction
        over concrete ones."""
        choices: list[Sequence[Any]] = []
        bound: list[Any] = []
        for pname, dom in params:
            if self.universe.is_open(dom):
                self._bound += 1  # the encoding's own count (see parametric_ops.ParamContext._loop)
                c = z3.Const(f"{pname}!p{self._bound}", self.universe.sort(dom))
                bound.append(c)
                choices.append([c])
            else:
                choices.append(range(self.universe.size(dom)))
        terms = []
        ctx = None
        for args in itertools.product(*choices):
            ctx, value = self.run(name, fn, fns, args, [d for _, d in params])
            terms.append(ctx.ops.boolean(value))
        body = z3.And(terms) if len(terms) != 1 else terms[0]
        if bound and ctx is not None:
            body = ctx.quantify(bound, body, True)
        return self._closed(name, body)

    def lemmas(self, lemmas: Sequence[Lemma], fns: State) -> list[tuple[str, Any]]:
        return [(lem.name, self.holds(lem.name, lem.fn, lem.params, fns)) for lem in lemmas]

    def properties(self, fns: State) -> list[tuple[str, Any]]:
        return [(p.name, self.holds(p.name, p.predicate, p.params, fns))
                for p in self.protocol.properties if p.kind == "invariant"]

    # ---- the transition relation (finite universes: the agreement tests) -------------------------------
    def equal(self, a: State, b: State) -> Any:
        """Every element of every variable is the same in ``a`` and ``b`` (finite universe)."""
        u = self.universe
        eqs = []
        for key in self.keys():
            var = next(v for v in self.variables if v.name == key[0])
            for idx in itertools.product(*(u.values(s) for s in var.index)):
                eqs.append(a[key](*idx) == b[key](*idx))
        return z3.And(eqs)

    def trans(self, x: State, y: State) -> Any:
        """Some step instance is enabled in ``x`` and leads to ``y`` (its arguments existential)."""
        cases = []
        for step in self.protocol.steps:
            for args in self.instances(step, ".t"):
                cases.append(z3.And(self.guard(step, args, x), self.equal(self.post(step, args, x), y)))
        return z3.Or(cases)


# ---- finite universes: concrete states as values of the functions ----------------------------------------
class Bridge:
    """The concrete states of a ``Layout`` as values of a finite universe's state functions."""

    def __init__(self, enc: ParamEncoding, layout: Layout) -> None:
        assert enc.universe.finite is not None
        self.enc, self.layout = enc, layout
        u = enc.universe
        self.args = [tuple(u.values(s)[i] for i, s in zip(slot.index, slot.var.index)) for slot in layout.slots]
        self.cands = []
        for slot in layout.slots:
            dom = Range(0, slot.var.cap(layout.bounds), name="length") if slot.part == "len" else slot.var.domain
            self.cands.append(u.values(dom))
        self.keys = [(slot.var.name, slot.part) for slot in layout.slots]

    def term(self, fns: State, j: int) -> Any:
        return fns[self.keys[j]](*self.args[j])

    def equalities(self, fns: State, state: Sequence[int]) -> list[Any]:
        return [self.term(fns, j) == self.cands[j][v] for j, v in enumerate(state)]

    def read(self, m: z3.ModelRef, fns: State) -> tuple[int, ...]:
        out = []
        for j in range(len(self.keys)):
            val = m.eval(self.term(fns, j), model_completion=True)
            out.append(next(n for n, c in enumerate(self.cands[j]) if z3.eq(z3.simplify(val), c)))
        return tuple(out)


def successors(bridge: Bridge, solver: z3.Solver, x: State, y: State, state: Sequence[int]) -> set[tuple[int, ...]]:
    """Every post-state the relation in ``solver`` (``trans(x, y)``) allows from ``state``."""
    found: set[tuple[int, ...]] = set()
    solver.push()
    solver.add(*bridge.equalities(x, state))
    while solver.check() == z3.sat:
        post = bridge.read(solver.model(), y)
        found.add(post)
        solver.add(z3.Not(z3.And(bridge.equalities(y, post))))
    solver.pop()
    return found


# ---- the proof -------------------------------------------------------------------------------------------
@dataclass
class Obligation:
    name: str
    status: str  # proved | cti | unknown | not tried (an earlier obligation settled the result)
    elapsed_s: float
    reason: str = ""
    broken: list[str] = field(default_factory=list)
    model: str = ""
    #: lemmas whose query here the parametric Houdini's incremental solver had proved (unsat assuming
    #: only lemmas of this invariant: :meth:`Houdini.proved`), so not asked again
    by_houdini: int = 0

    def to_json(self) -> dict[str, Any]:
        return {"obligation": self.name, "status": self.status, "elapsed_s": round(self.elapsed_s, 3),
                "reason": self.reason or None, "broken": self.broken or None, "model": self.model or None,
                **({"proved_by_houdini": self.by_houdini} if self.by_houdini else {})}


@dataclass
class ParametricResult:
    protocol: Protocol  # what was proved (results carry their model)
    concrete: dict[str, int]  # the bounds assumed concrete (Q, S)
    open_bounds: list[str]  # the bounds proved for every value
    lemmas: list[Lemma]
    obligations: list[Obligation]
    elapsed_s: float
    lemma_source: str = "model/invariant.py"  # where the candidate invariant came from
    dropped: list[tuple[str, str]] = field(default_factory=list)  # candidates Houdini dropped, and why
    #: an invariant violated at a small instance (checks/symbolic/parametric_refute.py): the claim is false
    refutation: "Refutation | None" = None

    @property
    def variant(self) -> str:
        return self.protocol.name

    @property
    def verdict(self) -> str:
        """One line: proved for every number of what, at which concrete bounds; or unknown and why."""
        if self.status == "proved":
            return (f"proved for every number of {', '.join(self.open_bounds)}, at "
                    + ", ".join(f"{k}={v}" for k, v in self.concrete.items()))
        if self.status == "violated":
            return "violated: not true for every number of " + ", ".join(self.open_bounds) + "; " + self.reason
        return "unknown: nothing is claimed proved; " + self.reason

    @property
    def status(self) -> str:
        """violated when a small instance has a counterexample; proved only when every obligation
        is; a counterexample to induction is unknown."""
        if self.refutation is not None:
            return "violated"
        return "proved" if self.obligations and all(o.status == "proved" for o in self.obligations) else "unknown"

    @property
    def exit_code(self) -> int:
        return {"proved": 0, "violated": 1}.get(self.status, 3)

    @property
    def reason(self) -> str:
        r = self.refutation
        if r is not None:
            return (f"{r.outcome.name} is violated at {r.bounds.short()}: a reachable state, "
                    f"{r.length} steps from the initial state (the shortest there, by explicit search)")
        parts = []
        for o in self.obligations:
            if o.status == "cti" and o.name == NO_FAILING_STEP:
                parts.append(f"{o.name}: the lemmas admit a state where {'; '.join(o.broken)} on the concrete "
                             "model (a read naming no element; the lemmas may be too weak to say it never "
                             "happens)")
            elif o.status == "cti":
                parts.append(f"{o.name}: a counterexample to induction of lemma {'; '.join(o.broken)!r} "
                             "(the lemmas are not inductive for this protocol; it may still be safe)")
            elif o.status == "unknown":
                parts.append(f"{o.name}: Z3 did not decide it ({o.reason})")
        return "; ".join(parts)


def _solver(timeout: float | None, ctx: z3.Context | None = None) -> z3.Solver:
    s = z3.Solver(ctx=ctx)
    s.set("smt.mbqi", True)
    if timeout is not None:
        s.set("timeout", max(1, int(timeout * 1000)))
    return s


def _show_model(m: z3.ModelRef) -> str:
    return "; ".join(f"{d.name()} = {m[d]}" for d in sorted(m.decls(), key=lambda d: d.name())
                     if d.name().startswith("x.") or "." in d.name())[:4000]


SEEDS = tuple(range(10))


class Isolated:
    """A fresh Z3 context for one obligation's queries, with its terms translated into it once.

    Why: MBQI's time on one and the same query depends on the whole process's history (the
    ids Z3 gave every term built before: they order its case splits and instantiations).
    Measured on lazy_tlb_ipi at S=2 (benchmarks/PROVE.md, 4 Dec evening): after other parametric
    work in the process, 7 of 952 consecution queries ran into a 3 s limit for some seed (the
    worst, no_stale_translation at ack_ipi, decided in 0.04 s by one seed and not in 20 s by the
    next two), and none of the 952 did in a fresh context per query. A query's answer then depends
    on the query (and the seed) mostly, not on what ran before it: not wholly (a CI run on 7 Dec saw
    no_stale_translation at ack_ipi undecided for 20 s by one seed in a fresh context, a query every seed of 8 decides
    in 0.01 s in a process of its own), so callers still try more than one seed (:data:`FRESH_TRIES`). The terms are
    the same formulas (``translate``), so every answer holds for the originals."""

    def __init__(self) -> None:
        self.ctx = z3.Context()
        self._done: dict[int, tuple[Any, Any]] = {}  # id in the main context -> (original kept alive, copy)

    def __call__(self, term: Any) -> Any:
        key = term.get_id()
        if key not in self._done:
            self._done[key] = (term, term.translate(self.ctx))
        return self._done[key][1]


#: Seeds a fresh context tries on a query the engine's own solver left undecided (:meth:`Houdini._ask_fresh`).
FRESH_TRIES = 4

#: The first try of a query gets ``timeout`` / FIRST_TRY_PARTS (at least MIN_TRY_S); each second try doubles it.
FIRST_TRY_PARTS, MIN_TRY_S = 40, 0.5


def try_limits(timeout: float | None, tries: int) -> list[float | None]:
    """Each try's time limit: short first, doubled every second try, within ``timeout`` in all (the
    last try gets what is left). MBQI's time on a query is bimodal by seed (a fraction of a second, or
    not within 20 s: PROVE.md, 4 Dec evening), so many short tries first lose little to a seed that
    diverges, and the longer ones still decide a query that needs seconds."""
    if timeout is None:
        return [None] * tries
    out: list[float | None] = []
    each, left = max(MIN_TRY_S, timeout / FIRST_TRY_PARTS), timeout
    for k in range(tries):
        last = k == tries - 1 or left - each < MIN_TRY_S
        out.append(max(MIN_TRY_S, left if last else each))
        left -= each
        if last:
            break
        if k % 2 == 1:
            each *= 2
    return out


def _query(facts: list[Any], goal: Any, timeout: float | None,
           seeds: Sequence[int] = SEEDS, into: Isolated | None = None) -> tuple[Any, Any]:
    """Is ``facts & !goal`` satisfiable? MBQI's answer time varies a lot with Z3's random
    seed, so an unknown is retried with the next seed (:func:`try_limits`: short tries first,
    ``timeout`` in all); unsat and sat are answers whatever the seed. ``into``: asked in that
    context (the terms translated; default: a fresh one, see :class:`Isolated`). Returns
    (result, solver)."""
    into = Isolated() if into is None else into
    local = [into(f) for f in facts]
    negated = z3.Not(into(goal))
    s = None
    for seed, each in zip(seeds, try_limits(timeout, len(seeds))):
        s = _solver(each, into.ctx)
        s.set("random_seed", seed)
        s.add(*local, negated)
        r = s.check()
        if r != z3.unknown:
            return r, s
    return z3.unknown, s


def _check(name: str, facts: list[Any], goals: list[tuple[str, Any]], timeout: float | None,
           seeds: Sequence[int] = SEEDS, fewer: tuple[list[Any], Mapping[str, list[Any]]] = ([], {})
           ) -> Obligation:
    """``facts & !goal`` for each goal (one query per lemma: MBQI answers these quickly, while
    the disjunction of all negated lemmas can time out). All unsat = proved; a sat one is a
    CTI naming the broken lemma; otherwise unknown with Z3's reasons."""
    start = time.monotonic()
    reasons: list[str] = []
    always, needs = fewer  # a goal's query first with ``always`` and the facts ``needs`` names for it
    into = Isolated()  # this obligation's own context: its answers do not depend on earlier queries
    for label, goal in goals:
        r = z3.unknown
        if label in needs:
            r, s = _query(always + needs[label], goal, None if timeout is None else timeout * 2 / len(seeds),
                          seeds[:2], into)
        if r != z3.unsat:
            r, s = _query(facts, goal, timeout, seeds, into)
        if r == z3.sat:
            return Obligation(name, "cti", time.monotonic() - start, broken=[label], model=_show_model(s.model()))
        if r == z3.unknown:
            reasons.append(f"{label}: {s.reason_unknown()}")
    el = time.monotonic() - start
    if reasons:
        return Obligation(name, "unknown", el, reason="; ".join(reasons))
    return Obligation(name, "proved", el)


def for_distinct(lem: Lemma) -> Lemma:
    """A lemma family learned by checks/symbolic/infer.py states its terms for DISTINCT variables
    of one sort (it answers True on a concrete instance with two equal); over uninterpreted
    terms that test cannot be made, so here it is the premise: "distinct implies the family"."""
    params = lem.params

    def fn(s: Any, *args: Any) -> Any:
        pairs = [(a, b) for n, ((_, da), a) in enumerate(zip(params, args))
                 for (_, db), b in zip(params[n + 1:], args[n + 1:]) if da is db]
        return s.not_(s.all(a != b for a, b in pairs)) | lem.fn(s, *args)

    return Lemma(lem.name, params, fn)


def learned_lemmas(families: Sequence[Any], protocol: Protocol) -> list[Lemma]:
    """Learned lemma families (a ``deferral-lemmas/2`` file) and the invariant properties."""
    return [for_distinct(f.lemma()) for f in families] + [
        Lemma(p.name, p.params, p.predicate) for p in protocol.properties if p.kind == "invariant"]


def concrete_bounds(protocol: Protocol, values: Mapping[str, int]) -> dict[str, int]:
    """The values of the bounds kept concrete (of those the protocol declares)."""
    declared = {d.name: d for d in protocol.bound_decls}
    return {name: values.get(name, declared[name].default) for name in CONCRETE if name in declared}


#: the obligation that the lemmas rule out every state where a step or property fails on the concrete model
NO_FAILING_STEP = "no step or property fails (a read naming no element), for every N, V, F"


def failing_goals(enc: ParamEncoding, x: State) -> list[tuple[str, Any]]:
    """``(label, not fails)`` for every step instance and invariant property that can fail in some
    state (:meth:`ParamEncoding.failing`): the lemmas must imply each goal."""
    found = [(f"step {enc.label(step, args)} fails", enc.failing(step, args, x))
             for step in enc.protocol.steps for args in enc.instances(step)]
    found += [(f"property {name} fails", fails) for name, fails in enc.property_failing(x)]
    return [(label, z3.Not(fails)) for label, fails in found if _may_hold(fails)]


def _may_hold(cond: Any, timeout: float = 2.0) -> bool:
    """Is ``cond`` satisfiable in some state (not known to be unsat)? A queue's push records "its
    length past the capacity where its length is below it": never, so no goal."""
    if z3.is_false(cond):
        return False
    into = Isolated()
    s = _solver(timeout, into.ctx)
    s.add(into(cond))
    return s.check() != z3.unsat


def prove(protocol: Protocol, concrete: Mapping[str, int], lemmas: Sequence[Lemma] | None = None,
          timeout: float | None = 60.0, note: Callable[[str], None] | None = None,
          seeds: Sequence[int] = SEEDS, keep_going: bool = False,
          needs: Callable[[str, int], set[str] | None] | None = None,
          known: Callable[[Lemma, int, Sequence[Lemma]], bool] | None = None) -> ParametricResult:
    """Initiation, consecution per step and safety over uninterpreted sorts.

    ``lemmas``: the candidate inductive invariant (default: model/invariant.py's shipped
    lemmas at these bounds); ``timeout`` bounds each lemma's query (all ``seeds`` together).
    The first obligation not proved settles the result (unknown): the rest are listed "not
    tried" unless ``keep_going``. Raises EncodingError when a function cannot be evaluated
    parametrically. ``needs(lemma name, step instance number)``: the lemmas that lemma's
    consecution there should need (:meth:`Houdini.needs`); its query assumes only those
    first (unsat with fewer assumptions is unsat with all), then every lemma. ``known(lemma,
    step instance number, lemmas)``: that consecution query was already decided unsat by a
    solver assuming only some of ``lemmas`` (:meth:`Houdini.proved`: the same formula, asked in
    the learning's incremental solver); it is not asked again (MBQI in a fresh
    context can leave undecided a query it decided there: 48 s for one of lazy_cur_clear's at S=2,
    benchmarks/PROVE.md, 5 Dec, afternoon, round 2)."""
    start = time.monotonic()
    enc = ParamEncoding(protocol, concrete_bounds(protocol, concrete))
    lemmas = list(invariant_for(enc.bounds) if lemmas is None else lemmas)
    x = enc.state("x")
    inv_x = [term for _, term in enc.lemmas(lemmas, x)]
    todo: list[tuple[str, Callable[[], tuple[list[Any], list[tuple[str, Any]]]]]] = [
        ("initiation", lambda: ([], enc.lemmas(lemmas, enc.init())))]
    cores: dict[int, dict[str, list[Any]]] = {}  # obligation number -> lemma -> the pre-state terms it needs
    by_name = dict(zip((lem.name for lem in lemmas), inv_x))
    skip: dict[int, set[str]] = {}  # obligation number -> the lemmas whose query a solver decided already
    number = 0
    for step in protocol.steps:
        for args in enc.instances(step):
            todo.append((f"consecution {enc.label(step, args)}",
                         lambda step=step, args=args: (inv_x + [enc.guard(step, args, x)],
                                                       enc.lemmas(lemmas, enc.post(step, args, x)))))
            if known is not None:
                skip[len(todo) - 1] = {lem.name for lem in lemmas if known(lem, number, lemmas)}
            if needs is not None:
                cores[len(todo) - 1] = {lem.name: [by_name[c] for c in core if c in by_name]
                                        for lem in lemmas if (core := needs(lem.name, number)) is not None}
            number += 1
    todo.append(("safety (the lemmas imply the invariant properties)", lambda: (inv_x, enc.properties(x))))
    todo.append((NO_FAILING_STEP, lambda: (inv_x, failing_goals(enc, x))))
    out: list[Obligation] = []
    for k, (name, build) in enumerate(todo):
        if out and any(o.status in ("cti", "unknown") for o in out) and not keep_going:
            out.append(Obligation(name, "not tried", 0.0))
            continue
        if note:
            note(f"parametric: {name}")
        facts, goals = build()
        done = skip.get(k, set())
        ob = _check(name, facts, [(label, g) for label, g in goals if label not in done], timeout, seeds,
                    fewer=(facts[-1:], cores.get(k, {})))
        ob.by_houdini = sum(label in done for label, _ in goals)
        out.append(ob)
    return ParametricResult(protocol, dict(enc.bounds.concrete), enc.open_bounds, lemmas, out,
                            time.monotonic() - start)


# ---- Houdini over uninterpreted sorts -------------------------------------------------------------------
@dataclass
class HoudiniResult:
    """The inductive subset of candidate lemmas for every N, V, F (``must`` kept or ``broken``)."""

    alive: list[Lemma]
    dropped: list[tuple[str, str]]  # (lemma, why: the step that broke it, or Z3's reason)
    broken: str | None  # the must lemma (a property) that is not preserved, with the step
    elapsed_s: float
    rounds: int
    queries: int
    cti: Any = None  # when ``broken`` by a step: (model of the pre-state, step number, lemma, live lemmas)
    undecided: int = 0  # queries Z3 did not decide (with the relevant lemmas, then with every live one)
    by_core: int = 0  # queries decided unsat assuming only their relevant lemmas


class Houdini:
    """Houdini in the parametric encoding, its terms kept across calls (a learning loop calls it
    once per round with more candidates): the encoding, each step instance's guard and post-state,
    and each lemma's terms at the pre-state and every post-state are built once."""

    def __init__(self, protocol: Protocol, concrete: Mapping[str, int], query_s: float = 4.0,
                 candidate_s: float | None = None) -> None:
        self.protocol, self.query_s = protocol, query_s
        #: a candidate's query gets this (one seed): an undecided one is dropped, so a short limit
        #: only makes the fixpoint weaker, never wrong; the properties' get ``query_s`` and two seeds
        self.candidate_s = candidate_s
        #: seeds tried on a property's query (MBQI's time varies more with the seed than with the limit)
        self.must_seeds = 2 if candidate_s is None else 6
        self.enc = ParamEncoding(protocol, concrete_bounds(protocol, concrete))
        self.x = self.enc.state("x")
        self.steps = [(step, args) for step in protocol.steps for args in self.enc.instances(step)]
        self._built: dict[int, tuple[Any, State]] = {}
        self._terms: dict[tuple[str, int], Any] = {}  # (lemma name, -2 initial / -1 pre-state / step) -> term
        self._fns: dict[str, Any] = {}  # lemma name -> the function its terms were built from (None: two were)
        self._init = self.enc.init()
        self._initially: dict[str, bool] = {}
        self._cores: dict[tuple[str, int], set[str]] = {}  # (lemma, step) -> the lemmas its last proof used
        #: (lemma, step) -> the assumptions of every unsat answer to that consecution query (its unsat
        #: cores): a proof of it given those lemmas (:meth:`proved`); hints never go here
        self._proofs: dict[tuple[str, int], list[frozenset[str]]] = {}
        self._core: Any = None
        self._model: Any = None
        self._by_core = False
        self.ctis: list[tuple[str, Any]] = []  # (what broke, as HoudiniResult.cti) of the last run's drops
        #: (lemma name, step name, live lemma names) -> the lemmas that query needs (a bounded unsat
        #: core: checks/symbolic/relevance.py), or None; asked where no earlier proof says
        self.relevant: Callable[[str, str, list[str]], set[str] | None] | None = None
        #: (the live candidates) -> are the ``must`` lemmas not preserved given them at a bounded
        #: instance (checks/symbolic/relevance.py)? Asked when a ``must`` query's first seed is
        #: undecided: a bounded counterexample is a finite model of the parametric query too, so the
        #: property is not preserved and its other seeds (MBQI that cannot build the model: 35 s of
        #: 38 at two spaces, PROVE.md, 5 Dec, late morning) are not spent
        self.refuted_at: Callable[[list[Lemma]], bool] | None = None
        self.refuted_by_bound = False  # the last run's ``broken`` came from :attr:`refuted_at`
        #: with :attr:`relevant`: a query is first asked assuming every live lemma for this long (one seed), and its
        #: bounded core asked for only where that is undecided (None: the core first, as the learning asks)
        self.live_first_s: float | None = None
        self._candidates: set[str] = set()  # the names of the last run's candidates (not ``must``)
        #: the engine's own Z3 context: its solvers get the terms (built in the main one) translated there,
        #: so its queries' course depends on this engine's history only, not on the process's (after a
        #: parametric proof of a bug at two spaces in the same process, a query of this Houdini at one
        #: space that takes milliseconds ran into its 20-s limit: MBQI's order follows the terms' ids,
        #: :class:`Isolated`); its models are translated back
        self._own = Isolated()

    def _solver(self) -> z3.Solver:
        """A solver of this engine's own Z3 context (:attr:`_own`), with ``query_s``."""
        return _solver(self.query_s, self._own.ctx)

    def term(self, lem: Lemma, where: int) -> Any:
        key = (lem.name, where)
        if self._fns.setdefault(lem.name, lem.fn) is not lem.fn:
            self._fns[lem.name] = None  # another lemma of that name: its terms are not this one's
        if key not in self._terms:
            fns = self._init if where == -2 else self.x if where == -1 else self.step(where)[1]
            self._terms[key] = self.enc.holds(lem.name, lem.fn, lem.params, fns)
        return self._terms[key]

    def step(self, n: int) -> tuple[Any, State]:
        if n not in self._built:
            step, args = self.steps[n]
            self._built[n] = (self.enc.guard(step, args, self.x), self.enc.post(step, args, self.x))
        return self._built[n]

    def hint(self, name: str, n: int, names: set[str]) -> None:
        """Lemmas that should be enough for lemma ``name``'s query at step ``n`` (a bounded unsat
        core): if the query with every live lemma is undecided, it is asked again with these."""
        if names and (name, n) not in self._cores:
            self._cores[(name, n)] = set(names)

    def _decide(self, s: z3.Solver, lem: Lemma, n: int, alive: Sequence[Lemma], use: Mapping[int, Any],
                quick: bool) -> tuple[Any, str]:
        """Lemma ``lem``'s consecution at step ``n`` given ``alive``, assuming only the lemmas it
        needs (those its last proof used, else a bounded unsat core from :attr:`relevant`; unsat
        with fewer assumptions is unsat with all) and assuming every live lemma: a property's
        query the first way first (it is the one MBQI often leaves undecided with 50-80
        quantified lemmas), a candidate's (usually answered in milliseconds) the second way
        first, the first only when that is undecided. With :attr:`live_first_s` every query is first asked briefly
        assuming every live lemma, and the needed ones (short tries over more seeds) only where that is undecided.
        A proof's unsat core is kept."""
        each, seeds = (self.candidate_s, 1) if quick else (None, self.must_seeds)
        live = [use[id(a)] for a in alive]

        def needed() -> list[Any] | None:
            names = self._cores.get((lem.name, n))
            if names is None and self.relevant is not None:
                names = self.relevant(lem.name, self.steps[n][0].name, [a.name for a in alive])
            core = [use[id(a)] for a in alive if names is not None and a.name in names]
            return core if names is not None and len(core) < len(live) else None

        self._by_core = False
        r, why = z3.unknown, ""
        if not quick and self.live_first_s is not None and self.relevant is not None:
            # every live lemma assumed, briefly, first: most queries are decided so in milliseconds, where a
            # bounded core costs a bounded query and may be too small for the parametric one
            r, why = self._ask(s, self.term(lem, n), live, self.live_first_s, 1)
            if r != z3.unknown:
                if r == z3.unsat:
                    self._keep_core(lem, n)
                return r, why
        core = None if quick else needed()
        if not quick and self.refuted_at is not None:  # one seed; undecided: the bounded instance first
            r, why = self._ask(s, self.term(lem, n), live if core is None else core, each, 1)
            self._by_core = r == z3.unsat and core is not None
            if r == z3.unsat:
                self._keep_core(lem, n)
                return r, why
            if r == z3.unknown and self.refuted_at([a for a in alive if a.name in self._candidates]):
                self.refuted_by_bound = True
                return r, f"{why}; not preserved at the bounded instance given the live candidates"
            if r == z3.sat and core is None:  # a model given every live lemma: not preserved
                return r, why
        if core is not None:  # (after a brief try with every live lemma: short tries over more seeds)
            r, why = self._ask(s, self.term(lem, n), core, each, seeds, limits=None if quick or self.live_first_s is None
                               else try_limits(self.query_s, FRESH_TRIES))
            self._by_core = r == z3.unsat
        if r != z3.unsat:
            r, why = self._ask(s, self.term(lem, n), live, each, seeds)
        if r == z3.unknown and quick and (core := needed()) is not None:
            r2, why2 = self._ask(s, self.term(lem, n), core, each, seeds)
            if r2 == z3.unsat:
                r, why, self._by_core = r2, why2, True
        if r == z3.unknown and not quick:
            r2 = self._ask_fresh(lem, n, alive)
            if r2 != z3.unknown:  # the fresh query assumed every live lemma: that is its proof's core
                r, self._core = r2, [use[id(a)] for a in alive] if r2 == z3.unsat else None
        if r == z3.unsat:
            self._keep_core(lem, n)
        return r, why

    def _ask_fresh(self, lem: Lemma, n: int, alive: Sequence[Lemma]) -> Any:
        """A property's consecution at step ``n`` given ``alive``, in a fresh Z3 context (:class:`Isolated`),
        ``query_s`` in all over FRESH_TRIES seeds (:func:`try_limits`: short tries first): asked where this
        engine's own solver left it undecided (no_stale_translation at ack_ipi over the shipped lemmas: decided
        in 0.2 s in one process, undecided twice 20 s in another). A fresh context does not remove every trace
        of the process's history (one seed's try of that query ran 20 s in a CI run, where every seed of 8
        takes 0.01 s in a process of its own), so more than one seed tries it. A model is kept (main context)."""
        facts = [self.step(n)[0], *[self.term(a, -1) for a in alive]]
        r, s = _query(facts, self.term(lem, n), self.query_s, SEEDS[:FRESH_TRIES])
        if r == z3.sat:
            self._model = s.model().translate(z3.main_ctx())
        return r

    def _keep_core(self, lem: Lemma, n: int) -> None:
        if self._core is not None:
            core = {str(u)[len("use."):] for u in self._core}
            self._cores[(lem.name, n)] = core
            proofs = self._proofs.setdefault((lem.name, n), [])
            if frozenset(core) not in proofs:
                proofs.append(frozenset(core))

    def proved(self, lem: Lemma, n: int, within: Sequence[Lemma]) -> bool:
        """Did this solver decide ``lem``'s consecution at step instance ``n`` unsat assuming only
        lemmas of ``within`` (for :func:`prove`'s ``known``)? Each unsat answer's core is the set of
        lemmas it assumed (the solver holds every other lemma only behind an assumption literal it
        did not assume), so that answer proves the query given them. Lemmas are matched by name and
        function: a name whose terms here came from another function never counts."""
        same = {x.name for x in within if self._fns.get(x.name) is x.fn}
        return lem.name in same and any(core <= same for core in self._proofs.get((lem.name, n), ()))

    def _ask(self, s: z3.Solver, goal: Any, assume: list[Any], each: float | None = None,
             seeds: int = 2, limits: Sequence[float | None] | None = None) -> tuple[Any, str]:
        """``goal`` negated under ``assume``, ``seeds`` seeds of ``each`` seconds (default
        ``query_s``; an unknown is retried with the next seed), or one seed per entry of ``limits``, each that long."""
        r, why = z3.unknown, ""
        tries = [each or self.query_s] * seeds if limits is None else [x or self.query_s for x in limits]
        for seed, limit in zip(SEEDS, tries):
            s.set("timeout", max(1, int(1000 * limit)))
            s.set("random_seed", seed)
            s.push()
            s.add(z3.Not(self._own(goal)))
            r = s.check([self._own(a) for a in assume])
            why = s.reason_unknown() if r == z3.unknown else ""
            if r == z3.sat:
                self._model = s.model().translate(z3.main_ctx())
            self._core = s.unsat_core() if r == z3.unsat else None
            s.pop()
            if r != z3.unknown:
                break
        return r, why

    def run(self, candidates: Sequence[Lemma], must: Sequence[Lemma], timeout: float | None = 120.0,
            note: Callable[[str], None] | None = None) -> HoudiniResult:
        """Drop every candidate some step instance does not preserve (given all live candidates
        and ``must``), until none is dropped. A query Z3 does not decide within ``query_s``
        (two seeds) drops its candidate too: only the fixpoint matters, and it is proved by
        :func:`prove` afterwards. ``broken`` names a ``must`` lemma that is not preserved or
        fails initially (``cti``: the model of the pre-state when a step breaks it)."""
        start = time.monotonic()
        every = list(candidates) + list(must)
        names = {id(lem) for lem in must}
        use = {id(lem): z3.Bool(f"use.{lem.name}") for lem in every}
        dropped: list[tuple[str, str]] = []
        alive = list(every)
        count = {"queries": 0, "rounds": 0, "undecided": 0, "by_core": 0}
        self.ctis = []
        self.refuted_by_bound = False
        self._candidates = {lem.name for lem in candidates}

        def finish(broken: str | None, cti: Any = None) -> HoudiniResult:
            return HoudiniResult([lem for lem in alive if id(lem) not in names], dropped, broken,
                                 time.monotonic() - start, count["rounds"], count["queries"], cti,
                                 count["undecided"], count["by_core"])

        for lem in every:  # initiation (once per lemma)
            if lem.name not in self._initially:
                s = self._solver()
                s.add(z3.Not(self._own(self.term(lem, -2))))
                count["queries"] += 1
                self._initially[lem.name] = s.check() == z3.unsat
            if not self._initially[lem.name]:
                if id(lem) in names:
                    return finish(f"{lem.name} (initially)")
                alive.remove(lem)
                dropped.append((lem.name, "fails initially"))
        changed = True
        while changed:
            changed = False
            count["rounds"] += 1
            for n in range(len(self.steps)):
                guard, _ = self.step(n)
                s = self._solver()
                s.add(self._own(guard), *[self._own(z3.Implies(use[id(lem)], self.term(lem, -1))) for lem in every])
                for lem in list(alive):
                    if lem not in alive:
                        continue
                    if timeout is not None and time.monotonic() - start > timeout:
                        raise TimeoutError(f"parametric houdini: time limit ({len(alive)} lemmas live, "
                                           f"round {count['rounds']})")
                    count["queries"] += 1
                    quick = self.candidate_s is not None and id(lem) not in names
                    r, why = self._decide(s, lem, n, alive, use, quick)
                    count["undecided"] += r == z3.unknown
                    count["by_core"] += r == z3.unsat and self._by_core
                    if r == z3.unsat:
                        continue
                    label = self.enc.label(*self.steps[n])
                    if r == z3.sat:
                        self.ctis.append((f"{lem.name} (not preserved by {label})",
                                          (self._model, n, lem, [a for a in alive])))
                    if id(lem) in names:
                        return finish(f"{lem.name} (not preserved by {label})" if r == z3.sat
                                      else f"{lem.name} (not preserved at a bounded instance given the live "
                                           f"candidates; {label} undecided here)" if self.refuted_by_bound
                                      else f"{lem.name} ({label}: Z3 did not decide: {why})",
                                      self.ctis.pop()[1] if r == z3.sat else None)
                    alive.remove(lem)
                    dropped.append((lem.name, f"not preserved by {label}" if r == z3.sat else f"{label}: {why}"))
                    changed = True
            if note:
                note(f"parametric houdini: round {count['rounds']}, {len(alive) - len(names)} candidates live")
        return finish(None)

    def support(self, alive: Sequence[Lemma], must: Sequence[Lemma], timeout: float | None = None) -> list[Lemma]:
        """A subset of ``alive`` (Houdini's fixpoint) that with ``must`` is inductive by itself:
        the unsat cores of the consecution queries of ``must``, then of what they use, closed.
        ``alive`` if a query is not unsat (it was, in Houdini's last round) or time runs out.
        The cores Houdini's last round recorded are used where every query has one (no solver
        call); :func:`prove` checks the result again."""
        start = time.monotonic()
        every = list(alive) + list(must)
        recorded = self._closure(every, must)
        if recorded is not None:
            return [lem for lem in alive if lem.name in recorded]
        use = {id(lem): z3.Bool(f"core.{n}") for n, lem in enumerate(every)}
        by_use = {str(use[id(lem)]): lem for lem in every}
        needed: list[Lemma] = list(must)
        todo = list(must)
        while todo:
            lem = todo.pop()
            for n in range(len(self.steps)):
                if timeout is not None and time.monotonic() - start > timeout:
                    return list(alive)
                guard, _ = self.step(n)
                s = self._solver()
                s.add(self._own(guard), *[self._own(z3.Implies(use[id(a)], self.term(a, -1))) for a in every])
                r, _ = self._ask(s, self.term(lem, n), list(use.values()))
                if r != z3.unsat:
                    return list(alive)
                for u in self._core:
                    got = by_use[str(u)]
                    if all(got is not x for x in needed):
                        needed.append(got)
                        todo.append(got)
        return [lem for lem in alive if any(lem is x for x in needed)]

    def _closure(self, every: Sequence[Lemma], must: Sequence[Lemma]) -> set[str] | None:
        """The names ``must``'s recorded cores (:meth:`_decide`) reach, closed; None where a
        lemma's query at some step has no recorded core among ``every``."""
        names = {lem.name for lem in every}
        needed = {lem.name for lem in must}
        todo = list(needed)
        while todo:
            name = todo.pop()
            for n in range(len(self.steps)):
                core = self._cores.get((name, n))
                if core is None or not core <= names:
                    return None
                for other in core - needed:
                    needed.add(other)
                    todo.append(other)
        return needed

    def needs(self, name: str, n: int) -> set[str] | None:
        """The lemmas the last proof of lemma ``name``'s consecution at step ``n`` used (for :func:`prove`)."""
        return self._cores.get((name, n))

    def cti_state(self, cti: Any) -> tuple[dict[str, int], tuple[int, ...]] | None:
        """A counterexample to induction (``HoudiniResult.cti``) as a concrete state; if its model
        has more elements of an index sort than the bounds allow, the query is asked again with
        at most that many (none then: the counterexample needs a bigger instance)."""
        model, n, lem, live = cti
        read = self.concrete_state(model)
        if read is not None:
            return read
        u = self.enc.universe
        caps = []
        for d in {d.bound: d for var in self.enc.variables for d in var.index
                  if isinstance(d, Sort) and u.is_open(d)}.values():
            high = next(b.high for b in self.protocol.bound_decls if b.name == d.bound)
            es = [z3.Const(f"cap.{d.bound}.{j}", u.sort(d)) for j in range(high)]
            y = z3.Const(f"cap.{d.bound}.y", u.sort(d))
            caps.append(z3.ForAll([y], z3.Or([y == e for e in es])))
        guard, _ = self.step(n)
        s = self._solver()
        s.add(*[self._own(t) for t in (guard, *caps, *[self.term(a, -1) for a in live])])
        r, _ = self._ask(s, self.term(lem, n), [])
        return self.concrete_state(self._model) if r == z3.sat else None

    def concrete_state(self, model: Any) -> tuple[dict[str, int], tuple[int, ...]] | None:
        """The pre-state of a counterexample to induction as a concrete state: each open sort's
        elements in the model numbered (its 0 first), so N = the VCPUs in the model, F + 1 the
        frames, ...; (sizes of the open bounds, the state's slot values at those bounds), or
        None if the model has more elements than the bounds allow."""
        enc, u = self.enc, self.enc.universe
        opened: dict[str, Domain] = {}
        for var in enc.variables:
            for d in (*var.index, var.domain, getattr(var.domain, "sort", None),
                      getattr(var.domain, "first", None), getattr(var.domain, "second", None)):
                if d is not None and isinstance(d, Domain) and u.is_open(d):
                    opened[d.bound if isinstance(d, Sort) else "frames"] = d
        indexed = {d.bound for var in enc.variables for d in var.index if isinstance(d, Sort) and u.is_open(d)}

        def bound_of(d: Domain) -> str:
            return d.bound if isinstance(d, Sort) else "frames"

        elements: dict[str, list[Any]] = {}
        for bound, d in opened.items():  # index sorts: every element; data sorts: those used (below)
            zero = model.eval(u.zero(d), model_completion=True)
            rest = [e for e in (model.get_universe(u.sort(d)) or []) if not z3.eq(e, zero)] if bound in indexed else []
            elements[bound] = [zero] + rest

        def element(d: Domain, i: int) -> Any:
            return elements[bound_of(d)][i] if u.is_open(d) else u.values(d)[i]

        def parts(d: Domain, val: Any) -> list[tuple[Domain, Any]]:
            """The open-sort values inside ``val`` (a value of ``d``)."""
            if u.is_open(d):
                return [(d, val)]
            if isinstance(d, OrNone) and u.is_open(d.sort):
                some = z3.is_true(z3.simplify(u.is_some(d, val)))
                return parts(d.sort, z3.simplify(u.val(d, val))) if some else []
            if isinstance(d, Pair) and not u.single(d.first):
                return (parts(d.first, z3.simplify(u.sort(d).accessor(0, 0)(val)))
                        + parts(d.second, z3.simplify(u.sort(d).accessor(0, 1)(val))))
            if isinstance(d, Pair):
                return parts(d.second, val)
            return []

        raw: dict[tuple[str, Any, tuple[int, ...]], Any] = {}
        sizes0 = {b: len(es) for b, es in elements.items() if b in indexed}
        for key in enc.keys():
            var = next(v for v in enc.variables if v.name == key[0])
            dom = Range(0, var.cap(enc.bounds), name="length") if key[1] == "len" else var.domain
            ranges = [range(sizes0[d.bound]) if u.is_open(d) else range(u.size(d)) for d in var.index]
            for idx in itertools.product(*ranges):
                val = z3.simplify(model.eval(self.x[key](*[element(d, i) for d, i in zip(var.index, idx)]),
                                             model_completion=True))
                raw[(key[0], key[1], idx)] = val
                for d, e in parts(dom, val):
                    es = elements[bound_of(d)]
                    if bound_of(d) not in indexed and not any(z3.eq(e, x) for x in es):
                        es.append(e)
        sizes = {b: max(1, len(es) - (1 if opened[b] is FRAME else 0)) for b, es in elements.items()}
        try:
            bounds = self.protocol.bounds(**sizes, **enc.bounds.concrete)
        except ValueError:
            return None

        def index_of(d: Domain, val: Any) -> int:
            if d is BOOL:
                return 1 if z3.is_true(val) else 0
            if u.is_open(d):
                return next(n for n, e in enumerate(elements[bound_of(d)]) if z3.eq(e, val))
            if isinstance(d, OrNone) and u.is_open(d.sort):
                if z3.is_true(z3.simplify(u.is_some(d, val))):
                    return index_of(d.sort, z3.simplify(u.val(d, val)))
                return d.none(bounds)
            if isinstance(d, Pair) and not u.single(d.first):
                fst = z3.simplify(u.sort(d).accessor(0, 0)(val))
                snd = z3.simplify(u.sort(d).accessor(0, 1)(val))
                return index_of(d.first, fst) * d.second.size(bounds) + index_of(d.second, snd)
            if isinstance(d, Pair):
                return index_of(d.second, val)
            return next(n for n, c in enumerate(u.values(d)) if z3.eq(z3.simplify(c), val))

        out = []
        for slot in self.protocol.layout(bounds).slots:
            dom = Range(0, slot.var.cap(bounds), name="length") if slot.part == "len" else slot.var.domain
            try:
                out.append(index_of(dom, raw[(slot.var.name, slot.part, slot.index)]))
            except (StopIteration, KeyError):
                return None
        return sizes, tuple(out)


def houdini(protocol: Protocol, concrete: Mapping[str, int], candidates: Sequence[Lemma], must: Sequence[Lemma],
            timeout: float | None = 120.0, query_s: float = 4.0,
            note: Callable[[str], None] | None = None) -> HoudiniResult:
    """:meth:`Houdini.run` once (a fresh encoding)."""
    return Houdini(protocol, concrete, query_s).run(candidates, must, timeout, note)


def prove_candidates(protocol: Protocol, concrete: Mapping[str, int], *, shipped: bool = True,
                     extra: Sequence[Lemma] = (), timeout: float | None = 60.0, houdini_s: float | None = 120.0,
                     shrink_at: Any = None, note: Callable[[str], None] | None = None) -> ParametricResult:
    """:func:`prove` of the candidates (the shipped lemmas unless not ``shipped``, and ``extra``:
    learned families) with the invariant properties; if some candidate is not inductive,
    :func:`houdini` drops what some step does not preserve and the fixpoint is proved (or
    the result is unknown, naming the property a step does not preserve given what is left).

    ``shrink_at`` (bounds, e.g. 3,2,2 at these Q, S): first a bounded Houdini there over every
    candidate keeps what holds at that size (cheap; learned families true only at smaller
    bounds go), then the parametric one runs over the survivors. Soundness never depends on
    it: whatever is kept is proved over uninterpreted sorts."""
    start = time.monotonic()
    params = ParamEncoding(protocol, concrete_bounds(protocol, concrete)).bounds
    candidates = (list(invariant_for(params)) if shipped else []) + list(extra)
    if shrink_at is not None and extra:
        from deferral.checks.terms.encoding import encode
        from deferral.checks.symbolic.induction import houdini as bounded_houdini

        if note:
            note(f"parametric: bounded Houdini at {shrink_at.short()} over {len(candidates)} candidates first")
        small = list(invariant_for(shrink_at)) if shipped else []
        try:
            alive, _ = bounded_houdini(encode(protocol, shrink_at), small + list(extra) + learned_lemmas([], protocol),
                                       timeout=houdini_s)
        except TimeoutError:
            alive = candidates  # no time for it: every candidate goes to the parametric Houdini
        names = {lem.name for lem in alive}
        kept = [lem for lem in candidates if lem.name in names]
        dropped_small = [(lem.name, f"not inductive at {shrink_at.short()} (bounded Houdini)")
                         for lem in candidates if lem.name not in names]
        candidates = kept
    else:
        dropped_small = []
    props = learned_lemmas([], protocol)
    first = prove(protocol, concrete, candidates, timeout=timeout, note=note)  # safety: the lemmas imply them
    first.dropped, first.elapsed_s = list(dropped_small), time.monotonic() - start
    if first.status == "proved" or not candidates:
        return first
    if note:
        note(f"parametric: {first.reason[:200]}; Houdini over {len(candidates)} candidates")
    engine = Houdini(protocol, concrete)
    try:
        h = engine.run(candidates, props, note=note,
                       timeout=None if houdini_s is None else max(1.0, houdini_s - (time.monotonic() - start)))
    except TimeoutError as exc:
        first.obligations.append(Obligation("houdini (drop the candidates some step does not preserve)",
                                            "unknown", time.monotonic() - start, reason=str(exc)))
        return first
    if h.broken is not None:
        ob = Obligation(f"houdini ({h.rounds} rounds, {h.queries} queries; {len(h.alive)} of {len(candidates)} "
                        "candidates left)", "cti", h.elapsed_s, broken=[h.broken])
        if "Z3 did not decide" in h.broken:
            ob = Obligation(ob.name, "unknown", h.elapsed_s, reason=h.broken)
        res = ParametricResult(protocol, first.concrete, first.open_bounds, list(h.alive) + props, [ob],
                               time.monotonic() - start, dropped=dropped_small + h.dropped)
        return res
    res = prove(protocol, concrete, list(h.alive) + props, timeout=timeout, note=note, known=engine.proved)
    res.dropped, res.elapsed_s = dropped_small + h.dropped, time.monotonic() - start
    return res
