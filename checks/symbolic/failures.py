"""Step failures under Z3: does a proof's invariant rule out every state where a step raises?

The concrete model refuses a step that reads at an index naming no element (``pg[cur[k]]``
with ``cur[k]`` none) or writes a value outside its variable's domain, and a property that
reads so: a :class:`~deferral.model.context.StepError`, and ``check`` exits 2. The Z3
encoding gives such a read *some* value (Z3's selection), so an invariant proved inductive
over it says nothing about those states: a variant whose step fails in a reachable state
could be "proved". Every proof by a Z3 route therefore ends here:

* :func:`failure_conditions` (once per encoding): for every step instance, where it fails
  (``not defined``: the conditions the step context records, :class:`ActionTerms`),
  and for every invariant property instance, where its evaluation reads outside a range;
  the reference has some (``ack_ipi`` at ``cur = none``), in states no run reaches;
* :func:`discharge`: one query, ``valid(x) & Inv(x) & (some failure condition)``. Unsat: the
  invariant, which holds in every state the encoding reaches, rules out every failure, so the
  concrete model and the encoding agree along every run (they differ only after a failure):
  the proof holds for the concrete model. Sat: a learned invariant need not mention what only
  the steps' reads need (the reference's "``pc[k] = Ipi`` implies ``cur[k]`` names a VCPU"), so
  :func:`strengthen` runs Houdini over "no step fails" and its generalizations (each failing
  step's condition with only some of its guard's conjuncts: "``pc[k] = Ipi`` and ``cur[k]`` none"
  for ``ack_ipi``'s "``pc[k] = Ipi``, its queue empty and ``cur[k]`` none"), each kept only while
  true initially and kept by every step from ``Inv`` and the others: what survives and ``Inv``
  are an inductive invariant together, and if they rule out every failure, the same argument
  holds. Else the invariant admits a failing state (a witness, confirmed on the concrete
  model), and the proof claims nothing until a search (:func:`find_failure`) either reaches
  one (bad input) or the result stays unknown.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NoReturn, Sequence

import z3

from deferral.checks.symbolic.unroll import unrolled
from deferral.checks.terms.encoding import Encoding, Renaming
from deferral.model.concrete import State
from deferral.model.context import StepError

#: a failing step's guard with more conjuncts than this is generalized as a whole only
MOST_GUARD_CONJUNCTS = 4


@dataclass(frozen=True)
class Failure:
    """Where a step instance (``index`` >= 0) or a property instance (``index`` -1) fails."""

    label: str  # "step ack_ipi(1)" or "property no_stale_translation(0, 0)"
    index: int  # the action's index in the model, -1 for a property
    condition: Any  # z3 Bool over the encoding's own variables: it fails there
    #: the guard's conjuncts and where the rest fails given the guard (``condition`` is
    #: ``at_guard or (And(guard) and rest)``): what :func:`strengthen` generalizes
    guard: tuple[Any, ...] = ()
    at_guard: Any = None
    rest: Any = None

    def generalizations(self, most: int = MOST_GUARD_CONJUNCTS) -> list[Any]:
        """Facts that each rule the failure out: "not ``rest`` where these guard conjuncts hold", for
        every subset of the guard's conjuncts (all of them only, past ``most``), and "the guard reads
        fine"."""
        from itertools import combinations

        if self.rest is None:
            return [z3.Not(self.condition)]
        out = [] if z3.is_false(self.at_guard) else [z3.Not(self.at_guard)]
        sizes = range(len(self.guard) + 1) if len(self.guard) <= most else [len(self.guard)]
        for size in sizes:
            for part in combinations(self.guard, size):
                out.append(z3.Not(z3.And(*part, self.rest)))
        return out


@dataclass(frozen=True)
class Discharge:
    """What :func:`discharge` found: ``status`` is ruled-out, admitted or unknown."""

    status: str
    failure: Failure | None = None
    error: str = ""  # the concrete model's message at the witness (admitted)
    state: State | None = None  # the witness: a state the invariant admits where ``failure`` fails
    reason: str = ""  # unknown: the solver's reason

    def describe(self) -> str:
        """One clause: what may fail, and how."""
        if self.failure is None:
            return self.reason
        return f"{self.failure.label} may fail ({self.error}) in a state the proof's invariant admits"


