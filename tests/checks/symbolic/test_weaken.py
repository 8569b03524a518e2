"""Lemma repair (checks/symbolic/weaken.py): a dropped shipped lemma weakened from reachable states proves a
safe change, and a buggy one is never proved by it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from deferral.checks.symbolic import strengthen, weaken
from deferral.checks.terms.encoding import encode
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
    assert not weaken.truth_table(protocol, TWO, rows, [acked.fn], acked.params).all()  # L fails: D is needed
    found = weaken.weakenings(protocol, acked, [(TWO, rows)], assume=[x for x in lemmas if x is not acked])
    assert found
    table = weaken.truth_table(protocol, TWO, rows, [x.fn for x in found], acked.params)
    assert table.all()  # true in every sampled state, for every parameter assignment
    assert all(weaken.is_weakened(x) and x.params == acked.params for x in found)


def test_ds_searched_on_a_few_failing_states_hold_in_all_of_them(monkeypatch: pytest.MonkeyPatch) -> None:
    """D searched on 50 of the states where L fails (of thousands): every D offered is still true
    wherever L fails in the whole sample (checked there; the states a D misses join the search)."""
    protocol = load_variant_file(EXAMPLES / "lazy_tlb_ipi.py")
    lemmas = invariant_for(TWO)
    rows = weaken.sample_rows(protocol, TWO, cap=200_000)
    acked = next(x for x in lemmas if x.name == ACKED)
    assert (~weaken.truth_table(protocol, TWO, rows, [acked.fn], acked.params)[0]).sum() > 1000
    monkeypatch.setattr(weaken, "BAD_CAP", 50)
    found = weaken.weakenings(protocol, acked, [(TWO, rows)], assume=[x for x in lemmas if x is not acked])
    assert found
    assert weaken.truth_table(protocol, TWO, rows, [x.fn for x in found], acked.params).all()


def test_a_proof_above_the_sample_is_shortened_at_the_samples_bounds_first() -> None:
    """At bounds above the sample's, Houdini there gets the shipped lemmas and the weakened lemmas a
    proof at the sample's bounds needs (not all of them); the route and the proof are the same kind."""
    at = Bounds(3, 2, 2, 1)
    res = prove(load_variant_file(EXAMPLES / "lazy_cur_clear.py"), at, timeout=60)
    assert (res.status, res.route) == ("proved", "shipped-lemmas+weakened+houdini+induction"), res.reason
    short = [s for s in res.stages if s["method"] == "houdini+induction+trim"]
    assert short and short[0]["bounds"] == weaken.sample_at(at).as_dict() and short[0]["result"] == "proved"
    weak = [s for s in res.stages if s["route"] == "weakened"][0]
    assert short[0]["families_kept"] < weak["families_kept"]  # fewer offered at the requested bounds
    assert any(") or " in x for x in res.invariant)


def test_literals_use_the_protocols_vocabulary_only() -> None:
    protocol = load_variant_file(EXAMPLES / "lazy_tlb_ipi.py")
    acked = next(x for x in invariant_for(TWO) if x.name == ACKED)
    texts = {x.text for x in weaken.literals(protocol, acked.params, TWO)}
    assert {"cr3[k] != sp[i]", "req[k][sp[i]][pg[i]]", "pc[i] = SdWait",
            "tlb[k][pg[i]] in {0, gpt[sp[i]][pg[i]]}"} <= texts
    assert "i = k" not in texts  # two parameters: the instance says whether they are equal


def _weakened_verdict(protocol: Protocol, bounds: Bounds) -> str:
    """Houdini over the shipped lemmas, the dropped ones weakened, Houdini and induction again; where
    that does not prove it, the strengthening round too (every new family true in the sample offered
    at ``bounds``, not only the support auto offers: no subset may prove a bug either)."""
    enc = encode(protocol, bounds)
    lemmas = invariant_for(bounds)
    _, hlog = houdini(enc, lemmas)
    rep = weaken.repair(protocol, bounds, lemmas, weaken.dropped_names(hlog), timeout=30)
    alive, _ = houdini(enc, list(lemmas) + rep.candidates)
    status = check_inductive(enc, alive, inductive=True).status
    if status == "proved" or rep.violated or not rep.holding:
        return status
    st = strengthen.joint(protocol, rep, lemmas, deadline=time.monotonic() + 60)
    assert st.families or st.why
    alive, _ = houdini(enc, list(lemmas) + rep.candidates + st.families + st.offered)
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
    """--parametric's weakening (checks/symbolic/parametric_routes.py): no bounded proof (overflow-drop holds at one page, where
    the weakenings are sampled, but no weakening of what it breaks holds there; same-value's sample
    violates the property), or its lemmas are not proved over uninterpreted sorts."""
    from deferral.checks.symbolic import parametric
    from deferral.checks.symbolic.parametric_routes import too_weak_at

    protocol = PUBLISHED[name] if name != "same-value" else same_value_mutant()
    bounds = Bounds(2, 1, 1, 1)
    dropped = too_weak_at(protocol, bounds)
    assert dropped  # the shipped lemmas are too weak for a bug
    lemmas, why = weaken.bounded_proof(protocol, Bounds(3, 2, 2, 1), dropped, timeout=30)
    assert bool(lemmas) != bool(why)
    if lemmas:
        res = parametric.prove_candidates(protocol, {"queue": 1}, shipped=False, extra=lemmas, timeout=5,
                                          houdini_s=10)
        assert res.status != "proved"


