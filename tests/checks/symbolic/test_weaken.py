"""Lemma repair (checks/symbolic/weaken.py): a dropped shipped lemma weakened from reachable states proves a
safe change, and a buggy one is never proved by it."""

from __future__ import annotations

from pathlib import Path

import pytest

from deferral.checks.symbolic import weaken
from deferral.checks.symbolic.encoding import encode
from deferral.checks.symbolic.induction import check_inductive, houdini
from deferral.checks.symbolic.prove import prove
from deferral.model import PUBLISHED, Bounds
from deferral.model.invariant import invariant_for
from deferral.model.protocol import Protocol
from deferral.model.variants import load_variant_file

from tests.checks.symbolic.test_examples_safe import MUTANTS, _mutant, same_value_mutant

EXAMPLES = Path(__file__).parents[3] / "examples"
ACKED = "covers[i] after sending and k acked (not waiting[i][k]) implies req[k][pg[i]]"
TWO = Bounds(2, 1, 1, 1, 2)


def test_auto_proves_lazy_tlb_ipi_by_the_weakened_lemma() -> None:
    """The shipped lemmas alone are too weak at two spaces; the acked lemma, weakened by "cr3[k] != sp[i]
    or k's entries of (sp[i], pg[i]) are fresh", proves it (the fact PROVE.md found by hand, 4 Dec)."""
    res = prove(load_variant_file(EXAMPLES / "lazy_tlb_ipi.py"), TWO, timeout=60)
    assert (res.status, res.route) == ("proved", "shipped-lemmas+weakened+houdini+induction"), res.reason
    extra = [x for x in res.invariant if ") or " in x]
    assert extra and all(ACKED in x for x in extra)
    assert any("cr3[k] != sp[i]" in x for x in extra)
    assert res.learned_at == [TWO]


def test_weakened_lemmas_hold_in_every_sampled_state_and_are_not_consequences() -> None:
    protocol = load_variant_file(EXAMPLES / "lazy_tlb_ipi.py")
    lemmas = invariant_for(TWO)
    rows = weaken.sample_rows(protocol, TWO, cap=200_000)
    acked = next(x for x in lemmas if x.name == ACKED)
    assert not weaken._table(protocol, TWO, rows, [acked.fn], acked.params).all()  # L fails: D is needed
    found = weaken.weakenings(protocol, acked, [(TWO, rows)], assume=[x for x in lemmas if x is not acked])
    assert found
    table = weaken._table(protocol, TWO, rows, [x.fn for x in found], acked.params)
    assert table.all()  # true in every sampled state, for every parameter assignment
    assert all(weaken.is_weakened(x) and x.params == acked.params for x in found)


def test_literals_use_the_protocols_vocabulary_only() -> None:
    protocol = load_variant_file(EXAMPLES / "lazy_tlb_ipi.py")
    acked = next(x for x in invariant_for(TWO) if x.name == ACKED)
    texts = {x.text for x in weaken.literals(protocol, acked.params, TWO)}
    assert {"cr3[k] != sp[i]", "req[k][sp[i]][pg[i]]", "pc[i] = SdWait",
            "tlb[k][pg[i]] in {0, gpt[sp[i]][pg[i]]}"} <= texts
    assert "i = k" not in texts  # two parameters: the instance says whether they are equal


def _weakened_verdict(protocol: Protocol, bounds: Bounds) -> str:
    """Houdini over the shipped lemmas, the dropped ones weakened, Houdini and induction again."""
    enc = encode(protocol, bounds)
    lemmas = invariant_for(bounds)
    _, hlog = houdini(enc, lemmas)
    rep = weaken.repair(protocol, bounds, lemmas, weaken.dropped_names(hlog), timeout=30)
    alive, _ = houdini(enc, list(lemmas) + rep.candidates)
    return check_inductive(enc, alive, inductive=True).status


#: each where the explicit search finds it violated (overflow-drop holds at one page)
BUGS = [("drain-local-only", Bounds(2, 1, 1, 1)), ("ipi-before-drain", Bounds(2, 1, 1, 1)),
        ("remote-no-drain", Bounds(2, 1, 1, 1)), ("reload-no-drain", Bounds(2, 1, 1, 1)),
        ("overflow-drop", Bounds(2, 2, 1, 1)), ("defer-non-current", TWO), ("switch-no-drain", TWO),
        ("resync-running-only", TWO)]


@pytest.mark.parametrize("name,bounds", BUGS, ids=[n for n, _ in BUGS])
def test_published_bugs_never_proved_by_weakening(name: str, bounds: Bounds) -> None:
    assert _weakened_verdict(PUBLISHED[name], bounds) != "proved"


@pytest.mark.parametrize("name", sorted(MUTANTS) + ["same-value"])
def test_mutants_never_proved_by_weakening(name: str) -> None:
    protocol, bounds = (same_value_mutant(), Bounds(2, 1, 1, 1)) if name == "same-value" else (
        _mutant(name), MUTANTS[name][0])
    assert _weakened_verdict(protocol, bounds) != "proved"


# slow: reliable since 4 Dec evening (its query of no_stale_translation at ack_ipi was decided in 0.04 s or
# not in 20 s depending on the seed and the process's earlier Z3 work; each obligation now has its own
# context and short tries first: PROVE.md, "4 Dec, evening: parametric reliability"; 3 of 3 alone, 23 s,
# and passed inside tests/checks/symbolic), but it took 62 s there at load 5.6: too long for the suite
@pytest.mark.slow
def test_parametric_proves_lazy_tlb_ipi_with_the_weakened_lemma() -> None:
    """For every N, V, F at Q=1, S=2: the short bounded proof's lemmas, proved over uninterpreted sorts."""
    from deferral.checks.symbolic import parametric

    protocol = load_variant_file(EXAMPLES / "lazy_tlb_ipi.py")
    lemmas, why = weaken.bounded_proof(protocol, Bounds(3, 2, 2, 1, 2), [ACKED], timeout=60)
    assert any(weaken.is_weakened(x) for x in lemmas), why
    res = parametric.prove_candidates(protocol, {"queue": 1, "spaces": 2}, shipped=False, extra=lemmas,
                                      timeout=20, houdini_s=60)
    assert res.status == "proved", res.reason
    assert res.open_bounds == ["vcpus", "pages", "frames"]


@pytest.mark.parametrize("name", ["overflow-drop", "same-value"])
def test_bugs_never_proved_for_every_n_by_weakening(name: str) -> None:
    """--parametric's weakening (cli/prove.py): no bounded proof (overflow-drop holds at one page, where
    the weakenings are sampled, but no weakening of what it breaks holds there; same-value's sample
    violates the property), or its lemmas are not proved over uninterpreted sorts."""
    from deferral.checks.symbolic import parametric
    from deferral.cli.prove import _too_weak_at

    protocol = PUBLISHED[name] if name != "same-value" else same_value_mutant()
    bounds = Bounds(2, 1, 1, 1)
    dropped = _too_weak_at(protocol, bounds)
    assert dropped  # the shipped lemmas are too weak for a bug
    lemmas, why = weaken.bounded_proof(protocol, Bounds(3, 2, 2, 1), dropped, timeout=30)
    assert bool(lemmas) != bool(why)
    if lemmas:
        res = parametric.prove_candidates(protocol, {"queue": 1}, shipped=False, extra=lemmas, timeout=5,
                                          houdini_s=10)
        assert res.status != "proved"
