"""Compiled truth tables (checks/symbolic/truth.py) say what the generic path says, on any state."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from deferral.checks.symbolic import clauses, truth
from deferral.checks.symbolic.vocabulary import sample_rows, truth_table
from deferral.model import REFERENCE
from deferral.model.schema import Sort
from deferral.model.variants import load_variant_file

EXAMPLES = Path(__file__).parents[3] / "examples"
SPACES2 = REFERENCE.bounds(vcpus=2, pages=1, frames=1, queue=1, spaces=2)
WIDER = REFERENCE.bounds(vcpus=3, pages=2, frames=2, queue=1, spaces=2)
VCPU = next(d for _, d in clauses.signatures(REFERENCE, SPACES2)[0] if isinstance(d, Sort))


def _random_rows(protocol, b, n: int, seed: int = 1) -> np.ndarray:
    """States of any slot values in their domains: unreachable ones too (a counterexample to induction is one)."""
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, slot.size, n) for slot in protocol.layout(b).slots], axis=1)


@pytest.mark.parametrize("protocol", [REFERENCE, load_variant_file(EXAMPLES / "lazy_cur_clear.py")], ids=["reference", "example"])
@pytest.mark.parametrize("b", [SPACES2, WIDER], ids=["2,1,1,1,2", "3,2,2,1,2"])
def test_every_literal_of_every_signature_as_the_generic_path_says(protocol, b) -> None:
    tables = truth.TruthTables(protocol)
    reachable = sample_rows(protocol, b, cap=400)
    for params in clauses.signatures(protocol, b):
        fns = [lit.fn for lit in clauses.vocabulary(protocol, params, b)]
        for rows in (reachable, _random_rows(protocol, b, 400), _random_rows(protocol, b, 1, seed=2)):
            got = tables.table(b, rows, fns, params)
            assert got.shape == (len(fns), len(truth.assignments(params, b)) * rows.shape[0])
            assert np.array_equal(got, truth.evaluated(protocol, b, rows, fns, params)), params


def test_clauses_of_literals_and_chunks_of_rows(monkeypatch) -> None:
    """A family (a disjunction of literals) compiles too; rows taken a few at a time give the same table."""
    found = clauses.enumerate_all(REFERENCE, [(SPACES2, sample_rows(REFERENCE, SPACES2, cap=300))])
    rows = _random_rows(REFERENCE, SPACES2, 300)
    by_params: dict = {}
    for fam in found.families[::8]:  # every eighth: each signature's, short and long
        by_params.setdefault(tuple(fam.params), []).append(fam.fn)
    whole = {p: truth.TruthTables(REFERENCE).table(SPACES2, rows, fns, p) for p, fns in by_params.items()}
    monkeypatch.setattr(truth, "CHUNK_VALUES", 50)
    for params, fns in by_params.items():
        expected = truth.evaluated(REFERENCE, SPACES2, rows, fns, params)
        assert np.array_equal(whole[params], expected)
        assert np.array_equal(truth.TruthTables(REFERENCE).table(SPACES2, rows, fns, params), expected)


def test_what_the_tracer_cannot_follow_takes_the_generic_path() -> None:
    def branches(s, i):  # a product: an operator the tracer does not model
        return (s.cur[i] * 2) == 2

    def plain(s, i):
        return s.cur[i] == 0

    def constant(s, i):
        return i == 0

    params = [("i", VCPU)]
    rows = _random_rows(REFERENCE, SPACES2, 50)
    tables = truth.TruthTables(REFERENCE)
    got = tables.table(SPACES2, rows, [plain, branches, constant], params)
    expected = np.stack([truth.evaluated(REFERENCE, SPACES2, row, [f], params)[0]
                         for f in (plain, branches, constant) for row in [rows]])
    assert np.array_equal(got, expected)
    traced = tables._at[SPACES2].traced
    assert traced[(id(branches), tuple(params))][1] is None and traced[(id(plain), tuple(params))][1] is not None


def test_values_that_may_leave_int16_are_computed_wide() -> None:
    """A sum the interval analysis cannot bound is evaluated in int64: no wrap decides a truth value."""
    def big(s, i):
        return (s.cur[i] + 40_000) > 40_000

    def wraps(s, i):
        return (s.pg[i] - 1) < 0

    params = [("i", VCPU)]
    rows = _random_rows(REFERENCE, SPACES2, 64).astype(np.uint8)
    tables = truth.TruthTables(REFERENCE)
    got = truth_table(REFERENCE, SPACES2, rows, [big, wraps], params, tables)
    wide = rows.astype(np.int64)
    assert np.array_equal(got, truth.evaluated(REFERENCE, SPACES2, wide, [big, wraps], params))
    assert got[1].any() and got[0].any()
    assert {plan.dtype for plan in tables._at[SPACES2].plans.values()} == {np.int64}


def test_an_error_in_a_function_is_the_generic_paths_error() -> None:
    def broken(s, i):
        return s.tlb[i][7] == 0  # no page 7

    with pytest.raises(Exception) as generic:
        truth.evaluated(REFERENCE, SPACES2, _random_rows(REFERENCE, SPACES2, 3), [broken], [("i", VCPU)])
    with pytest.raises(type(generic.value), match=re.escape(str(generic.value))):
        truth.TruthTables(REFERENCE).table(SPACES2, _random_rows(REFERENCE, SPACES2, 3), [broken], [("i", VCPU)])