MASK = "mask_before_send.py"


def test_auto_proves_mask_before_send_with_new_families() -> None:
    """Three shipped lemmas broken, two of them still true in every reachable state: no weakening
    proves it; the strengthening round's new families do ("pc[i] = Sd implies waiting[i][k], or
    i = k": the wait marks are set when the shootdown starts)."""
    res = prove(load_variant_file(EXAMPLES / MASK), Bounds(2, 1, 1, 1), timeout=60)
    assert (res.status, res.route) == ("proved", "shipped-lemmas+weakened+strengthened+houdini+induction"), res.reason
    new = [x for x in res.invariant if x.startswith(strengthen.PREFIX)]
    assert any("Sd" in x and "waiting" in x and ("k = i" in x or "i = k" in x) for x in new), new
    assert [row["route"] for row in res.stages][-2:] == ["strengthened", "shipped-lemmas+weakened+strengthened"]


def test_new_families_hold_in_every_sampled_state_and_are_not_valid() -> None:
    protocol = load_variant_file(EXAMPLES / MASK)
    at = Bounds(2, 1, 1, 1)
    rows = weaken.sample_rows(protocol, at)
    pending = next(x for x in invariant_for(at) if x.name == "ipi[k][i] pending implies waiting[i][k]")
    found, enumerated = strengthen.families(protocol, pending.params, [(at, rows)])
    assert found and enumerated >= len(found)
    table = weaken.truth_table(protocol, at, rows, [x.fn for x in found], pending.params)
    assert table.all()  # true in every sampled state, for every parameter assignment
    valid = strengthen._Valid(protocol, at)
    assert not any(valid(x) for x in found if " or " in x.name)  # no disjunction true in every state
    assert all(strengthen.is_new(x) and not weaken.is_weakened(x) and x.params == pending.params for x in found)
    texts = {x.text for x in strengthen.vocabulary(protocol, pending.params, at)}
    assert {"k = i", "k != i", "pc[i] = Sd", "waiting[i][k]"} <= texts


def _unscreened_cases() -> list[Any]:
    """Every bug and mutant; those at two address spaces (10-15 s each) are slow."""
    cases = BUGS + [(n, None) for n in sorted(MUTANTS) + ["same-value"]]
    two = {n for n, b in cases if b is not None and b["spaces"] > 1} | {
        n for n in MUTANTS if MUTANTS[n][0]["spaces"] > 1}
    return [pytest.param(n, b, id=n, marks=[pytest.mark.slow] if n in two else []) for n, b in cases]


@pytest.mark.parametrize("name,bounds", _unscreened_cases())
def test_bugs_never_proved_by_new_families_even_unscreened(name: str, bounds: Bounds | None) -> None:
    """The strengthening round without the screen that stops the route where the sample violates the
    property (so every bug and mutant reaches it): every new family true in the sample (at the
    sample's bounds, where most of them show), with the weakened lemmas, never proves a bug."""
    if bounds is None:
        protocol, bounds = (same_value_mutant(), Bounds(2, 1, 1, 1)) if name == "same-value" else (
            _mutant(name), MUTANTS[name][0])
    else:
        protocol = PUBLISHED[name]
    enc = encode(protocol, bounds)
    lemmas = invariant_for(bounds)
    _, hlog = houdini(enc, lemmas)
    dropped = weaken.dropped_names(hlog)
    at = weaken.sample_at(bounds)
    rows = weaken.sample_rows(protocol, at)
    gone = [x for x in lemmas if x.name in set(dropped)]
    rep = weaken.Repair([], {}, at, int(rows.shape[0]), 0.0, rows=rows,
                        holding=[x.name for x in gone if weaken.truth_table(protocol, at, rows, [x.fn], x.params).all()]
                        or [x.name for x in gone])
    st = strengthen.joint(protocol, rep, lemmas, deadline=time.monotonic() + 30)
    alive, _ = houdini(enc, list(lemmas) + st.families + st.offered)
    assert check_inductive(enc, alive, inductive=True).status != "proved"


@pytest.mark.slow
def test_parametric_proves_mask_before_send_with_new_families() -> None:
    """For every N, V, F at Q=1: the bounded proof's shipped, weakened and new lemmas over uninterpreted sorts."""
    from deferral.checks.symbolic import parametric
    from deferral.checks.symbolic.parametric_routes import too_weak_at

    protocol = load_variant_file(EXAMPLES / MASK)
    dropped = too_weak_at(protocol, Bounds(2, 1, 1, 1))
    lemmas, why = weaken.bounded_proof(protocol, Bounds(3, 2, 2, 1), dropped, timeout=60)
    assert any(strengthen.is_new(x) for x in lemmas), why
    res = parametric.prove_candidates(protocol, {"queue": 1}, shipped=False, extra=lemmas, timeout=20, houdini_s=60)
    assert res.status == "proved", res.reason
    assert res.open_bounds == ["vcpus", "pages", "frames"]
