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
    """Is every family ``F`` (the conjunction of its instances) invariant: ``F(x)`` iff ``F(pi x)``?
    First instance by instance (:func:`_renames_instances`, cached per literal), then, for the
    families that check does not settle, as a whole (one query for all of them)."""
    to_pi = Renaming(xs, permuted_state(enc, xs, perm))
    bad = []
    for lem in lemmas:
        if _renames_instances(enc, lem.fn, tuple(lem.params), xs, perm, to_pi, solver):
            continue
        family = z3.And([t for _, t in enc.instances(lem.fn, lem.params, xs)] or [z3.BoolVal(True)])
        bad.append(family != to_pi(family))
    return not bad or solver.check(z3.Or(bad)) == z3.unsat


def _renames_instances(enc: Encoding, fn: Any, params: tuple[tuple[str, Any], ...], xs: Sequence[Any],
                       perm: Sequence[int], to_pi: Renaming, solver: z3.Solver) -> bool:
    """A sufficient condition for the family of ``fn`` over ``params`` to be invariant under ``perm``:
    for one of the two renamings ``sigma`` of the instances' VCPU arguments (by ``perm`` or by its
    inverse, a bijection of the instances either way), every instance ``a`` has ``fn(pi x, a)`` iff
    ``fn(x, sigma a)``. Then the conjunction over all ``a`` is the same conjunction reordered. A family
    made of literals (``fn.any_of``: each instance the disjunction of theirs, checks/symbolic/strengthen.py,
    weaken.py) meets it where every literal meets it with one ``sigma``: each literal is checked once per
    encoding (a few dozen literals make the hundreds of families a learner offers; the whole families'
    query at 3 VCPUs, 2 pages and frames, two spaces took 5-10 s per generator and ran out of time with
    200 of them, PROVE.md, 5 Dec, afternoon)."""
    return bool(_sigmas(enc, fn, params, xs, perm, to_pi, solver))


def _sigmas(enc: Encoding, fn: Any, params: tuple[tuple[str, Any], ...], xs: Sequence[Any],
            perm: Sequence[int], to_pi: Renaming, solver: z3.Solver) -> frozenset[tuple[int, ...]]:
    """The renamings of the instances (``perm`` and its inverse, as tuples) for which every instance of
    ``fn`` meets :func:`_renames_instances`' condition (checked by Z3 over valid states; cached per
    encoding, function, parameters and ``perm``)."""
    cache = enc.derived.setdefault("instance renamings", {})
    key = (fn, params, tuple(perm))
    if key in cache:
        return cache[key]
    inverse = tuple(sorted(range(len(perm)), key=lambda k: perm[k]))
    options = list(dict.fromkeys([tuple(perm), inverse]))
    parts = getattr(fn, "any_of", None)
    if parts:  # the literals' common renamings (an empty one: asked of the family's own instances below)
        common = set(options)
        for part in parts:
            common &= _sigmas(enc, part, params, xs, perm, to_pi, solver)
            if not common:
                break
        if common:
            cache[key] = frozenset(common)
            return cache[key]
    inst = enc.instances(fn, params, xs)
    at = {args: term for args, term in inst}
    n = len(perm)
    found = set()
    for sigma in options:
        try:
            pairs = [(to_pi(term), at[tuple(sigma[a] if d.vcpu_valued and a < n else a
                                           for (_, d), a in zip(params, args))]) for args, term in inst]
        except KeyError:  # cannot be (sigma permutes the VCPU arguments): no claim
            continue
        bad = [a != b for a, b in pairs if not a.eq(b)]
        if not bad or solver.check(z3.Or(bad)) == z3.unsat:
            found.add(sigma)
    cache[key] = frozenset(found)
    return cache[key]


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
