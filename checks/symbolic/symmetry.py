"""VCPU symmetry for induction: which step instances a consecution query must try.

Consecution asks for ``Inv(x) & T(x, a, y) & !Inv(y)`` over every step instance ``a``. When

1. the transition relation is symmetric under permutations ``pi`` of the protocol's
   symmetric sort (VCPUs): ``T(x, a, y)`` iff ``T(pi x, pi a, pi y)``, where ``pi x``
   renames VCPU indices and VCPU-valued slot values (:meth:`Layout.permute`) and ``pi a``
   the step's VCPU arguments, and
2. every candidate lemma family ``F`` is symmetric: ``F(x)`` iff ``F(pi x)``,

then a counterexample ``(x, b, y)`` breaking family ``F`` gives, for ``b = sigma a``, the
counterexample ``(sigma^-1 x, a, sigma^-1 y)`` breaking the same ``F`` (both sides of 1 and
2 are applied with ``sigma^-1``). So one step instance per orbit of its arguments
(``write(0, p, f)`` for every page and frame, ``take_ipi(0, 0)`` and ``take_ipi(0, 1)``)
finds a counterexample whenever one exists, and breaks the same families: Houdini drops
the same families and induction gives the same verdict, with about ``1/N`` of the
transition relation.

Nothing is assumed: 1 and 2 are checked by Z3 (:func:`representatives`) for two
generators of the permutation group, the transposition ``(0 1)`` and the cycle
``(0 1 ... N-1)`` (so for every permutation), each a query over one state and the step
terms, with no transition relation unrolled; a protocol without a symmetric sort, one
symmetric sort of one element, a step or lemma that treats some VCPU differently (a
variant that tests ``i == 0``), or an undecided check all fall back to every step
instance. The explicit search (``check``) trusts the sort's ``symmetric`` declaration;
this module checks it for the steps and lemmas at hand.
"""

from __future__ import annotations

from typing import Any, Sequence

import z3

from deferral.checks.terms.encoding import Encoding, Renaming
from deferral.checks.terms.symmetry import mismatch, orbits, permuted_state
from deferral.model.invariant import Lemma


def _mismatch(enc: Encoding, xs: Sequence[Any], perm: Sequence[int]) -> list[Any]:
    """Per step instance: where it and its renaming by ``perm`` disagree (:func:`mismatch` over the
    encoding's own terms: selections at *none* included, so such an orbit is not reduced)."""
    return mismatch(enc, xs, perm, enc.action_terms(xs))


def symmetric_orbits(enc: Encoding, timeout: float | None = None) -> list[bool]:
    """Per orbit of :func:`orbits`: are its step instances checked symmetric (``T(x, a, y)`` iff
    ``T(pi x, pi a, pi y)`` for every valid ``x`` and both generators)? Computed once per encoding.

    Checked per orbit: an orbit is closed under the generators, so its check composes to
    every permutation. An orbit can fail where a step reads through a VCPU-valued slot
    holding *none* (the reference's ``ack_ipi`` at ``cur = none``, a state the concrete
    model refuses: the read's selection then falls to the last VCPU): its instances are
    then all tried."""
    if "symmetric orbits" not in enc.derived:
        xs = enc.state("x")
        solver = _solver(enc, xs, timeout)
        mismatches = [_mismatch(enc, xs, perm) for perm in enc.layout.generators]
        enc.derived["symmetric orbits"] = [
            solver.check(z3.Or([m[i] for m in mismatches for i in orbit])) == z3.unsat
            for orbit in orbits(enc)]
    return list(enc.derived["symmetric orbits"])


def _solver(enc: Encoding, xs: Sequence[Any], timeout: float | None) -> z3.Solver:
    solver = z3.SolverFor("QF_BV")
    if timeout is not None:
        solver.set("timeout", max(1, int(timeout * 1000)))
    solver.add(enc.valid(xs))
    return solver


def _lemmas_symmetric(enc: Encoding, lemmas: Sequence[Lemma], xs: Sequence[Any], perm: Sequence[int],
                      solver: z3.Solver) -> bool:
    """Is every family ``F`` (the conjunction of its instances) invariant: ``F(x)`` iff ``F(pi x)``?"""
    to_pi = Renaming(xs, permuted_state(enc, xs, perm))
    bad = []
    for lem in lemmas:
        family = z3.And([t for _, t in enc.instances(lem.fn, lem.params, xs)] or [z3.BoolVal(True)])
        bad.append(family != to_pi(family))
    return not bad or solver.check(z3.Or(bad)) == z3.unsat


def representatives(enc: Encoding, lemmas: Sequence[Lemma], timeout: float | None = None) -> list[int] | None:
    """The step instances consecution must try for ``lemmas``: the least of each orbit checked
    symmetric and every instance of the others, when every family is checked symmetric (module
    docstring); None (try every instance) otherwise."""
    gens = enc.layout.generators
    if not gens:
        return None
    xs = enc.state("x")
    # families checked symmetric before over this encoding are not asked again (a second Houdini
    # over the shipped lemmas and a few more: 1-2 s of Z3 at 6,3,3,3 with two address spaces)
    known = enc.derived.setdefault("symmetric lemmas", set())
    todo = [lem for lem in lemmas if (lem.fn, tuple(lem.params)) not in known]
    if todo:
        solver = _solver(enc, xs, timeout)
        if not all(_lemmas_symmetric(enc, todo, xs, perm, solver) for perm in gens):
            return None
        known.update((lem.fn, tuple(lem.params)) for lem in todo)
    found = symmetric_orbits(enc, timeout)
    return sorted(i for orbit, ok in zip(orbits(enc), found) for i in (orbit[:1] if ok else orbit))
