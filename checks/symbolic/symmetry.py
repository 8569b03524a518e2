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

from itertools import permutations
from typing import Any, Sequence

import z3

from deferral.checks.symbolic.encoding import Encoding, Renaming, _fast_eq, _fast_ite, _fast_junction, _is_bool_slot
from deferral.model.invariant import Lemma


def _permute_args(enc: Encoding, args: tuple[int, ...], step: Any, perm: Sequence[int]) -> tuple[int, ...]:
    n = len(perm)
    return tuple(perm[a] if d.vcpu_valued and a < n else a for (_, d), a in zip(step.params, args))


def orbits(enc: Encoding) -> list[list[int]]:
    """The step instances (indices) grouped by orbit under VCPU permutations of their arguments,
    each orbit least arguments first."""
    n = enc.layout.symmetric_size
    index = {(a.step.name, a.args): a.index for a in enc.model.actions}
    seen: set[int] = set()
    out = []
    for a in enc.model.actions:
        if a.index in seen:
            continue
        images = sorted({_permute_args(enc, a.args, a.step, p) for p in permutations(range(n))})
        orbit = [index[(a.step.name, im)] for im in images]
        seen.update(orbit)
        out.append(orbit)
    return out


def _remap(value: Any, perm: Sequence[int]) -> Any:
    """A VCPU-valued (bit-vector) term renamed by ``perm``: ``perm[v]`` for a VCPU, *none* (and
    anything else) kept."""
    out = value
    for old, new in enumerate(perm):
        same = _fast_eq(value, old, True)
        out = _fast_ite(value == old if same is None else same, z3.BitVecVal(new, value.size()), out)
    return out


def _differ(a: Any, b: Any) -> Any:
    """``a != b`` for two Bools or two bit-vectors of one width (by the C API where it can)."""
    fast = _fast_eq(a, b, False)
    if fast is not None:
        return fast
    if type(a) is z3.BoolRef and type(b) is z3.BoolRef:
        return z3.BoolRef(z3.Z3_mk_xor(a.ctx.ref(), a.as_ast(), b.as_ast()), a.ctx)
    return a != b


def permuted_state(enc: Encoding, xs: Sequence[Any], perm: Sequence[int]) -> list[Any]:
    """Terms of ``pi x`` over the variables ``xs`` (what :meth:`Layout.permute` does to values)."""
    src, remap = enc.layout.permute_plan(perm)
    return [_remap(xs[k], perm) if remap[j] and not _is_bool_slot(enc.layout.slots[j]) else xs[k]
            for j, k in enumerate(src)]


def _mismatch(enc: Encoding, xs: Sequence[Any], perm: Sequence[int]) -> list[Any]:
    """Per step instance ``a`` (by index): a formula over ``xs`` that holds where ``T(x, a, .)`` and
    ``T(pi x, pi a, .)`` disagree (a guard differs, or an enabled step's ``pi``-image of its
    next state differs from ``pi a``'s next state from ``pi x``). Only slots one of the two
    writes are compared: the others are the same variable renamed the same way on both sides."""
    terms = enc.action_terms(xs)
    at = {(t.step.name, t.args): t for t in terms}
    src, remap = enc.layout.permute_plan(perm)
    pi_x = permuted_state(enc, xs, perm)
    to_pi = Renaming(xs, pi_x)
    wide, wide_pi = enc.wide(xs), enc.wide(pi_x)
    flat = iter(to_pi.many([term for t in terms for term in (t.guard, *t.updates.values())]))
    renamed = {}
    for t in terms:  # every instance's terms over pi x, renamed in one substitution
        guard = next(flat)
        renamed[t.index] = (guard, {j: next(flat) for j in t.updates})
    out = []
    for t in terms:
        image = at[(t.step.name, _permute_args(enc, t.args, t.step, perm))]
        image_guard, image_updates = renamed[image.index]
        differ = []
        for j in sorted(set(image.updates) | {j for j, k in enumerate(src) if k in t.updates}):
            mine = t.updates.get(src[j], wide[src[j]])
            if remap[j] and not _is_bool_slot(enc.layout.slots[j]):
                mine = _remap(mine, perm)
            theirs = image_updates[j] if j in image_updates else wide_pi[j]
            differ.append(_differ(mine, theirs))
        moved = _fast_junction([t.guard, _fast_junction(differ, False)], True) if differ else z3.BoolVal(False)
        out.append(_fast_junction([_differ(image_guard, t.guard), moved], False))
    return out


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
