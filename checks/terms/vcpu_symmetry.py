"""A proof, by Z3, that a protocol's steps and properties treat the VCPUs alike at given bounds.

A search up to VCPU symmetry stores one state per orbit; it explores the protocol's real
state graph only when renaming the VCPUs of any state renames its successors, and its
property verdicts are right only when each property holds of a state exactly when it holds
of the state renamed. This module proves both for every state of the bounds' domain (every
slot any value of its domain: the reachable states among them), for the two generators of
the permutation group (the swap of VCPUs 0 and 1 and the rotation of all), so for every
permutation:

* per step instance ``a``: ``a`` runs without an error at ``x`` iff ``pi a`` does at
  ``pi x`` (no read or write at an index that names no element, no value outside its
  domain: where the concrete model raises), and where both run, ``a`` is enabled at ``x``
  iff ``pi a`` is at ``pi x``, and ``pi`` of ``a``'s next state is ``pi a``'s next state;
  one query per step instance and generator (:func:`deferral.checks.terms.symmetry.mismatch`);
* per property: defined alike, and where defined, ``P(x)`` iff ``P(pi x)`` (the conjunction
  over its parameters, which is what the search checks).

A satisfiable query gives a state; the concrete model then confirms the difference on that
state (its successors, or the property, against the renamed state's) before the answer is
"asymmetric", so the report is the concrete model's, in its words. Where Z3 cannot evaluate
the protocol (a Python ``if`` on a state value), does not decide in its time, or gives a
state the concrete model does not confirm, the answer is "undecided" with the reason, and
the caller falls back to its sampled check.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import z3

from deferral.checks.terms.encoding import Encoding, EncodingError, Renaming, crosscheck
from deferral.checks.terms.interrupts import raise_if_interrupt
from deferral.checks.terms.symmetry import differ, mismatch, permute_args, permuted_state
from deferral.model.bounds import Bounds
from deferral.model.concrete import Action, Model, State
from deferral.model.context import StepError
from deferral.model.protocol import Property, Protocol

#: At most how long the proof may take in all (seconds) before what is left is "undecided".
TIME_LIMIT = 60.0


@dataclass(frozen=True)
class SymmetryProof:
    """The answer: ``proved``, ``asymmetric`` (``reason`` says what differs, at ``state`` under
    ``perm``) or ``undecided`` (``reason`` says why)."""

    status: str
    reason: str = ""
    state: State | None = None
    perm: tuple[int, ...] | None = None


def prove_vcpu_symmetry(protocol: Protocol, bounds: Bounds, *, time_limit: float = TIME_LIMIT,
                        enc: Encoding | None = None) -> SymmetryProof:
    """Prove that ``protocol``'s steps and properties treat the VCPUs alike at ``bounds`` (module
    docstring; ``enc``: the caller's encoding of them, not built again). Ctrl-C or SIGTERM inside a Z3 call
    is raised as itself, never an error of the proof."""
    try:
        return _prove(protocol, bounds, time_limit, enc)
    except Exception as exc:
        raise_if_interrupt(exc)
        raise


def _prove(protocol: Protocol, bounds: Bounds, time_limit: float, given: Encoding | None) -> SymmetryProof:
    deadline = time.monotonic() + time_limit
    try:
        enc = Encoding(protocol, bounds) if given is None else given
        gens = enc.layout.generators
        if not gens:
            return SymmetryProof("proved", "one VCPU: nothing to rename")
        xs = enc._base_vars  # the cached terms as they are (no renaming)
        terms = enc.defined_terms(xs)
        crosscheck(enc, over=(xs, terms))
    except EncodingError as exc:
        return SymmetryProof("undecided", f"Z3 cannot evaluate the protocol: {exc}")
    model = enc.model
    solver = z3.SolverFor("QF_BV")
    solver.add(enc.valid(xs))
    defined = {t.index: t.defined for t in terms}
    for perm in gens:  # one query per step instance: at 6,3,3,3 0.3 s in all, 10 s as one per orbit
        for action, disagree in zip(model.actions, mismatch(enc, xs, perm, terms, defined)):
            answer = _answer(enc, xs, _ask(solver, disagree, deadline), f"step {action.label()}", perm,
                             lambda state: instance_disagreement(model, action, state, perm))
            if answer is not None:
                return answer
    for prop in protocol.properties:
        try:
            holds, prop_defined = _property_terms(enc, prop, xs)
        except EncodingError as exc:
            return SymmetryProof("undecided", f"Z3 cannot evaluate property {prop.name}: {exc}")
        for perm in gens:
            holds_pi, defined_pi = Renaming(xs, permuted_state(enc, xs, perm)).many([holds, prop_defined])
            found = _ask(solver, z3.Or(differ(prop_defined, defined_pi),
                                       z3.And(prop_defined, differ(holds, holds_pi))), deadline)
            answer = _answer(enc, xs, found, f"property {prop.name}", perm,
                             lambda state: property_disagreement(model, prop, state, perm))
            if answer is not None:
                return answer
    return SymmetryProof("proved")


def _answer(enc: Encoding, xs: Sequence[Any], found: z3.ModelRef | str | None, subject: str,
            perm: tuple[int, ...], confirm: Callable[[State], str]) -> SymmetryProof | None:
    """None where Z3 proved ``subject`` alike under ``perm`` (``found`` None); else "asymmetric" where
    the concrete model confirms the difference in Z3's state (``confirm`` says what differs), else
    "undecided" with the reason."""
    if found is None:
        return None
    if isinstance(found, str):
        return SymmetryProof("undecided", f"{subject}: {found}")
    state = enc.decode(found, xs)
    what = confirm(state)
    if what:
        return SymmetryProof("asymmetric", what, state, perm)
    return SymmetryProof("undecided", f"Z3's state for {subject} is not confirmed by the concrete model")


def _ask(solver: z3.Solver, formula: Any, deadline: float) -> z3.ModelRef | str | None:
    """None where ``formula`` is unsat (proved), a model where sat, the reason as text otherwise."""
    left = deadline - time.monotonic()
    if left <= 0:
        return "out of time"
    solver.set("timeout", max(1, int(left * 1000)))
    verdict = solver.check(formula)
    if verdict == z3.unsat:
        return None
    if verdict == z3.sat:
        return solver.model()
    return f"Z3 did not decide ({solver.reason_unknown()})"


def _property_terms(enc: Encoding, prop: Property, xs: Sequence[Any]) -> tuple[Any, Any]:
    """``prop`` over ``xs`` (every parameter instance) and where it is evaluated without an error."""
    undefined: list[Any] = []
    return enc.holds(prop.predicate, prop.params, xs, undefined), enc.none_of(undefined)


def instance_disagreement(model: Model, action: Action, state: State, perm: Sequence[int]) -> str:
    """What differs (empty if nothing), on the concrete model, between ``action`` at ``state`` and
    the renamed instance at the renamed state: one fails and not the other, one is enabled and not
    the other, or the renamed next state is not the renamed instance's next state."""
    layout = model.layout
    image_action = model.find_action(action.step.name, permute_args(action.args, action.step, perm))
    assert image_action is not None, "a renamed step instance is a step instance"
    image = layout.permute(state, perm)
    here, there = _outcome(model, action, state), _outcome(model, image_action, image)
    if isinstance(here, tuple):
        here = layout.permute(here, perm)
    if here == there:
        return ""
    if isinstance(here, tuple) and isinstance(there, tuple):
        return (f"{action.label()} in a state and {image_action.label()} in that state renamed reach states that "
                "are not renamings of each other")
    return (f"{action.label()} {_said(here)} in a state, {image_action.label()} {_said(there)} in that state "
            "renamed")


def _said(outcome: State | str | None) -> str:
    """An outcome of :func:`_outcome` in words."""
    if outcome is None:
        return "is not enabled"
    return "runs" if isinstance(outcome, tuple) else f"fails ({outcome})"


def _outcome(model: Model, action: Action, state: State) -> State | str | None:
    """The next state, None where not enabled, or the error's text."""
    try:
        return model.apply(state, action)
    except StepError as exc:
        return str(exc) or "an error"


def property_disagreement(model: Model, prop: Property, state: State, perm: Sequence[int]) -> str:
    """What differs (empty if nothing) between ``prop`` in ``state`` and in the state renamed by ``perm``."""
    image = model.layout.permute(state, perm)
    try:
        here = model.holds(prop, state)
    except StepError:
        here = None
    try:
        there = model.holds(prop, image)
    except StepError:
        there = None
    if here == there:
        return ""
    shown = {True: "holds", False: "fails", None: "cannot be evaluated"}
    return f"property {prop.name} {shown[here]} in a state and {shown[there]} in the state renamed"
