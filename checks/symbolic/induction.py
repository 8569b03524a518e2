"""Induction with Z3: is a conjunction of lemmas an inductive invariant that implies the properties?

Three queries over the encoding of :mod:`deferral.checks.terms.encoding` (each unsat = passes):

* initiation: ``Init(x) & !Inv(x)``,
* consecution: ``Inv(x) & T(x, act, y) & !Inv(y)`` (a model is a counterexample to
  induction: two states and the step between them),
* safety: ``Inv(x) & !P(x)`` for every invariant property P of the protocol.

:func:`houdini` keeps the largest inductive subset of candidate lemmas (whole lemma
families are dropped, so the result stays symmetric over VCPUs and pages).

Consecution tries one step instance per orbit of VCPU permutations where Z3 checks that
sound (:mod:`deferral.checks.symbolic.symmetry`); the step and lemma terms are built once
per encoding (:meth:`Encoding.action_terms`, :meth:`Encoding.instances`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import z3

from deferral.checks.terms.encoding import Encoding, Renaming
from deferral.checks.symbolic.symmetry import representatives
from deferral.model.concrete import Action, State
from deferral.model.context import StepError
from deferral.model.invariant import Lemma


@dataclass
class CounterexampleToInduction:
    """A state satisfying the invariant, a step, and the state after it breaking ``broken``."""

    before: State
    action: Action
    after: State
    broken: list[str]  # "lemma name (args)"

    def to_json(self, enc: Encoding) -> dict[str, Any]:
        return {"before": enc.model.to_json(self.before), "step": self.action.label(),
                "after": enc.model.to_json(self.after), "broken": self.broken,
                "changed": {k: list(v) for k, v in enc.layout.diff(self.before, self.after).items()}}


@dataclass
class InductionResult:
    status: str  # proved | not-inductive | fails-initially | too-weak | unknown
    lemmas: list[Lemma]
    elapsed_s: float
    failed: list[str] = field(default_factory=list)  # failing lemma instances or properties
    cti: CounterexampleToInduction | None = None
    state: State | None = None  # for fails-initially / too-weak: the offending state
    reason: str = ""


def instances(enc: Encoding, lemma: Lemma, xs: Sequence[Any]) -> list[tuple[str, Any]]:
    """``(label, term)`` of every parameter instance of ``lemma`` over ``xs``; the label is the lemma as
    read at the encoding's bounds, with the arguments shown there (not those of an elided sort)."""
    out = []
    text, hidden = lemma.text(enc.bounds), lemma.elided(enc.bounds)
    for args, term in enc.instances(lemma.fn, lemma.params, xs):
        shown = [f"{n}={a}" for (n, _), a, hide in zip(lemma.params, args, hidden) if not hide]
        out.append((text + (f" ({', '.join(shown)})" if shown else ""), term))
    return out


def invariant_terms(enc: Encoding, lemmas: Sequence[Lemma], xs: Sequence[Any]) -> list[tuple[str, Any]]:
    """``(label, term)`` of every instance of every lemma of ``lemmas`` over ``xs``: their conjunction
    as the proofs state it (:func:`check_inductive`, the failing-step check of checks/symbolic/failures.py)."""
    return [t for lem in lemmas for t in instances(enc, lem, xs)]


def _solver(timeout: float | None) -> z3.Solver:
    solver = z3.SolverFor("QF_BV")
    if timeout is not None:
        solver.set("timeout", max(1, int(timeout * 1000)))
    return solver


def fails_initially(enc: Encoding, terms: Sequence[tuple[str, Any]], xs: Sequence[Any]) -> list[str]:
    """Labels of the ``(label, term)`` over ``xs`` that are false in the initial state (each term
    evaluated by substituting the initial values: exact, no solver)."""
    at_init = Renaming(xs, [enc.const(s, v) for s, v in zip(enc.layout.slots, enc.layout.initial)])
    return [label for label, term in terms if not z3.is_true(z3.simplify(at_init(term)))]


def not_proved_reason(kept: int, offered: int, hlog: Sequence[str], r: "InductionResult") -> str:
    """Why Houdini over ``offered`` families and induction on the ``kept`` did not prove it: induction's
    verdict, then the first family Houdini dropped (and the step that broke it), from its log ``hlog``."""
    first = next((line for line in hlog if line.startswith("dropped")), None)
    broke = f"; first dropped {first[len('dropped '):]}" if first else ""
    failed = r.failed[0].split(": ")[0] if r.failed else r.reason
    return f"{r.status} ({failed}) with the {kept} of {offered} families Houdini kept{broke}"


