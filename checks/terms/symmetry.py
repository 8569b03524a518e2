"""Renaming VCPUs in Z3 terms: permuted states, step-instance orbits, and where a step and its renaming disagree.

A VCPU permutation ``pi`` acts on a state by moving VCPU-indexed slots and renaming
VCPU-valued slot values (:meth:`~deferral.model.schema.Layout.permute` on concrete states),
and on a step instance by renaming its VCPU arguments. A step treats the VCPUs alike when
``T(x, a, y)`` iff ``T(pi x, pi a, pi y)``; :func:`mismatch` is the formula over one state
``x`` that holds where that fails for one generator ``pi``, so an unsat query over it is a
proof for every state. Used by induction's reduction to one instance per orbit
(checks/symbolic/symmetry.py) and by the explicit search's guard (vcpu_symmetry.py).
"""

from __future__ import annotations

from itertools import permutations
from typing import Any, Mapping, Sequence

import z3

from deferral.checks.terms.encoding import (ActionTerms, Encoding, Renaming, _fast_eq, _fast_ite, _fast_junction,
                                            _is_bool_slot)


def permute_args(args: tuple[int, ...], step: Any, perm: Sequence[int]) -> tuple[int, ...]:
    """A step instance's arguments renamed by ``perm`` (its VCPU-valued ones)."""
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
        images = sorted({permute_args(a.args, a.step, p) for p in permutations(range(n))})
        orbit = [index[(a.step.name, im)] for im in images]
        seen.update(orbit)
        out.append(orbit)
    return out


def remap(value: Any, perm: Sequence[int]) -> Any:
    """A VCPU-valued (bit-vector) term renamed by ``perm``: ``perm[v]`` for a VCPU, *none* (and
    anything else) kept."""
    out = value
    for old, new in enumerate(perm):
        same = _fast_eq(value, old, True)
        out = _fast_ite(value == old if same is None else same, z3.BitVecVal(new, value.size()), out)
    return out


def differ(a: Any, b: Any) -> Any:
    """``a != b`` for two Bools or two bit-vectors of one width (by the C API where it can)."""
    fast = _fast_eq(a, b, False)
    if fast is not None:
        return fast
    if type(a) is z3.BoolRef and type(b) is z3.BoolRef:
        return z3.BoolRef(z3.Z3_mk_xor(a.ctx.ref(), a.as_ast(), b.as_ast()), a.ctx)
    return a != b


def permuted_state(enc: Encoding, xs: Sequence[Any], perm: Sequence[int]) -> list[Any]:
    """Terms of ``pi x`` over the variables ``xs`` (what :meth:`Layout.permute` does to values)."""
    src, moved = enc.layout.permute_plan(perm)
    return [remap(xs[k], perm) if moved[j] and not _is_bool_slot(enc.layout.slots[j]) else xs[k]
            for j, k in enumerate(src)]


def mismatch(enc: Encoding, xs: Sequence[Any], perm: Sequence[int], terms: Sequence[ActionTerms],
             defined: Mapping[int, Any] | None = None) -> list[Any]:
    """Per step instance ``a`` (by index, ``terms`` over the variables ``xs``): a formula over ``xs``
    that holds where ``T(x, a, .)`` and ``T(pi x, pi a, .)`` disagree (a guard differs, or an
    enabled step's ``pi``-image of its next state differs from ``pi a``'s next state from ``pi
    x``). Only slots one of the two writes are compared: the others are the same variable
    renamed the same way on both sides.

    With ``defined`` (per instance, where its evaluation names only existing elements and
    writes values of their domains: where the concrete model runs it without an error), the
    two must also be defined alike, and are compared only where they are: a selection at
    *none* is Z3's artefact, not a step."""
    at = {(t.step.name, t.args): t for t in terms}
    src, moved = enc.layout.permute_plan(perm)
    pi_x = permuted_state(enc, xs, perm)
    to_pi = Renaming(xs, pi_x)
    wide, wide_pi = enc.wide(xs), enc.wide(pi_x)
    own = [term for t in terms for term in (t.guard, *t.updates.values())]
    extra = [defined[t.index] for t in terms] if defined is not None else []
    flat = iter(to_pi.many(own + extra))
    renamed = {}
    for t in terms:  # every instance's terms over pi x, renamed in one substitution
        guard = next(flat)
        renamed[t.index] = (guard, {j: next(flat) for j in t.updates})
    renamed_defined = {t.index: next(flat) for t in terms} if defined is not None else {}
    out = []
    for t in terms:
        image = at[(t.step.name, permute_args(t.args, t.step, perm))]
        image_guard, image_updates = renamed[image.index]
        changed = []
        for j in sorted(set(image.updates) | {j for j, k in enumerate(src) if k in t.updates}):
            mine = t.updates.get(src[j], wide[src[j]])
            if moved[j] and not _is_bool_slot(enc.layout.slots[j]):
                mine = remap(mine, perm)
            theirs = image_updates[j] if j in image_updates else wide_pi[j]
            changed.append(differ(mine, theirs))
        stepped = _fast_junction([t.guard, _fast_junction(changed, False)], True) if changed else z3.BoolVal(False)
        disagree = _fast_junction([differ(image_guard, t.guard), stepped], False)
        if defined is not None:
            mine_defined, image_defined = defined[t.index], renamed_defined[image.index]
            disagree = _fast_junction([differ(mine_defined, image_defined),
                                       _fast_junction([mine_defined, disagree], True)], False)
        out.append(disagree)
    return out