def failure_conditions(enc: Encoding) -> list[Failure]:
    """Every step and invariant property instance that can fail in some state of the encoding's
    domain, with where; computed once per encoding (evaluating the steps with the conditions
    recorded: about 1.4 s at 6,3,3,3)."""
    if "failures" not in enc.derived:
        xs = enc._base_vars
        out = []
        for t in enc._base_terms:
            cond = z3.simplify(z3.Not(t.defined))
            if not z3.is_false(cond):
                guard = z3.simplify(t.guard)
                parts = tuple(guard.children()) if z3.is_and(guard) else (guard,)
                out.append(Failure(f"step {t.label()}", t.index, cond, parts, z3.simplify(t.fails_at_guard),
                                   z3.simplify(t.fails_in_effect)))
        for prop in enc.protocol.properties:
            if prop.kind != "invariant":
                continue
            undefined: list[Any] = []
            enc.holds(prop.predicate, prop.params, xs, undefined=undefined)
            cond = z3.simplify(z3.Not(enc.none_of(undefined)))
            if not z3.is_false(cond):
                out.append(Failure(f"property {prop.name}", -1, cond))
        enc.derived["failures"] = out
    return list(enc.derived["failures"])


def lemma_terms(enc: Encoding, lemmas: Sequence[Any]) -> Callable[[Sequence[Any]], list[Any]]:
    """The invariant of ``lemmas`` (Lemma objects, or families with a ``lemma()``) over given variables."""
    from deferral.checks.symbolic.induction import invariant_terms

    plain = [x.lemma() if not hasattr(x, "fn") and hasattr(x, "lemma") else x for x in lemmas]
    return lambda xs: [t for _, t in invariant_terms(enc, plain, xs)]


def formula_terms(formula: Any, over: Sequence[Any]) -> Callable[[Sequence[Any]], list[Any]]:
    """An invariant given as one Z3 formula over the variables ``over`` (Spacer's), over given variables."""
    return lambda xs: [Renaming(list(over), list(xs))(formula)]


def discharge(enc: Encoding, invariant: Callable[[Sequence[Any]], list[Any]],
              timeout: float | None = None) -> Discharge:
    """Does ``invariant`` (an inductive invariant of the encoding: its terms over given variables)
    rule out every state where a step or property fails?"""
    failures = failure_conditions(enc)
    if not failures:
        return Discharge("ruled-out")
    xs = enc._base_vars
    solver = _solver(timeout)
    inv = invariant(xs)
    solver.add(enc.valid(xs), *inv)
    fails = z3.Or([f.condition for f in failures])
    answer = solver.check(fails)
    if answer == z3.unsat:
        return Discharge("ruled-out")
    if answer == z3.unknown:
        return Discharge("unknown", reason=f"whether the proof's invariant rules out a failing step: "
                                           f"{solver.reason_unknown()}")
    model = solver.model()
    state = enc.decode(model, xs)
    failure = next(f for f in failures if z3.is_true(model.eval(f.condition, model_completion=True)))
    if strengthen(enc, inv, failures, xs, timeout):
        return Discharge("ruled-out")
    return Discharge("admitted", failure, concrete_error(enc, state, failure), state)


def strengthen(enc: Encoding, inv: Sequence[Any], failures: Sequence[Failure], xs: Sequence[Any],
               timeout: float | None) -> bool:
    """Houdini over the failures' generalizations relative to the inductive invariant ``inv``: do
    the facts that are true initially and kept by every step (from ``inv`` and each other) rule
    out every failure together with ``inv``?"""
    from deferral.checks.symbolic.induction import fails_initially

    facts = [fact for f in failures for fact in f.generalizations()]
    false_at_start = set(fails_initially(enc, [(str(k), fact) for k, fact in enumerate(facts)], xs))
    alive = [fact for k, fact in enumerate(facts) if str(k) not in false_at_start]
    ys, act = enc.state("runs@y"), enc.selector("runs")
    to_y = Renaming(list(xs), ys)
    after = {id(fact): to_y(fact) for fact in alive}
    solver = _solver(timeout)
    solver.add(enc.valid(xs), *inv, enc.trans(xs, ys, act))
    use = {id(fact): z3.Bool(f"runs:{k}") for k, fact in enumerate(alive)}
    for fact in alive:
        solver.add(z3.Implies(use[id(fact)], fact))
    while alive:
        solver.push()
        solver.add(z3.Or([z3.Not(after[id(fact)]) for fact in alive]))
        answer = solver.check([use[id(fact)] for fact in alive])
        if answer != z3.sat:
            solver.pop()
            if answer == z3.unknown:
                return False
            break
        model = solver.model()
        alive = [fact for fact in alive if not z3.is_false(model.eval(after[id(fact)], model_completion=True))]
        solver.pop()
    if not alive:
        return False
    check = _solver(timeout)
    check.add(enc.valid(xs), *inv, *alive)
    return check.check(z3.Or([f.condition for f in failures])) == z3.unsat