def check_inductive(enc: Encoding, lemmas: Sequence[Lemma], timeout: float | None = None, *,
                    inductive: bool = False, symmetry: bool = True) -> InductionResult:
    """Check initiation, consecution and safety of the conjunction of ``lemmas`` over ``enc``;
    ``inductive``: consecution is known (``lemmas`` are what :func:`houdini` kept), not checked again.

    Consecution tries one step instance per orbit of VCPU permutations when the steps and
    the lemma families are checked symmetric (:mod:`deferral.checks.symbolic.symmetry`);
    ``symmetry=False`` tries every instance."""
    start = time.monotonic()
    lemmas = list(lemmas)
    model = enc.model
    xs, ys, act = enc.state("x"), enc.state("y"), enc.selector("x")
    inv_x, inv_y = invariant_terms(enc, lemmas, xs), invariant_terms(enc, lemmas, ys)

    def done(status: str, **kw: Any) -> InductionResult:
        return InductionResult(status, lemmas, time.monotonic() - start, **kw)

    # initiation: evaluate on the concrete initial state (exact and instant)
    failed = fails_initially(enc, inv_x, xs)
    if failed:
        return done("fails-initially", failed=failed, state=model.initial)

    # consecution (skipped when the caller's Houdini fixpoint established it)
    if not inductive:
        s = _solver(timeout)
        steps = representatives(enc, lemmas, timeout) if symmetry else None
        s.add(enc.valid(xs), *[t for _, t in inv_x], enc.trans(xs, ys, act, only=steps))
        s.add(z3.Or([z3.Not(t) for _, t in inv_y]))
        r = s.check()
        if r == z3.unknown:
            return done("unknown", reason=f"consecution: {s.reason_unknown()}")
        if r == z3.sat:
            m = s.model()
            before, after = enc.decode(m, xs), enc.decode(m, ys)
            action = model.actions[m.eval(act, model_completion=True).as_long()]
            try:
                concrete = model.apply(before, action)
            except StepError:
                concrete = None  # e.g. ack_ipi with cur = none: the concrete model refuses such a state
            if concrete is not None:
                assert concrete == after, "encoding and model disagree on the CTI step"
            broken = [label for label, term in inv_y if z3.is_false(m.eval(term, model_completion=True))]
            return done("not-inductive", failed=broken,
                        cti=CounterexampleToInduction(before, action, after, broken))

    # safety
    s = _solver(timeout)
    s.add(enc.valid(xs), *[t for _, t in inv_x])
    props = [p for p in enc.protocol.properties if p.kind == "invariant"]
    s.add(z3.Not(z3.And([enc.prop(p, xs) for p in props])))
    r = s.check()
    if r == z3.unknown:
        return done("unknown", reason=f"safety: {s.reason_unknown()}")
    if r == z3.sat:
        state = enc.decode(s.model(), xs)
        return done("too-weak", failed=[v.describe() for v in model.violations(state)], state=state)
    return done("proved")


def houdini(enc: Encoding, candidates: Sequence[Lemma], timeout: float | None = None, *,
            symmetry: bool = True, deadline: float | None = None) -> tuple[list[Lemma], list[str]]:
    """The largest subset of ``candidates`` that is inductive over ``enc`` (maximal fixpoint), and a log.
    ``timeout`` bounds each solver query; ``deadline`` (time.monotonic) the whole loop (TimeoutError).

    Consecution tries one step instance per orbit when the steps and every candidate family
    are checked symmetric (a subset of symmetric families is symmetric, so this holds for
    every round); ``symmetry=False`` tries every instance."""
    log: list[str] = []
    xs, ys, act = enc.state("x"), enc.state("y"), enc.selector("x")
    alive = list(candidates)
    for lem in list(alive):
        if fails_initially(enc, instances(enc, lem, xs), xs):
            alive.remove(lem)
            log.append(f"dropped (fails initially): {lem.name}")
    terms_x = {lem.name: z3.And([t for _, t in instances(enc, lem, xs)]) for lem in alive}
    terms_y = {lem.name: z3.And([t for _, t in instances(enc, lem, ys)]) for lem in alive}
    guards = {lem.name: z3.Bool(f"use:{lem.name}") for lem in alive}
    s = _solver(timeout)
    steps = representatives(enc, alive, timeout) if symmetry else None
    s.add(enc.valid(xs), enc.trans(xs, ys, act, only=steps))
    for lem in alive:
        s.add(z3.Implies(guards[lem.name], terms_x[lem.name]))
    while alive:
        s.push()
        s.add(z3.Or([z3.Not(terms_y[lem.name]) for lem in alive]))
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                s.pop()
                raise TimeoutError("houdini: time limit")
            s.set("timeout", max(1, int(1000 * (left if timeout is None else min(timeout, left)))))
        r = s.check([guards[lem.name] for lem in alive])
        if r == z3.unsat:
            s.pop()
            break
        if r == z3.unknown:
            s.pop()
            raise TimeoutError(f"houdini: {s.reason_unknown()}")
        m = s.model()
        gone = [lem for lem in alive if z3.is_false(m.eval(terms_y[lem.name], model_completion=True))]
        s.pop()
        for lem in gone:
            alive.remove(lem)
            log.append(f"dropped (not preserved by {enc.model.actions[m.eval(act, model_completion=True).as_long()].label()}): {lem.name}")
    return alive, log
