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
* safety: ``Inv(x) & !P(x)`` for each invariant property P.

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
from typing import Any, Callable, Mapping, Sequence

import z3

from deferral.checks.symbolic.encoding import EncodingError
from deferral.checks.symbolic.parametric_ops import (Fn, Key, ParamBounds, ParamContext, ParamError, Universe,
                                                     base_functions, evaluate, initial_functions,
                                                     mentions, state_keys)
from deferral.model.context import USER_ERRORS, StepError, describe_user_error
from deferral.model.invariant import Lemma, invariant_for
from deferral.model.protocol import Protocol, Step
from deferral.model.schema import Domain, Layout, Range, Sort

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

    def holds(self, name: str, fn: Callable[..., Any], params: Sequence[tuple[str, Domain]], fns: State) -> Any:
        """``fn(s, *params)`` for every parameter value: ForAll over open sorts, a conjunction
        over concrete ones."""
        choices: list[Sequence[Any]] = []
        bound: list[Any] = []
        for pname, dom in params:
            if self.universe.is_open(dom):
                c = z3.FreshConst(self.universe.sort(dom), pname)
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

    def to_json(self) -> dict[str, Any]:
        return {"obligation": self.name, "status": self.status, "elapsed_s": round(self.elapsed_s, 3),
                "reason": self.reason or None, "broken": self.broken or None, "model": self.model or None}


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

    @property
    def variant(self) -> str:
        return self.protocol.name

    @property
    def verdict(self) -> str:
        """One line: proved for every number of what, at which concrete bounds; or unknown and why."""
        if self.status == "proved":
            return (f"proved for every number of {', '.join(self.open_bounds)}, at "
                    + ", ".join(f"{k}={v}" for k, v in self.concrete.items()))
        return "unknown: nothing is claimed proved; " + self.reason

    @property
    def status(self) -> str:
        """proved only when every obligation is; a counterexample to induction is unknown."""
        return "proved" if all(o.status == "proved" for o in self.obligations) else "unknown"

    @property
    def exit_code(self) -> int:
        return 0 if self.status == "proved" else 3

    @property
    def reason(self) -> str:
        parts = []
        for o in self.obligations:
            if o.status == "cti":
                parts.append(f"{o.name}: a counterexample to induction of lemma {'; '.join(o.broken)!r} "
                             "(the lemmas are not inductive for this protocol; it may still be safe)")
            elif o.status == "unknown":
                parts.append(f"{o.name}: Z3 did not decide it ({o.reason})")
        return "; ".join(parts)


def _solver(timeout: float | None) -> z3.Solver:
    s = z3.Solver()
    s.set("smt.mbqi", True)
    if timeout is not None:
        s.set("timeout", max(1, int(timeout * 1000)))
    return s


def _show_model(m: z3.ModelRef) -> str:
    return "; ".join(f"{d.name()} = {m[d]}" for d in sorted(m.decls(), key=lambda d: d.name())
                     if d.name().startswith("x.") or "." in d.name())[:4000]


SEEDS = tuple(range(10))


def _query(facts: list[Any], goal: Any, timeout: float | None,
           seeds: Sequence[int] = SEEDS) -> tuple[Any, Any]:
    """Is ``facts & !goal`` satisfiable? MBQI's answer time varies a lot with Z3's random
    seed, so an unknown is retried with the next seed (each try gets ``timeout``/len(SEEDS));
    unsat and sat are answers whatever the seed. Returns (result, solver)."""
    each = None if timeout is None else max(0.5, timeout / len(seeds))
    s = None
    for seed in seeds:
        s = _solver(each)
        s.set("random_seed", seed)
        s.add(*facts, z3.Not(goal))
        r = s.check()
        if r != z3.unknown:
            return r, s
    return z3.unknown, s


def _check(name: str, facts: list[Any], goals: list[tuple[str, Any]], timeout: float | None,
           seeds: Sequence[int] = SEEDS) -> Obligation:
    """``facts & !goal`` for each goal (one query per lemma: MBQI answers these quickly, while
    the disjunction of all negated lemmas can time out). All unsat = proved; a sat one is a
    CTI naming the broken lemma; otherwise unknown with Z3's reasons."""
    start = time.monotonic()
    reasons: list[str] = []
    for label, goal in goals:
        r, s = _query(facts, goal, timeout, seeds)
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