def _solver(timeout: float | None) -> z3.Solver:
    solver = z3.SolverFor("QF_BV")
    if timeout is not None:
        solver.set("timeout", max(1, int(timeout * 1000)))
    return solver


def concrete_error(enc: Encoding, state: State, failure: Failure) -> str:
    """The concrete model's message where ``failure`` fails in ``state`` (its own words)."""
    model = enc.model
    try:
        if failure.index >= 0:
            model.apply(state, model.actions[failure.index])
        else:
            model.violations(state)
    except StepError as exc:
        return str(exc)
    return "Z3's reading of the step; the concrete model runs it"


class ReachedFailure(StepError):
    """A reachable state where a step or property fails: bad input, as in ``check``."""


def find_failure(enc: Encoding, max_depth: int, timeout: float | None = None) -> int:
    """Raise :class:`ReachedFailure` (the concrete model's message and the path's length) for a
    shortest path, up to ``max_depth`` steps, to a state where a step or property fails; else
    return the deepest depth searched in full (-1: none).

    The first depth where one is found has none before it, so every step of the path runs on
    the concrete model (the encoding and the model agree until a failure)."""
    if not failure_conditions(enc):
        return max_depth
    checked = -1
    for d, solver, states in unrolled(enc, max_depth, timeout, prefix="f"):
        answer = solver.check(failing_at(enc, states[d]))
        if answer == z3.unknown:
            break
        if answer == z3.sat:
            raise_reached(enc, solver.model(), states, "where a proof's invariant admitted it")
        checked = d
    return checked


def failing_at(enc: Encoding, xs: Sequence[Any]) -> Any:
    """Where some step or property fails (:func:`failure_conditions`) over the state variables ``xs``."""
    at = Renaming(enc._base_vars, list(xs))
    return z3.Or([at(f.condition) for f in failure_conditions(enc)])


def raise_reached(enc: Encoding, model: Any, states: Sequence[Sequence[Any]], how: str) -> NoReturn:
    """Raise :class:`ReachedFailure` for the path a solver's ``model`` gives over ``states`` from Init,
    its last state one where a step or property fails and none before it (a shortest such path):
    the concrete model's own message, the path's length, and ``how`` it was found."""
    d = len(states) - 1
    at = Renaming(enc._base_vars, list(states[d]))
    state = enc.decode(model, states[d])
    failure = next((f for f in failure_conditions(enc)
                    if z3.is_true(model.eval(at(f.condition), model_completion=True))), None)
    try:
        enc.replay([enc.decode(model, xs) for xs in states])  # the path runs concretely
    except StepError as exc:  # a failure the encoding does not record, met on the way
        raise ReachedFailure(f"{exc} (reached within {d} steps from the initial state; found by Z3 {how})") from None
    error = concrete_error(enc, state, failure) if failure is not None else "a step fails"
    raise ReachedFailure(f"{error} (reached in {d} steps from the initial state; found by Z3 {how})")


def why_not_ruled_out(enc: Encoding, invariant: Callable[[Sequence[Any]], list[Any]], timeout: float | None,
                      depth: int, search_s: float | None, say: Callable[[str], None] = lambda text: None) -> str:
    """Why ``invariant`` does not rule out every failing step (:func:`discharge`), "" where it does; said
    after a search of ``depth`` steps (at most ``search_s`` seconds) for a failing state it admits,
    which raises :class:`ReachedFailure` where one is reached."""
    found = discharge(enc, invariant, timeout)
    if found.status == "ruled-out":
        return ""
    if found.status == "unknown":
        return found.reason
    say(f"{found.describe()}: searching for a reachable one"
        + ("" if search_s is None else f" (at most {search_s:.0f} s)"))
    searched = find_failure(enc, depth, search_s)
    return f"{found.describe()} (none within {searched} steps of the initial state)"


def bounded_check(protocol: Any, at: Sequence[Any], lemmas: Sequence[Any], timeout: float | None = None,
                  depth: int = 12) -> tuple[str, str]:
    """``(status, reason)``: do ``lemmas`` (a proof's inductive invariant for every N, V, F) rule out
    every failing step at each of the bounds ``at``? proved, or unknown with why; a failing state
    they admit and a short search reaches raises :class:`ReachedFailure`. (The parametric encoding
    gives a read through none some value too; this is its check at concrete bounds.)"""
    from deferral.checks.symbolic.infer import property_lemmas
    from deferral.checks.terms.encoding import encode

    for bounds in at:
        enc = encode(protocol, bounds)
        why = why_not_ruled_out(enc, lemma_terms(enc, list(lemmas) + property_lemmas(protocol)), timeout,
                                depth, timeout)
        if why:
            return "unknown", f"at {bounds.short()}: {why}"
    return "proved", ""
