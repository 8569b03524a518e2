"""The enumeration shared out between learners (checks/symbolic/clauses_split.py): two learners over a socket, in
one process, enumerate what one alone does."""

from __future__ import annotations

import time

import numpy as np
import pytest

from deferral.checks.symbolic import clauses, clauses_split
from deferral.checks.symbolic.vocabulary import sample_rows
from deferral.model import REFERENCE, Bounds
from tests.checks.symbolic.test_clauses_peers import _at_once, _pair

SMALL, LARGER = Bounds(2, 1, 1, 1), Bounds(3, 1, 1, 1)


@pytest.fixture(scope="module")
def samples() -> list[tuple[Bounds, np.ndarray]]:
    return [(SMALL, sample_rows(REFERENCE, SMALL, cap=3000)), (LARGER, sample_rows(REFERENCE, LARGER, cap=2000))]


@pytest.fixture(scope="module")
def alone(samples: list[tuple[Bounds, np.ndarray]]) -> clauses.Enumerated:
    return clauses.enumerate_all(REFERENCE, samples)


def test_the_costliest_signature_goes_first_to_the_learner_with_least() -> None:
    assert clauses_split.shares([5, 1, 9, 4, 3], 2) == [1, 1, 0, 1, 0]  # 9 | 5, 4 | 3 (9 against 9), 1
    assert clauses_split.shares([5, 1, 9], 1) == [0, 0, 0]
    assert clauses_split.shares([2, 2, 2], 3) == [0, 1, 2]


def test_a_rebuilt_signature_is_the_one_built_from_the_samples(samples: list[tuple[Bounds, np.ndarray]],
                                                               alone: clauses.Enumerated) -> None:
    """Signature.rebuilt from another's parts (after a pickle, as the link sends it): the same literals, tables
    and masks as built from the samples here (what :meth:`Signature.diagrams`, ``excluding`` and ``covering``
    read), the same families, and the same truth in a state none of the samples has (its own truth tables)."""
    import pickle

    from deferral.checks.symbolic.truth import TruthTables

    sig = max(alone.signatures, key=lambda s: len(s.keep))
    parts = pickle.loads(pickle.dumps(sig.parts()))
    again = clauses.Signature.rebuilt(REFERENCE, sig.params, SMALL, TruthTables(REFERENCE), parts)
    fresh = clauses.Signature(REFERENCE, sig.params, samples)
    assert [x.text for x in again.lits] == [x.text for x in fresh.lits]
    for field in ("keep", "always", "wide", "wide_full", "pool", "masks", "full"):
        assert getattr(again, field) == getattr(fresh, field), field
    assert again._cols.dtype == fresh._cols.dtype and np.array_equal(again._cols, fresh._cols)
    assert [x.name for x in again.families()] == [x.name for x in fresh.families()]
    state = np.zeros(samples[0][1].shape[1], dtype=np.int64)  # every variable 0: not a reachable state
    assert np.array_equal(again.truth_in(SMALL, [state]), fresh.truth_in(SMALL, [state]))
    assert [x.name for x in again.falsified(SMALL, state)] == [x.name for x in fresh.falsified(SMALL, state)] != []


def test_other_literals_are_refused() -> None:
    sig = clauses.Signature(REFERENCE, clauses.signatures(REFERENCE, SMALL)[0], [(SMALL, sample_rows(REFERENCE, SMALL))])
    parts = dict(sig.parts(), texts=["not a literal of this vocabulary"] * len(sig.keep + sig.always))
    with pytest.raises(ValueError, match="not this learner's"):
        clauses.Signature.rebuilt(REFERENCE, sig.params, SMALL, sig.tables, parts)


def test_two_learners_enumerate_what_one_does_each_building_its_share(samples: list[tuple[Bounds, np.ndarray]],
                                                                      alone: clauses.Enumerated) -> None:
    zero, one = _pair()
    notes: list[str] = []
    got = _at_once(lambda: clauses.enumerate_all(REFERENCE, samples, peers=zero, note=notes.append),
                   lambda: clauses.enumerate_all(REFERENCE, samples, peers=one))
    for found in got:
        assert [x.name for x in found.families] == [x.name for x in alone.families]
        assert found.per_signature == alone.per_signature
    owner = clauses_split.shares([clauses_split.cost(p, samples) for p in clauses.signatures(REFERENCE, SMALL)], 2)
    mine = owner.count(0)
    assert 0 < mine < len(owner)
    assert any(f"{mine} built here" in x and f"{len(owner) - mine} taken" in x for x in notes), notes


def test_a_share_that_does_not_come_is_built_here(samples: list[tuple[Bounds, np.ndarray]],
                                                  alone: clauses.Enumerated, monkeypatch: pytest.MonkeyPatch) -> None:
    """The peer never sends (it is busy elsewhere): after the wait, this learner builds every signature itself."""
    monkeypatch.setattr(clauses_split, "PEER_WAIT_MIN_S", 0.5)
    monkeypatch.setattr(clauses_split, "PEER_WAIT_FACTOR", 0.0)
    zero, _silent = _pair()
    notes: list[str] = []
    t0 = time.monotonic()
    found = clauses.enumerate_all(REFERENCE, samples, peers=zero, note=notes.append)
    assert [x.name for x in found.families] == [x.name for x in alone.families]
    assert any("0 taken" in x and "built here after all" in x for x in notes), notes
    assert time.monotonic() - t0 < 60


def test_a_share_of_other_samples_is_not_taken(samples: list[tuple[Bounds, np.ndarray]],
                                               alone: clauses.Enumerated) -> None:
    zero, one = _pair()
    other = [(b, rows[: rows.shape[0] // 2]) for b, rows in samples]
    notes: list[str] = []
    got = _at_once(lambda: clauses.enumerate_all(REFERENCE, samples, peers=zero, note=notes.append),
                   lambda: clauses.enumerate_all(REFERENCE, other, peers=one))
    assert [x.name for x in got[0].families] == [x.name for x in alone.families]
    assert any("other samples" in x and "built here after all" in x for x in notes), notes