def prove(protocol: Protocol, concrete: Mapping[str, int], lemmas: Sequence[Lemma] | None = None,
          timeout: float | None = 60.0, note: Callable[[str], None] | None = None,
          seeds: Sequence[int] = SEEDS, keep_going: bool = False) -> ParametricResult:
    """Initiation, consecution per step and safety over uninterpreted sorts.

    ``lemmas``: the candidate inductive invariant (default: model/invariant.py's shipped
    lemmas at these bounds); ``timeout`` bounds each lemma's query (all ``seeds`` together).
    The first obligation not proved settles the result (unknown): the rest are listed "not
    tried" unless ``keep_going``. Raises EncodingError when a function cannot be evaluated
    parametrically."""
    start = time.monotonic()
    enc = ParamEncoding(protocol, concrete_bounds(protocol, concrete))
    lemmas = list(invariant_for(enc.bounds) if lemmas is None else lemmas)
    x = enc.state("x")
    inv_x = [term for _, term in enc.lemmas(lemmas, x)]
    todo: list[tuple[str, Callable[[], tuple[list[Any], list[tuple[str, Any]]]]]] = [
        ("initiation", lambda: ([], enc.lemmas(lemmas, enc.init())))]
    for step in protocol.steps:
        for args in enc.instances(step):
            todo.append((f"consecution {enc.label(step, args)}",
                         lambda step=step, args=args: (inv_x + [enc.guard(step, args, x)],
                                                       enc.lemmas(lemmas, enc.post(step, args, x)))))
    todo.append(("safety (the lemmas imply the invariant properties)", lambda: (inv_x, enc.properties(x))))
    out: list[Obligation] = []
    for name, build in todo:
        if out and any(o.status in ("cti", "unknown") for o in out) and not keep_going:
            out.append(Obligation(name, "not tried", 0.0))
            continue
        if note:
            note(f"parametric: {name}")
        facts, goals = build()
        out.append(_check(name, facts, goals, timeout, seeds))
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


def houdini(protocol: Protocol, concrete: Mapping[str, int], candidates: Sequence[Lemma], must: Sequence[Lemma],
            timeout: float | None = 120.0, query_s: float = 4.0,
            note: Callable[[str], None] | None = None) -> HoudiniResult:
    """Houdini in the parametric encoding: drop every candidate some step instance does not
    preserve (given all live candidates and ``must``), until none is dropped.

    A query Z3 does not decide within ``query_s`` (two seeds) drops its candidate too: only
    the fixpoint matters, and it is proved by :func:`prove` afterwards (the obligations
    here are the same). ``broken`` names a ``must`` lemma that is not preserved or fails
    initially: then nothing is proved with these candidates."""
    start = time.monotonic()
    enc = ParamEncoding(protocol, concrete_bounds(protocol, concrete))
    x = enc.state("x")
    every = list(candidates) + list(must)
    names = {id(lem) for lem in must}
    at_x = dict(zip((id(lem) for lem in every), (t for _, t in enc.lemmas(every, x))))
    use = {id(lem): z3.Bool(f"use.{n}") for n, lem in enumerate(every)}
    dropped: list[tuple[str, str]] = []
    queries = rounds = 0
    alive = list(every)

    def over() -> bool:
        return timeout is not None and time.monotonic() - start > timeout

    def finish(broken: str | None) -> HoudiniResult:
        return HoudiniResult([lem for lem in alive if id(lem) not in names], dropped, broken,
                             time.monotonic() - start, rounds, queries)

    for lem, (_, term) in zip(every, enc.lemmas(every, enc.init())):  # initiation
        s = _solver(query_s)
        s.add(z3.Not(term))
        queries += 1
        if s.check() != z3.unsat:
            if id(lem) in names:
                return finish(f"{lem.name} (initially)")
            alive.remove(lem)
            dropped.append((lem.name, "fails initially"))
    steps = [(step, args) for step in protocol.steps for args in enc.instances(step)]
    built: dict[int, tuple[Any, list[tuple[str, Any]]]] = {}
    changed = True
    while changed:
        changed = False
        rounds += 1
        for n, (step, args) in enumerate(steps):
            if n not in built:
                post = enc.post(step, args, x)
                built[n] = (enc.guard(step, args, x), list(zip((id(lem) for lem in every),
                                                              (t for _, t in enc.lemmas(every, post)))))
            guard, posts = built[n]
            s = _solver(query_s)
            s.add(guard, *[z3.Implies(use[k], at_x[k]) for k in use])
            for k, goal in posts:
                live = {id(lem) for lem in alive}
                if k not in live:
                    continue
                if over():
                    raise TimeoutError(f"parametric houdini: time limit ({len(alive)} lemmas live, round {rounds})")
                r = z3.unknown
                for seed in SEEDS[:2]:
                    s.set("random_seed", seed)
                    s.push()
                    s.add(z3.Not(goal))
                    queries += 1
                    r = s.check([use[j] for j in live])
                    why = s.reason_unknown() if r == z3.unknown else ""
                    s.pop()
                    if r != z3.unknown:
                        break
                if r == z3.unsat:
                    continue
                lem = next(lem for lem in alive if id(lem) == k)
                label = enc.label(step, args)
                if k in names:
                    return finish(f"{lem.name} (not preserved by {label})" if r == z3.sat
                                  else f"{lem.name} ({label}: Z3 did not decide: {why})")
                alive.remove(lem)
                dropped.append((lem.name, f"not preserved by {label}" if r == z3.sat else f"{label}: {why}"))
                changed = True
        if note:
            note(f"parametric houdini: round {rounds}, {len(alive) - len(names)} candidates live")
    return finish(None)


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
        from deferral.checks.symbolic.encoding import encode
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
    try:
        h = houdini(protocol, concrete, candidates, props, note=note,
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
    res = prove(protocol, concrete, list(h.alive) + props, timeout=timeout, note=note)
    res.dropped, res.elapsed_s = dropped_small + h.dropped, time.monotonic() - start
    return res
