"""The Z3 encoding's shortcuts (checks/terms/encoding.py) build the terms the plain way would: Bool ``&`` and ``|``
by the C API, the base variables' context values built once; and the bounded Houdini's check that a family holds
initially (checks/symbolic/relevance.py) drops exactly the families false in the initial state."""

from __future__ import annotations

from typing import Any

import pytest
import z3

from deferral.checks.symbolic.relevance import Relevance
from deferral.checks.terms.encoding import Sym, encode
from deferral.model import REFERENCE, Bounds
from deferral.model.invariant import Lemma
from deferral.model.reference import IDLE, INV
from deferral.model.schema import VCPU

SMALL = Bounds(2, 1, 1, 1)


@pytest.mark.parametrize("name, plain", [("__and__", z3.And), ("__or__", z3.Or)])
def test_bool_and_or_of_terms_and_python_bools_build_z3s_own_terms(name: str, plain: Any) -> None:
    a, b = z3.Bool("a"), z3.Bool("b")
    for other in (b, True, False):
        got = getattr(Sym(a), name)(Sym(other) if isinstance(other, z3.BoolRef) else other)
        assert isinstance(got, Sym) and got.term.eq(plain(a, other))
    # a Python bool on the left: Python calls the right operand's reflected operator, the term's order is kept
    left = (True & Sym(a)) if name == "__and__" else (False | Sym(a))
    assert left.term.eq(plain(a, True if name == "__and__" else False))


def test_contexts_over_the_base_variables_share_values_a_step_does_not_change() -> None:
    enc = encode(REFERENCE, SMALL, check=False)
    before = [v.term for v in enc._base_values]
    first, second = enc.context(enc._base_vars), enc.context(enc._base_vars)
    assert [v.term for v in first.values] == before
    first.values[0] = Sym(z3.BitVecVal(0, 1) if z3.is_bv(before[0]) else z3.BoolVal(False))  # a step writes its copy
    assert [v.term.eq(t) for v, t in zip(second.values, before)] == [True] * len(before)
    assert [v.term.eq(t) for v, t in zip(enc._base_values, before)] == [True] * len(before)
    fresh = enc.context(list(enc._base_vars))  # other variables (an equal list): built as before
    assert all(v.term.eq(t) for v, t in zip(fresh.values, before))


def test_houdini_leaves_out_exactly_the_families_false_in_the_initial_state() -> None:
    vcpu = (("i", VCPU),)
    idle = Lemma("every vcpu idle", vcpu, lambda s, i: s.pc[i] == IDLE)  # holds initially (and is not inductive)
    busy = Lemma("no vcpu idle", vcpu, lambda s, i: s.pc[i] != IDLE)  # false initially at every vcpu
    # false at one instance (vcpu 1) only
    one = Lemma("vcpu 1 in invlpg", vcpu, lambda s, i: s.pc[i] == INV if i == 1 else s.pc[i] == IDLE)
    rel = Relevance(REFERENCE, SMALL)
    rel._setup()
    assert rel._term(idle) is not None
    assert rel._term(busy) is None and rel._term(one) is None
