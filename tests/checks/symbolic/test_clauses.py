"""Families enumerated over every declared sort (checks/symbolic/clauses.py): they prove the reference
with no hand-written lemma, bounded and for every N, V, F, and never prove a bug."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from deferral.checks.symbolic import clauses
from deferral.checks.terms.encoding import encode
from deferral.checks.symbolic.induction import check_inductive, houdini
from deferral.checks.symbolic.infer import property_lemmas
from deferral.checks.symbolic.prove import prove
from deferral.checks.symbolic.vocabulary import sample_rows, truth_table
from deferral.model import PUBLISHED, REFERENCE, Bounds
from deferral.model.invariant import INVARIANT, Lemma
from deferral.model.schema import VCPU
from deferral.model.variants import load_variant_file

from tests.checks.symbolic.test_examples_safe import MUTANTS, _mutant

EXAMPLES = Path(__file__).parents[3] / "examples"
SMALL = Bounds(2, 1, 1, 1)


def test_signatures_and_vocabulary_come_from_the_declared_sorts() -> None:
    sigs = clauses.signatures(REFERENCE, SMALL)
    names = [tuple(n for n, _ in sig) for sig in sigs]
    assert names == [("t", "i"), ("t", "i", "k"), ("t", "p", "i")]  # the space (elided) in each, two VCPUs at most
    texts = {x.text for x in clauses.vocabulary(REFERENCE, sigs[2], SMALL)}
    assert {"queue[lw[t][p]] holds p", "cur[i] is none", "i = lw[t][p]", "pc[i] = Sd", "req[i][t][p]",
            "shadow[i][t][p] in {0, gpt[t][p]}"} <= texts
    two = clauses.signatures(REFERENCE, Bounds(2, 1, 1, 1, 2))
    two_names = [tuple(n for n, _ in sig) for sig in two]
    assert set(names) <= set(two_names)  # a space variable whatever the number of spaces
    assert {("i",), ("i", "k"), ("p", "i")} <= set(two_names)  # and at two spaces also without it
    texts = {x.text for x in clauses.vocabulary(REFERENCE, two[two_names.index(("t", "p", "i"))], Bounds(2, 1, 1, 1, 2))}
    assert "queue[lw[t][p]] holds (t, p)" in texts and "t = cr3[i]" in texts
    texts = {x.text for x in clauses.vocabulary(REFERENCE, two[two_names.index(("i", "k"))], Bounds(2, 1, 1, 1, 2))}
    assert {"waiting[i][k]", "req[k][sp[i]][pg[i]]", "shadow[i][cr3[i]][pg[k]] in {0, gpt[cr3[i]][pg[k]]}"} <= texts


def test_the_pool_has_every_declared_variables_literals() -> None:
    """At two spaces (i, k) has more literals than the pool takes: each variable's literals are in it
    (the most balanced alone left out every ipi and waiting literal, and the acked fact with them)."""
    b = Bounds(2, 1, 1, 1, 2)
    sig = clauses.Signature(REFERENCE, (("i", VCPU), ("k", VCPU)), [(b, sample_rows(REFERENCE, b, cap=20_000))])
    assert len(sig.keep) > clauses.POOL and len(sig.pool) == clauses.POOL
    pooled = {sig.lits[sig.keep[j]].text for j in sig.pool}
    assert {"waiting[i][k]", "not waiting[i][k]", "ipi[k][i]", "not covers[i]", "req[k][sp[i]][pg[i]]"} <= pooled
    assert clauses.head("not waiting[i][k]") == "waiting" and clauses.head("pc[i] = Sd") == "pc"


def test_families_hold_in_every_sampled_state() -> None:
    rows = sample_rows(REFERENCE, SMALL)
    found = clauses.enumerate_all(REFERENCE, [(SMALL, rows)])
    assert found.families and sum(found.per_signature.values()) == len(found.families)
    by_params: dict[tuple[str, ...], list] = {}
    for lem in found.families:
        assert lem.name.startswith("for all ")
        by_params.setdefault(tuple(n for n, _ in lem.params), []).append(lem)
    for lems in by_params.values():
        assert truth_table(REFERENCE, SMALL, rows, [x.fn for x in lems], lems[0].params).all()


def test_auto_proves_the_reference_without_the_shipped_lemmas() -> None:
    """No hand-written lemma: the enumerated families, Houdini and induction at 2,1,1,1."""
    res = prove(REFERENCE, SMALL, timeout=60, shipped=False)
    assert (res.status, res.route) == ("proved", "enumerated+houdini+induction"), res.reason
    shipped = {lem.name for lem in INVARIANT[:-1]}
    assert not shipped & set(res.invariant) and all(x.startswith("for all ") or x == "no_stale_translation"
                                                     for x in res.invariant)
    assert [row["route"] for row in res.stages][:2] == ["explicit", "enumerated"]
    assert res.learned_at[0] == SMALL and all(b["spaces"] == 1 for b in res.learned_at)  # and larger instances
    # the learning stops before the requested bounds where Houdini and induction there prove what it needed:
    # one learning stage (at 2,1,1,1), then the Houdini that decides (PROVE.md, 6 Dec, s6)
    rows = [(row["method"], row["bounds"]) for row in res.stages if row["route"] == "enumerated"
            and row["method"] != "sample"]
    assert rows == [("houdini+cti", SMALL.as_dict()), ("houdini+induction", SMALL.as_dict())]


def test_families_inductive_for_every_n_v_f_are_proved_so() -> None:
    """clauses_prove._for_every: families inductive for every N, V, F (here the reference's shipped lemmas)
    are proved so at the bounds' Q and S, with a "check" row and the claim (what was open, what concrete)."""
    from deferral.checks.symbolic.clauses_prove import Outcome, _for_every
    from deferral.model.invariant import invariant_for

    out = Outcome("unknown")
    done = _for_every(REFERENCE, SMALL, list(invariant_for(SMALL)), time.monotonic() + 60, out, None)
    assert done is not None and done[1].status == "proved", out.why
    assert {lem.name for lem in done[0]} == {lem.name for lem in invariant_for(SMALL)}
    assert out.for_every is not None and out.for_every["for_every"] == ["vcpus", "pages", "frames"]
    assert out.for_every["assumed_concrete"] == {"queue": 1, "spaces": 1}
    assert out.for_every["verdict"].startswith("proved for every number of vcpus, pages, frames")
    assert (out.rows[-1]["method"], out.rows[-1]["result"]) == ("parametric-houdini+induction", "proved")


@pytest.mark.slow  # 20-40 s
def test_at_large_bounds_the_families_go_for_every_n_v_f_first_and_the_bounded_check_is_the_fallback(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the requested bounds have many step instances (forced here at 2,1,1,1 by lowering the threshold;
    the learning in this process, where the patch holds), the learned families go to Houdini and the proof
    over uninterpreted sorts first: proved there, the route and ``proved_for_every`` say so; not proved (the
    families learned at 2,1,1,1 alone seldom are inductive for every N), Houdini and induction at the
    requested bounds prove it, and nothing is claimed beyond them."""
    from deferral.checks.symbolic import clauses_prove

    monkeypatch.setattr(clauses_prove, "FOR_EVERY_FIRST_ACTIONS", 0)
    res = prove(REFERENCE, SMALL, timeout=60, shipped=False, learners=0)
    checks = [(row["method"], row["result"]) for row in res.stages
              if row["route"] == "enumerated" and row["method"] not in ("sample", "houdini+cti")]
    assert checks[0][0] == "parametric-houdini+induction", checks
    if checks[0][1] == "proved":
        assert (res.status, res.route) == ("proved", "enumerated+parametric-houdini+induction")
        assert res.for_every is not None and res.for_every["for_every"] == ["vcpus", "pages", "frames"]
    else:
        assert checks[1:] == [("houdini+induction", "proved")]
        assert (res.status, res.route, res.for_every) == ("proved", "enumerated+houdini+induction", None)


def test_at_large_bounds_every_second_learner_tries_for_every_n_v_f_first() -> None:
    """clauses_prove: the largest bounds are past the threshold, the smallest not; a lone learner tries for every
    N, V, F first, and of two the second (by rank), while the first runs Houdini at the requested bounds first."""
    from types import SimpleNamespace

    from deferral.checks.symbolic.clauses_prove import FOR_EVERY_FIRST_ACTIONS, for_every_first
    from deferral.model.concrete import Model

    large = Bounds.from_dict({"vcpus": 6, "pages": 3, "frames": 3, "queue": 3, "spaces": 3}, REFERENCE.bound_decls)
    assert len(Model(REFERENCE, large).actions) >= FOR_EVERY_FIRST_ACTIONS > len(Model(REFERENCE, SMALL).actions)
    assert for_every_first(REFERENCE, large, None)
    assert [for_every_first(REFERENCE, large, SimpleNamespace(rank=k, count=2)) for k in (0, 1)] == [False, True]  # type: ignore[arg-type]


def test_the_check_for_every_n_v_f_first_gets_at_least_its_minimum() -> None:
    """clauses_prove.first_check_s: the first way's share of the time left; the check for every N, V, F, where it comes
    first, at least FOR_EVERY_FIRST_MIN_S of it (all of it where less is left); Houdini at the bounds the share alone."""
    from deferral.checks.symbolic.clauses_prove import FIRST_CHECK_SHARE, FOR_EVERY_FIRST_MIN_S, first_check_s

    least = FOR_EVERY_FIRST_MIN_S
    assert first_check_s(12.0, False) == pytest.approx(FIRST_CHECK_SHARE * 12.0)
    assert first_check_s(12.0, True) == (12.0 if least >= 12.0 else least)
    assert first_check_s(2 * least, True) == pytest.approx(max(least, FIRST_CHECK_SHARE * 2 * least))
    assert first_check_s(100 * least, True) == pytest.approx(FIRST_CHECK_SHARE * 100 * least)
    assert first_check_s(0.0, True) == 0.0


def test_a_bug_is_not_proved_for_every_n_v_f() -> None:
    """A published bug (remote-no-drain, violated at 2,1,1,1) with the shipped lemmas as families: _for_every
    answers None, with its reason (the step the bug changed) and a row, and claims nothing."""
    from deferral.checks.symbolic.clauses_prove import Outcome, _for_every
    from deferral.model.invariant import invariant_for

    out = Outcome("unknown")
    # every shipped lemma but one: with all 13 Z3 did not decide ack_ipi's query for every N in 17 s
    families = [lem for lem in invariant_for(SMALL) if lem.name != "ipi[k][i] pending implies waiting[i][k]"]
    assert len(families) == 12
    assert _for_every(PUBLISHED["remote-no-drain"], SMALL, families, time.monotonic() + 60, out, None) is None
    assert out.for_every is None and out.why and out.why[-1][0] == "enumerated+parametric-houdini+induction"
    assert "not preserved by ack_ipi(k)" in out.why[-1][1]
    assert out.rows[-1]["method"] == "parametric-houdini+induction" and out.rows[-1]["result"] != "proved"


def test_with_the_learned_bounds_a_bug_is_refused_for_every_n_by_the_queries_mbqi_left_undecided() -> None:
    """clauses_prove._for_every with the bounds the families were learned at: remote-no-drain with all 13 shipped
    lemmas, whose ack_ipi query Z3 did not decide with every lemma assumed (17-18 s to a verdict without the bounds),
    is refused with the step named: the query asked again assuming the lemmas of its unsat core there. Claims
    nothing, and a bounded instance alone never refuses it (a row, the reason)."""
    from deferral.checks.symbolic.clauses_prove import Outcome, _for_every
    from deferral.model.invariant import invariant_for

    out = Outcome("unknown")
    done = _for_every(PUBLISHED["remote-no-drain"], SMALL, list(invariant_for(SMALL)), time.monotonic() + 60, out,
                      None, learned_at=SMALL)
    assert done is None and out.for_every is None
    assert out.why[-1] == ("enumerated+parametric-houdini+induction",
                           "not inductive for every N, V, F: property no_stale_translation (not preserved by ack_ipi(k))")
    assert out.rows[-1]["method"] == "parametric-houdini+induction" and out.rows[-1]["result"] == "unknown"


def test_with_the_learned_bounds_families_inductive_for_every_n_are_still_proved_so() -> None:
    """The same check for the reference's shipped lemmas, with their bounds: each query asked with every live
    family first (briefly), the bounded unsat core where that is undecided; proved, every family kept."""
    from deferral.checks.symbolic.clauses_prove import Outcome, _for_every
    from deferral.model.invariant import invariant_for

    out = Outcome("unknown")
    done = _for_every(REFERENCE, SMALL, list(invariant_for(SMALL)), time.monotonic() + 60, out, None, learned_at=SMALL)
    assert done is not None and done[1].status == "proved", out.why
    assert {lem.name for lem in done[0]} == {lem.name for lem in invariant_for(SMALL)}
    assert out.for_every is not None and out.for_every["assumed_concrete"] == {"queue": 1, "spaces": 1}


def test_the_learning_resumes_at_larger_bounds_from_what_its_last_stage_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    """clauses.resume: one more stage, from the families the last stage needed, its whole fixpoint kept;
    the stages and seconds added to those before."""
    starts: list[tuple[Bounds, list[str], bool]] = []
    fixpoint = [Lemma(f"alive {n}", (), lambda s: True) for n in range(3)]

    def fake(protocol, at, found, start=(), deadline=None, note=None, trim=True, enc=None):  # type: ignore[no-untyped-def]
        starts.append((at, [x.name for x in start], trim))
        return clauses.Stage(at, fixpoint, fixpoint[:1] if trim else fixpoint, 1, len(start), 1.0)

    monkeypatch.setattr(clauses, "learn_at", fake)
    larger = Bounds(3, 2, 2, 1)
    r = clauses.learn(REFERENCE, [(SMALL, "exhaustive")], [SMALL], trim_last=True)
    assert r.ok and [x.name for x in r.lemmas] == ["alive 0"] and r.found is not None
    more = clauses.resume(REFERENCE, r, larger)
    assert more.ok and starts[-1] == (larger, ["alive 0"], False)
    assert [x.name for x in more.lemmas] == [x.name for x in fixpoint]
    assert [st.at for st in more.stages] == [SMALL, larger] and len(more.seconds_by_part) == len(r.seconds_by_part) + 1


def _fake_learn_at(seen: list[tuple[Bounds, str, list[str], int]], by_seed: dict[str, list[str] | None],
                   otherwise: list[str], settles: Any) -> Any:
    """A stand-in for clauses.learn_at: at SMALL the fixpoint is ``by_seed``'s for Z3's seed (``otherwise`` where the seed
    is not there; None: not settled), elsewhere the stage settles (keeping what it was offered) where ``settles(at,
    names offered)``, else stops at its round limit; each call recorded in ``seen`` (bounds, seed, names, round limit)."""
    import z3

    def fake(protocol, at, found, start=(), deadline=None, note=None, trim=True, enc=None,  # type: ignore[no-untyped-def]
             max_rounds=clauses.MAX_ROUNDS):
        seed = z3.get_param("smt.random_seed")
        assert z3.get_param("sat.random_seed") == seed
        names = [x.name for x in start]
        seen.append((at, seed, names, max_rounds))
        if at != SMALL:
            if settles(at, names):
                return clauses.Stage(at, list(start), list(start), 1, len(start), 1.0)
            return clauses.Stage(at, [], None, max_rounds, len(start), 1.0, "round limit")
        got = by_seed.get(seed, otherwise)
        if got is None:
            return clauses.Stage(at, [], None, 1, len(start), 1.0, "round limit")
        alive = [Lemma(n, (), lambda s: True) for n in got]
        return clauses.Stage(at, alive, alive[:1], 1, len(start), 1.0)

    return fake


def test_a_stage_that_does_not_settle_from_the_first_stages_fixpoint_gets_another_draw_of_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """clauses.FIRST_DRAWS: the stage after a carried first stage starts from its fixpoint; where it has not
    settled after FALLBACK_ROUNDS rounds, the first stage is learned again under the next Z3 seed (an offset
    from the process's, restored after) and the stage starts again from the union of the fixpoints drawn; a
    draw that does not settle adds nothing and the next draw follows; a draw stops unsettled after
    max(DRAW_ROUNDS[0], DRAW_ROUNDS[1] x the first draw's rounds); the last draw's stage has no round limit."""
    import z3

    seen: list[tuple[Bounds, str, list[str], int]] = []
    larger, last = Bounds(3, 2, 2, 1), Bounds(4, 2, 2, 1)
    by_seed = {"7": ["a", "b"], "1007": None, "2007": ["c"]}
    # the larger stages settle once "c" is offered (the last one always); else they stop at their round limit
    fake = _fake_learn_at(seen, by_seed, ["a"], lambda at, names: "c" in names or at == last)

    monkeypatch.setattr(clauses, "learn_at", fake)
    monkeypatch.setattr(clauses, "FIRST_DRAWS", (0, 1000, 2000))
    monkeypatch.setattr(clauses, "FALLBACK_ROUNDS", 1)
    monkeypatch.setattr(clauses, "DRAW_ROUNDS", (3, 5))  # the first draw took 1 round: 5 for the others
    z3.set_param("smt.random_seed", 7)
    z3.set_param("sat.random_seed", 7)
    try:
        r = clauses.learn(REFERENCE, [(SMALL, "exhaustive")], [SMALL, larger, last])
        assert z3.get_param("smt.random_seed") == "7"  # restored
    finally:
        z3.set_param("smt.random_seed", 0)
        z3.set_param("sat.random_seed", 0)
    assert r.ok
    # the draw that did not settle adds nothing: the next draw follows at once (the stage would repeat its try)
    assert [(at, seed, limit) for at, seed, _, limit in seen] == [
        (SMALL, "7", clauses.MAX_ROUNDS), (larger, "7", 1), (SMALL, "1007", 5),
        (SMALL, "2007", 5), (larger, "7", clauses.MAX_ROUNDS), (last, "7", clauses.MAX_ROUNDS)]
    assert seen[1][2] == ["a", "b"] and seen[4][2] == ["a", "b", "c"]
    assert [row.get("z3_seed_offset", 0) for row in r.to_json()] == [0, 0, 1000, 2000, 0, 0]
    assert r.seconds_by_part[f"houdini and cores at {SMALL.short()}"] == 3.0
    # settled from the first stage's fixpoint: no other draw
    seen.clear()
    monkeypatch.setattr(clauses, "FIRST_DRAWS", (0, 1000))
    by_seed["0"] = ["c"]
    assert clauses.learn(REFERENCE, [(SMALL, "exhaustive")], [SMALL, larger]).ok
    assert [(at, seed) for at, seed, _, _ in seen] == [(SMALL, "0"), (larger, "0")]


class _FakePeers:
    """Peers that answer each receive from ``theirs`` (by tag) and record what was sent and asked."""

    def __init__(self, theirs: dict[str, list[str]], count: int = 1) -> None:
        self.theirs, self.sent, self.asked = theirs, [], []  # type: ignore[var-annotated]
        self.rank, self.count = 0, count

    def signatures(self, protocol, every, samples, tables, deadline, note):  # type: ignore[no-untyped-def]
        return [clauses.Signature(protocol, params, samples, tables) for params in every]  # all built here

    def send(self, tag, mine, note):  # type: ignore[no-untyped-def]
        self.sent.append((tag, [x.name for x in mine]))

    def receive(self, tag, until, found, note):  # type: ignore[no-untyped-def]
        assert until > time.monotonic() - 1
        self.asked.append(tag)
        return [Lemma(n, (), lambda s: True) for n in self.theirs.get(tag, [])]


def test_with_peers_each_fixpoint_is_exchanged_and_the_union_takes_theirs(monkeypatch: pytest.MonkeyPatch) -> None:
    """clauses.learn(peers=...): the first stage's fixpoint is sent to the other learners (tag FIRST_TAG); where the
    larger stage does not settle from it, the peers' first-stage fixpoints join it before any draw of this learner's;
    each draw's fixpoint (none where the draw did not settle) is sent and the peers' of that draw join the union. A
    first stage that did not settle sends none and goes on from the peers' alone; with nothing from them, the
    learning fails as before."""
    seen: list[tuple[Bounds, str, list[str], int]] = []
    larger = Bounds(3, 2, 2, 1)
    small_alive: dict[str, list[str] | None] = {"0": ["a", "b"], "1000": None}
    fake = _fake_learn_at(seen, small_alive, ["x"], lambda at, names: "d" in names)  # settles once "d" is offered

    monkeypatch.setattr(clauses, "learn_at", fake)
    monkeypatch.setattr(clauses, "FIRST_DRAWS", (0, 1000, 2000))
    peers = _FakePeers({clauses.FIRST_TAG: ["b", "c"], "draw 2000": ["d"]})
    r = clauses.learn(REFERENCE, [(SMALL, "exhaustive")], [SMALL, larger], peers=peers)
    assert r.ok and [x.name for x in r.lemmas] == ["a", "b", "c", "x", "d"]
    assert peers.sent == [(clauses.FIRST_TAG, ["a", "b"]), ("draw 1000", []), ("draw 2000", ["x"])]
    assert peers.asked == [clauses.FIRST_TAG, "draw 1000", "draw 2000"]
    # its own first; then with the peers' first stages; the draw under 1000 adds nothing (the next draw follows at
    # once); the draw under 2000 adds "x" (its own) and "d" (a peer's), and that stage has no round limit
    assert [names for at, _, names, _ in seen if at == larger] == [["a", "b"], ["a", "b", "c"], ["a", "b", "c", "x", "d"]]
    # this learner's first stage does not settle: it goes on from the peers' fixpoint alone
    seen.clear()
    small_alive["0"] = None
    peers = _FakePeers({clauses.FIRST_TAG: ["d"]})
    r = clauses.learn(REFERENCE, [(SMALL, "exhaustive")], [SMALL, larger], peers=peers)
    assert r.ok and peers.sent == [(clauses.FIRST_TAG, [])] and peers.asked == [clauses.FIRST_TAG]
    assert seen[-1][::2] == (larger, ["d"])
    # ... and nothing from them: it fails, as without peers
    r = clauses.learn(REFERENCE, [(SMALL, "exhaustive")], [SMALL, larger], peers=_FakePeers({}))
    assert not r.ok and r.why == "round limit"


@pytest.mark.slow  # 15-25 s each under load
@pytest.mark.parametrize("bounds", [Bounds(3, 2, 2, 2), Bounds(4, 3, 3, 3)], ids=["3,2,2,2", "4,3,3,3"])
def test_auto_proves_the_reference_without_the_shipped_lemmas_at_larger_bounds(bounds: Bounds) -> None:
    res = prove(REFERENCE, bounds, timeout=120, shipped=False)
    assert (res.status, res.route) == ("proved", "enumerated+houdini+induction"), res.reason


@pytest.mark.slow  # 15-40 s each under load
@pytest.mark.parametrize("name", ["reference", "wait-irqs-off", "mask_before_send.py"])
def test_parametric_proves_without_the_shipped_lemmas(name: str) -> None:
    from deferral.checks.symbolic.parametric_routes import prove_for_every

    protocol = load_variant_file(EXAMPLES / name) if name.endswith(".py") else PUBLISHED[name]
    res, why = prove_for_every(protocol, SMALL, limit=120, shipped=False)
    assert res.status == "proved", why
    assert "clauses.py" in res.lemma_source and res.open_bounds == ["vcpus", "pages", "frames"]
    assert not {lem.name for lem in INVARIANT[:-1]} & {lem.name for lem in res.lemmas}


def _never_proved(protocol, bounds: Bounds) -> None:  # type: ignore[no-untyped-def]
    """Every family enumerated from the bug's own samples (no screen: the samples may violate the
    property), and the clauses the learning loop adds, with Houdini and induction at ``bounds``: not proved."""
    conc = {d.name: bounds[d.name] for d in bounds.decls if d.name in ("queue", "spaces")}
    at = clauses.plan(protocol, conc, within=bounds)
    rows = [(b, sample_rows(protocol, b, cap=20_000)) for b, how in at if how == "exhaustive"]
    found = clauses.enumerate_all(protocol, rows)
    enc = encode(protocol, bounds)
    alive, _ = houdini(enc, found.families + property_lemmas(protocol))
    assert check_inductive(enc, alive, inductive=True).status != "proved"
    r = clauses.learn(protocol, at, clauses.stage_bounds(protocol, bounds), deadline=time.monotonic() + 20)
    if r.ok:
        alive, _ = houdini(enc, r.lemmas + property_lemmas(protocol))
        assert check_inductive(enc, alive, inductive=True).status != "proved"


#: each where the explicit search finds it violated (as in test_weaken.py); the first fast (12 s under load 6)
BUGS = [("drain-local-only", SMALL), ("overflow-drop", Bounds(2, 2, 1, 1)),
        ("ipi-before-drain", SMALL), ("remote-no-drain", SMALL), ("reload-no-drain", SMALL),
        ("defer-non-current", Bounds(2, 1, 1, 1, 2)), ("switch-no-drain", Bounds(2, 1, 1, 1, 2)),
        ("resync-running-only", Bounds(2, 1, 1, 1, 2))]


@pytest.mark.parametrize("name,bounds", [pytest.param(n, b, id=n, marks=[pytest.mark.slow] if k else [])
                                         for k, (n, b) in enumerate(BUGS)])
def test_published_bugs_never_proved_by_enumerated_families(name: str, bounds: Bounds) -> None:
    _never_proved(PUBLISHED[name], bounds)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_mutants_never_proved_by_enumerated_families(name: str) -> None:
    _never_proved(_mutant(name), MUTANTS[name][0])


def test_four_literal_families_rule_out_the_counterexample() -> None:
    """The acked fact needs four literals ("pc[i] = Sd or waiting[i][k] or not covers[i] or
    req[k][t][pg[i]]"): offered only where a counterexample to induction is false in it."""
    rows = sample_rows(REFERENCE, SMALL)
    sig = clauses.Signature(REFERENCE, clauses.signatures(REFERENCE, SMALL)[1], [(SMALL, rows)])
    layout = REFERENCE.layout(SMALL)
    state = list(rows[0])
    for (name, idx, part), slot in layout.where.items():  # i = 1 covers its write, sent, k = 0 acked, no req
        value = {("pc", (1,)): 4, ("covers", (1,)): 1, ("lw", (0, 0)): 1}.get((name, idx))
        if value is not None and part is None:
            state[slot] = value
    got = [lem.name for lem in sig.excluding(SMALL, state, limit=50)]
    assert any(x.count(" or ") == 3 and "not covers[i]" in x and "req[k][t][pg[i]]" in x for x in got), got


def _acked_counterexample(rows):  # type: ignore[no-untyped-def]
    """A state where i = 1 covers its write, has sent, k = 0 acked and has no request (not reachable)."""
    layout = REFERENCE.layout(SMALL)
    state = list(rows[0])
    for (name, idx, part), slot in layout.where.items():
        value = {("pc", (1,)): 4, ("covers", (1,)): 1, ("lw", (0, 0)): 1}.get((name, idx))
        if value is not None and part is None:
            state[slot] = value
    return state


def test_greedy_cover_finds_clauses_true_in_the_samples_and_false_in_the_counterexample() -> None:
    """Signature.covering: clauses of any length (up to MAX_COVER) from every literal, each true in
    every sampled state and false in the counterexample to induction, some longer than the enumerated ones."""
    rows = sample_rows(REFERENCE, SMALL)
    sig = clauses.Signature(REFERENCE, clauses.signatures(REFERENCE, SMALL)[1], [(SMALL, rows)])
    state = _acked_counterexample(rows)
    got = sig.covering(SMALL, state, alternatives=4)
    assert got and all(len(lem.texts) <= clauses.MAX_COVER for lem in got)
    table = truth_table(REFERENCE, SMALL, rows, [lem.fn for lem in got], sig.params)
    assert table.all()  # true in every sampled state, at every parameter assignment
    here = truth_table(REFERENCE, SMALL, np.array([state]), [lem.fn for lem in got], sig.params)
    assert (~here).any(axis=1).all()  # each false in the counterexample at some assignment
    assert any(len(lem.texts) > clauses.MAX_LITERALS for lem in got), [x.name for x in got]  # beyond the enumeration
    assert not {lem.name for lem in got} & {lem.name for lem in sig.covering(SMALL, state)}  # each offered once


def test_a_dropped_family_returns_only_where_a_new_family_rules_out_its_witness() -> None:
    """_Witnesses.next_round: a family Houdini dropped stays out while the pre-state of the step that
    broke it satisfies every family offered; a new family false there brings it back."""
    rows = sample_rows(REFERENCE, SMALL)
    sig = clauses.Signature(REFERENCE, clauses.signatures(REFERENCE, SMALL)[1], [(SMALL, rows)])
    fams = sig.families()
    state = _acked_counterexample(rows)
    new = sig.covering(SMALL, state)[:1]
    a, b, c = fams[:3]
    judge = clauses._Witnesses(clauses.Enumerated(fams + new, {}, 0.0, [sig]), SMALL)
    witness = {a.name: tuple(state), b.name: tuple(int(x) for x in rows[0])}  # c: no witness (always back)
    got = judge.next_round([a, b, c] + new, [], new, witness)
    assert [x.name for x in got] == [a.name, c.name] + [x.name for x in new]
    assert [x.name for x in judge.next_round([a, b, c], [], [], witness)] == [c.name]


def test_invariant_out_saves_the_families_and_lemmas_reads_them(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """--invariant-out after the enumerated route: each family by its variables and literals' texts
    (deferral-weakened/1); --lemmas rebuilds them from the vocabulary and proves with them alone."""
    import json

    from deferral.checks.symbolic import weaken_files
    from deferral.cli.main import main

    saved = tmp_path / "inv.json"
    one = ["--vcpus", "1"]  # the fast instance: the file round trip is what is tested here
    assert main(["prove", "--json", "--no-shipped-lemmas", "--timeout", "60", "--invariant-out", str(saved)] + one) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["route"] == "enumerated+houdini+induction"
    doc = json.loads(saved.read_text())
    assert doc["format"] == weaken_files.FORMAT and all("vars" in x and x["or"] for x in doc["lemmas"])
    back = weaken_files.load(doc, REFERENCE, Bounds(1, 1, 1, 1))
    assert [x.name for x in back] == [x for x in first["invariant"] if "property no_stale_translation" not in x]
    assert main(["prove", "--json", "--no-shipped-lemmas", "--lemmas", str(saved)] + one) == 0
    assert json.loads(capsys.readouterr().out)["route"] == "lemma-file+houdini+induction"
    doc["lemmas"][0]["or"] = ["nosuch[i]"]
    with pytest.raises(weaken_files.WeakenedFileError, match="not a literal"):
        weaken_files.load(doc, REFERENCE, SMALL)


def test_bounded_houdini_reuses_its_solver_and_answers_as_a_fresh_one() -> None:
    """Relevance.houdini keeps one solver across calls (a learner's rounds): a second call with
    other candidates answers as a fresh instance does, and a lemma it once dropped is judged anew."""
    from deferral.checks.symbolic.relevance import Relevance

    must = property_lemmas(REFERENCE)
    lemmas = [lem for lem in INVARIANT[:-1]]
    weak = [lem for lem in lemmas if "acked" not in lem.name]  # without the acked lemma: too weak
    rel = Relevance(REFERENCE, SMALL)
    alive, broke, state = rel.houdini(weak, must, None)
    assert broke is not None and state is not None
    again = rel.houdini(lemmas, must, None)
    fresh = Relevance(REFERENCE, SMALL).houdini(lemmas, must, None)
    assert again[1] is None and fresh[1] is None
    assert {x.name for x in again[0]} == {x.name for x in fresh[0]} == {x.name for x in lemmas}
    assert rel.houdini(weak, must, None)[1] is not None  # the switches of the first call's lemmas still work


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """Each row as one opaque value, for np.isin (a set of 1.2 million tuples took 7 s)."""
    rows = np.ascontiguousarray(rows)
    return rows.view(np.dtype((np.void, rows.dtype.itemsize * rows.shape[1]))).ravel()


def test_a_spread_sample_draws_from_every_level() -> None:
    """sample_rows(spread=...): cap states drawn at random from the first spread * cap (the whole
    instance here), not the first cap (the shallowest levels): a family true in the first levels and
    false deeper is not offered."""
    b = Bounds(2, 1, 1, 1, 2)
    first = sample_rows(REFERENCE, b, cap=2_000)
    spread = sample_rows(REFERENCE, b, cap=2_000, spread=1_000)
    every = sample_rows(REFERENCE, b, cap=10**7)
    assert first.shape == spread.shape == (2_000, every.shape[1]) and every.shape[0] > 100_000
    assert np.isin(_row_keys(spread), _row_keys(every)).all()  # reachable states, and the same draw each time
    assert np.array_equal(spread, sample_rows(REFERENCE, b, cap=2_000, spread=1_000))
    sig = clauses.Signature(REFERENCE, (("i", VCPU), ("k", VCPU)), [(b, first)])
    shallow = sig.families()
    table = truth_table(REFERENCE, b, every[::200], [lem.fn for lem in shallow], sig.params)
    assert not table.all(axis=1).all()  # some family of the first levels is false deeper
    deep = clauses.Signature(REFERENCE, (("i", VCPU), ("k", VCPU)), [(b, spread)]).families()
    assert len(deep) < len(shallow)


def test_diagrams_are_the_shortest_clauses_true_in_the_samples_and_false_in_the_counterexample() -> None:
    """Signature.diagrams: an exact smallest cover (Z3) by every kept literal, pooled or not: each
    clause holds in every sampled state and is false in the counterexample, none longer than the greedy
    cover's, and the same clause is not offered twice."""
    rows = sample_rows(REFERENCE, SMALL)
    sig = clauses.Signature(REFERENCE, clauses.signatures(REFERENCE, SMALL)[1], [(SMALL, rows)])
    state = _acked_counterexample(rows)
    got = sig.diagrams(SMALL, state, alternatives=6)
    assert got and all(len(lem.texts) <= clauses.MAX_COVER for lem in got)
    assert truth_table(REFERENCE, SMALL, rows, [lem.fn for lem in got], sig.params).all()
    here = truth_table(REFERENCE, SMALL, np.array([state]), [lem.fn for lem in got], sig.params)
    assert (~here).any(axis=1).all()
    greedy = clauses.Signature(REFERENCE, sig.params, [(SMALL, rows)]).covering(SMALL, state)
    assert min(len(lem.texts) for lem in got) <= min(len(lem.texts) for lem in greedy)
    assert any("req[k][t][pg[i]]" in lem.texts for lem in got), [x.name for x in got]  # the acked fact
    assert not {lem.name for lem in got} & {lem.name for lem in sig.diagrams(SMALL, state, alternatives=6)}


def test_diagrams_use_literals_the_pool_left_out() -> None:
    """At two spaces (i, k) has more kept literals than the pool: a counterexample whose only short
    clauses need a literal outside the pool still gets them from diagrams (not from the enumeration)."""
    b = Bounds(2, 1, 1, 1, 2)
    rows = sample_rows(REFERENCE, b, cap=20_000, spread=50)
    sig = clauses.Signature(REFERENCE, (("i", VCPU), ("k", VCPU)), [(b, rows)])
    outside = {sig.lits[sig.keep[j]].text for j in range(len(sig.keep)) if j not in set(sig.pool)}
    assert outside
    layout = REFERENCE.layout(b)
    found = []
    for row in rows[:200]:  # unreachable variants of sampled states: flip one boolean of waiting/ipi
        for (name, idx, part), slot in layout.where.items():
            if name in ("waiting", "ipi") and part is None:
                state = list(row)
                state[slot] = 1 - state[slot]
                found += sig.diagrams(b, state, alternatives=4)
        if any(set(lem.texts) & outside for lem in found):
            break
    assert any(set(lem.texts) & outside for lem in found), [x.name for x in found]
    assert truth_table(REFERENCE, b, rows, [lem.fn for lem in found], sig.params).all()


def test_a_family_of_a_smaller_signature_is_left_to_it() -> None:
    """At two spaces (t, i, k), (i, k) and (t, i) are signatures: a clause of the first that does not
    read t (or k) is the second's (the third's) family again, offered once."""
    b = Bounds(2, 1, 1, 1, 2)
    found = clauses.enumerate_all(REFERENCE, [(b, sample_rows(REFERENCE, b, cap=20_000))])
    sigs = {tuple(n for n, _ in s.params): s for s in found.signatures}
    assert sigs[("t", "i", "k")].spare == {"t", "k"} and sigs[("i", "k")].spare == {"k"}  # (t, i), (i) are there too
    tik = [lem for lem in found.families if lem.name.startswith("for all t, i, k:")]
    assert tik and all(re.search(r"\bt\b", " ".join(lem.texts)) and re.search(r"\bk\b", " ".join(lem.texts))
                       for lem in tik)
    texts = {lem.texts for lem in found.families if lem.name.startswith("for all i, k:")}
    assert not {lem.texts for lem in tik} & texts


def test_a_dropped_family_returns_only_to_rule_out_this_rounds_counterexamples() -> None:
    """_Witnesses.next_round with the round's counterexamples: a dropped family whose witness a new
    family rules out comes back only if it is false in one of them (it could rule that one out)."""
    rows = sample_rows(REFERENCE, SMALL)
    sig = clauses.Signature(REFERENCE, clauses.signatures(REFERENCE, SMALL)[1], [(SMALL, rows)])
    fams = sig.families()
    state = _acked_counterexample(rows)
    new = sig.covering(SMALL, state)[:1]
    truth = sig.truth_in(SMALL, [state])
    false_here = [f for f in fams if sig.false_in(f.name, truth)[0]]
    true_here = [f for f in fams if not sig.false_in(f.name, truth)[0]]
    assert false_here and true_here
    a, b = false_here[0], true_here[0]
    judge = clauses._Witnesses(clauses.Enumerated(fams + new, {}, 0.0, [sig]), SMALL)
    witness = {a.name: tuple(state), b.name: tuple(state)}
    assert [x.name for x in judge.next_round([a, b] + new, [], new, witness)] == [a.name, b.name] + [x.name for x in new]
    got = judge.next_round([a, b] + new, [], new, witness, ctis=[state])
    assert [x.name for x in got] == [a.name] + [x.name for x in new]


class _Stub:
    """A signature of ``width`` variables whose diagrams are ``made`` (for :func:`clauses._exclude`'s order)."""

    def __init__(self, width: int, made: list[str], calls: list[int]) -> None:
        self.params = tuple((f"x{n}", VCPU) for n in range(width))
        self.made, self.calls = made, calls

    def prime(self, b: Bounds, states: object) -> None:
        pass

    def falsified(self, b: Bounds, state: object) -> list[object]:
        return []

    def diagrams(self, b: Bounds, state: object, effort: object = None) -> list[object]:
        self.calls.append(len(self.params))
        return [Lemma(name, (), lambda s: True) for name in self.made]


@pytest.mark.parametrize("fewest_first", [True, False])
def test_a_counterexample_a_narrow_diagram_rules_out_gets_none_from_wider_signatures(
        monkeypatch: pytest.MonkeyPatch, fewest_first: bool) -> None:
    """_exclude: the signatures of fewest variables first; once one of them rules the state out, the wider
    ones (costlier: (t, i, k) was most of the diagrams' CPU at two spaces) are not searched for it; every
    signature of that width still is, and one that finds nothing lets the next width be searched."""
    monkeypatch.setattr(clauses, "FEWEST_FIRST", fewest_first)
    calls: list[int] = []
    sigs = [_Stub(1, [], calls), _Stub(2, ["a"], calls), _Stub(2, ["b"], calls), _Stub(3, ["c"], calls)]
    found = clauses.Enumerated([], {}, 0.0, sigs)  # type: ignore[arg-type]
    got = clauses._exclude(found, SMALL, [(0,)], set(), cap=clauses.Effort(10**12))
    assert [lem.name for lem in got] == (["a", "b"] if fewest_first else ["a", "b", "c"])
    assert calls == ([1, 2, 2] if fewest_first else [1, 2, 2, 3])
    calls.clear()
    sigs[1].made = sigs[2].made = []  # nothing of two variables: the widest is searched
    assert [lem.name for lem in clauses._exclude(found, SMALL, [(1,)], set(), cap=clauses.Effort(10**12))] == ["c"]
    assert calls == [1, 2, 2, 3]


def test_diagrams_find_clauses_as_short_as_before_with_the_most_constraining_columns_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The columns diagrams adds to its hitting-set problem (the most constraining of a window, or the
    first few as before) change how fast it finds a shortest clause, not how short: the same length either
    way, each true in the samples and false in the counterexample."""
    rows = sample_rows(REFERENCE, SMALL)
    params = clauses.signatures(REFERENCE, SMALL)[1]
    state = _acked_counterexample(rows)
    lengths = []
    for window, per in [(clauses.WINDOW, clauses.COLUMNS_PER_ASK), (16, 16)]:
        monkeypatch.setattr(clauses, "WINDOW", window)
        monkeypatch.setattr(clauses, "COLUMNS_PER_ASK", per)
        sig = clauses.Signature(REFERENCE, params, [(SMALL, rows)])
        got = sig.diagrams(SMALL, state, alternatives=4)
        assert got and truth_table(REFERENCE, SMALL, rows, [lem.fn for lem in got], params).all()
        here = truth_table(REFERENCE, SMALL, np.array([state]), [lem.fn for lem in got], params)
        assert (~here).any(axis=1).all()
        lengths.append(min(len(lem.texts) for lem in got))
    assert lengths[0] == lengths[1]


def test_bounded_houdini_answers_the_same_whatever_its_deadline() -> None:
    """Relevance.houdini's deadline interrupts Z3 (a timer), it is not a solver timeout set to the time
    left: Z3's models depended on that value (one learning loop took 9 or 24 rounds run to run). The
    same question in two fresh processes, with a near and a far deadline, gets the same counterexample;
    a deadline already past ends the query with "timeout"."""
    import subprocess
    import sys

    script = ("import sys, time\n"
              "from deferral.checks.symbolic.relevance import Relevance\n"
              "from deferral.checks.symbolic.infer import property_lemmas\n"
              "from deferral.model import REFERENCE, Bounds\n"
              "from deferral.model.invariant import INVARIANT\n"
              "weak = [x for x in INVARIANT[:-1] if 'acked' not in x.name]\n"
              "r = Relevance(REFERENCE, Bounds(2, 1, 1, 1, 2)).houdini(weak, property_lemmas(REFERENCE), "
              "time.monotonic() + float(sys.argv[1]), settle=True)\n"
              "print([x.name for x in r[0]], r[1], r[2])\n")
    runs = [subprocess.run([sys.executable, "-c", script, limit], capture_output=True, text=True, timeout=120)
            for limit in ("7.5", "3000")]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr[-500:] + runs[1].stderr[-500:]
    assert "property" in runs[0].stdout and runs[0].stdout == runs[1].stdout
    from deferral.checks.symbolic.relevance import Relevance

    must = property_lemmas(REFERENCE)
    weak = [lem for lem in INVARIANT[:-1] if "acked" not in lem.name]
    with pytest.raises(TimeoutError, match="timeout"):
        Relevance(REFERENCE, SMALL).houdini(weak, must, time.monotonic() - 1)


@pytest.mark.slow  # 15-25 s under load
def test_the_families_a_round_made_and_houdini_dropped_have_their_counterexamples_ruled_out() -> None:
    """At 2,1,1,1 with two address spaces the reference's learning loop took 72 rounds and did not
    settle in 90 s where the families a round made to rule out a counterexample were dropped by the next
    round's Houdini and the same counterexample came back; ruling out the pre-states of the steps that
    broke them too (clauses.SUPPORT) settles it in a few rounds (PROVE.md, 5 Dec, evening)."""
    at = Bounds(2, 1, 1, 1, 2)
    conc = {"queue": 1, "spaces": 2}
    r = clauses.learn(REFERENCE, clauses.plan(REFERENCE, conc, within=at), clauses.stage_bounds(REFERENCE, at),
                      deadline=time.monotonic() + 120)
    assert r.ok and r.stages[0].rounds <= 10


def test_the_first_stage_hands_its_whole_fixpoint_to_a_larger_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """clauses.learn: a stage at larger bounds than the first starts from the first stage's whole Houdini
    fixpoint (at 4,3,3,3,S=2 what the properties needed at 2,1,1,3,2 lost two families at 3,2,2,3,2 and that
    stage did not settle; PROVE.md, 5 Dec, evening); a stage at the same bounds, and every later one, from
    what the properties needed."""
    starts: list[tuple[Bounds, list[str]]] = []
    fixpoint = [Lemma(f"alive {n}", (), lambda s: True) for n in range(3)]

    def fake(protocol, at, found, start=(), deadline=None, note=None, trim=True, enc=None,  # type: ignore[no-untyped-def]
             max_rounds=clauses.MAX_ROUNDS):
        starts.append((at, [x.name for x in start]))
        return clauses.Stage(at, fixpoint, fixpoint[:1], 1, len(start), 0.0)

    monkeypatch.setattr(clauses, "learn_at", fake)
    larger = Bounds(3, 2, 2, 1)
    r = clauses.learn(REFERENCE, [(SMALL, "exhaustive")], [SMALL, SMALL, larger, Bounds(4, 3, 3, 1)])
    assert r.ok
    assert [at for at, _ in starts] == [SMALL, SMALL, larger, Bounds(4, 3, 3, 1)]
    assert starts[1][1] == ["alive 0"] and starts[2][1] == ["alive 0"] and starts[3][1] == ["alive 0"]
    starts.clear()
    clauses.learn(REFERENCE, [(SMALL, "exhaustive")], [SMALL, larger, Bounds(4, 3, 3, 1)])
    assert starts[1][1] == [x.name for x in fixpoint] and starts[2][1] == ["alive 0"]


#: The first learning stage at 2,1,1,1 (the reference, no deadline), in a fresh process (Z3's context
#: remembers the terms an earlier run made, and its models follow them); with "fast", the learner's clock
#: runs 1,000 times faster (what a machine 1,000 times slower would see).
_STAGE_SCRIPT = """
import sys, time
from deferral.checks.symbolic import clauses
from deferral.checks.symbolic.vocabulary import sample_rows
from deferral.model import REFERENCE, Bounds
class Fast:
    def __init__(self): self.start = time.monotonic()
    def monotonic(self): return self.start + 1000 * (time.monotonic() - self.start)
    def __getattr__(self, name): return getattr(time, name)
if sys.argv[1] == "fast":
    clauses.time = Fast()
at = Bounds(2, 1, 1, 1)
rows = sample_rows(REFERENCE, at, cap=20_000)
found = clauses.enumerate_all(REFERENCE, [(at, rows)])
start = [f for f in found.families if len(f.texts) <= clauses.FIRST_LITERALS]
st = clauses.learn_at(REFERENCE, at, found, start, deadline=None)
print(st.rounds, sorted(x.name for x in st.alive), st.needed is not None)
"""


def test_a_learning_round_takes_the_same_course_on_a_slower_machine() -> None:
    """The searches that rule out a counterexample to induction are cut by a count of work (clauses.Effort:
    literals tried, Z3's resource count), not by the clock: a 4 s cap made two runs of one learning loop
    part ways in their third round (PROVE.md, 5 Dec, night). With a clock 1,000 times faster the first
    stage at 2,1,1,1 makes the same families in the same rounds (with the 4 s cap: 7 rounds, not 5)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONHASHSEED": "0"}
    runs = [subprocess.run([sys.executable, "-c", _STAGE_SCRIPT, how], capture_output=True, text=True,
                           timeout=300, env=env) for how in ("plain", "fast")]
    assert all(run.returncode == 0 for run in runs), runs[0].stderr[-500:] + runs[1].stderr[-500:]
    rounds = int(runs[0].stdout.split()[0])
    assert rounds > 1 and runs[0].stdout.rstrip().endswith("True")  # rounds of new families, then settled
    assert runs[0].stdout == runs[1].stdout

def test_a_spent_effort_stops_the_search_for_four_literal_clauses() -> None:
    """Signature.excluding spends its Effort by the literals it tries: a spent one returns at once, a small
    one finds fewer clauses than a large one, and the same ones each time."""
    rows = sample_rows(REFERENCE, SMALL)
    sig = clauses.Signature(REFERENCE, clauses.signatures(REFERENCE, SMALL)[1], [(SMALL, rows)])
    state = _acked_counterexample(rows)

    def run(steps: int) -> list[str]:
        sig.shown.clear()
        return [lem.name for lem in sig.excluding(SMALL, state, limit=50, effort=clauses.Effort(steps))]

    assert run(0) == []
    full, small = run(10**12), run(2_000)
    assert len(small) < len(full) and small == run(2_000) and set(small) <= set(full)


def test_a_given_sample_is_taken_instead_of_searching_that_instance_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """clauses.learn: the states auto's explicit search kept of an instance it exhausted (``given``) are that
    instance's sample (at most its cap, drawn at random), not a second search; the encoding given for a
    stage's bounds is the one its Houdini uses."""
    from deferral.checks.symbolic import exhaust, vocabulary

    monkeypatch.setattr(clauses, "FIRST_CAP", 300)
    ex = exhaust.explore(REFERENCE, SMALL, 60, keep=800)
    assert ex.status == "holds" and ex.sample is not None and ex.sample.shape[0] == 800

    def no_search(*args, **kw):  # type: ignore[no-untyped-def]
        raise AssertionError("the given instance was searched again")

    monkeypatch.setattr(vocabulary, "sample_rows", no_search)
    used: list[object] = []
    real = clauses.learn_at

    def spy(protocol, at, found, start=(), deadline=None, note=None, trim=True, enc=None):  # type: ignore[no-untyped-def]
        used.append(enc)
        return real(protocol, at, found, start, deadline, note, trim, enc)

    monkeypatch.setattr(clauses, "learn_at", spy)
    enc = encode(REFERENCE, SMALL)
    # a deadline in 3 s: what is asserted is settled when the stage starts (the learning to its end took 11-27 s)
    r = clauses.learn(REFERENCE, [(SMALL, "exhaustive")], [SMALL], deadline=time.monotonic() + 3,
                      given={SMALL: ex.sample}, encodings={SMALL: enc})
    assert r.sampled == [(SMALL, "exhaustive", 300)] and used == [enc]
    rows = {tuple(int(v) for v in row) for row in ex.sample}
    assert len(rows) == ex.sample.shape[0]  # distinct states


def test_every_other_learner_learns_its_first_stage_at_the_second_stages_vcpus(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """clauses.first_stage: with the split on, odd ranks learn the first stage at 3,1,1 before 3,2,2 (from a
    2,1,1 fixpoint 3,2,2 often lacked facts about a third VCPU; PROVE.md, 7 Dec, morning), even ranks at 2,1,1;
    at the stages' own Q and S; where nothing lies between, or the split is off, at the first stage asked."""
    monkeypatch.setattr(clauses, "SPLIT_FIRST_STAGE", True)
    at = Bounds(4, 3, 3, 3).replace(spaces=3)
    sampled = [b for b, _ in clauses.plan(REFERENCE, {"queue": 3, "spaces": 3}, within=at)]
    stages = clauses.stage_bounds(REFERENCE, at)
    assert [b.short() for b in stages[:2]] == ["N=2,V=1,F=1,Q=3,S=2", "N=3,V=2,F=2,Q=3,S=2"]
    assert clauses.first_stage(REFERENCE, sampled, stages, 0) == stages[0]
    assert clauses.first_stage(REFERENCE, sampled, stages, 1).short() == "N=3,V=1,F=1,Q=3,S=2"
    assert clauses.first_stage(REFERENCE, sampled, stages, 3).short() == "N=3,V=1,F=1,Q=3,S=2"
    small = Bounds(2, 1, 1, 3).replace(spaces=2)
    assert clauses.first_stage(REFERENCE, sampled, [small, small], 1) == small
    monkeypatch.setattr(clauses, "SPLIT_FIRST_STAGE", False)
    assert clauses.first_stage(REFERENCE, sampled, stages, 1) == stages[0]


def test_a_learner_of_odd_rank_learns_its_first_stage_where_first_stage_says(monkeypatch: pytest.MonkeyPatch) -> None:
    """clauses.learn(peers=...), the split on: the first stage (and its draws) at clauses.first_stage's choice for
    the peers' rank; the next stages as asked."""
    monkeypatch.setattr(clauses, "SPLIT_FIRST_STAGE", True)
    seen: list[tuple[Bounds, str, list[str], int]] = []
    monkeypatch.setattr(clauses, "learn_at", _fake_learn_at(seen, {}, [], lambda at, names: True))
    peers = _FakePeers({})
    peers.rank = 1  # type: ignore[attr-defined]
    plan = [(Bounds(2, 1, 1, 1), "exhaustive"), (Bounds(3, 1, 1, 1), "exhaustive")]
    larger = Bounds(3, 2, 2, 1)
    assert clauses.learn(REFERENCE, plan, [Bounds(2, 1, 1, 1), larger], peers=peers).ok
    assert [at for at, _, _, _ in seen] == [Bounds(3, 1, 1, 1), larger]


@pytest.mark.parametrize("spaces", [1, 2, 3])
def test_the_stages_before_the_last_have_the_samples_spaces(spaces: int) -> None:
    """clauses.stage_bounds: the stages before the last at the requested Q and at most LEARN_SPACES spaces (the
    samples' own), the smallest sampled instance first and the largest next; the last stage the requested bounds."""
    at = Bounds(4, 3, 3, 3).replace(spaces=spaces)
    stages = clauses.stage_bounds(REFERENCE, at)
    learn_at = [Bounds(2, 1, 1, 3), Bounds(3, 2, 2, 3)]
    assert stages == [b.replace(spaces=min(spaces, clauses.LEARN_SPACES)) for b in learn_at] + [at]
    sampled = [b for b, _ in clauses.plan(REFERENCE, {"queue": 3, "spaces": spaces}, within=at)]
    assert set(stages[:-1]) <= set(sampled)


def test_the_ladder_is_the_instance_between_the_first_two_stages(monkeypatch: pytest.MonkeyPatch) -> None:
    """clauses.ladder: 3,1,1 between 2,1,1 and 3,2,2 (an odd rank's first stage); none where nothing lies between,
    or where LADDER is off."""
    at = Bounds(4, 3, 3, 3).replace(spaces=3)
    sampled = [b for b, _ in clauses.plan(REFERENCE, {"queue": 3, "spaces": 3}, within=at)]
    stages = clauses.stage_bounds(REFERENCE, at)
    assert clauses.ladder(REFERENCE, sampled, stages).short() == "N=3,V=1,F=1,Q=3,S=2"
    assert clauses.ladder(REFERENCE, sampled, [stages[0].replace(vcpus=3), stages[1]]) is None
    assert clauses.ladder(REFERENCE, sampled, stages[:1]) is None
    monkeypatch.setattr(clauses, "LADDER", False)
    assert clauses.ladder(REFERENCE, sampled, stages) is None


def test_where_the_next_stage_does_not_settle_the_first_learner_learns_at_the_ladder_first(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """clauses.learn(peers=...), rank 0 of two, the split on (its peer learns at 3,1,1): the stage at 3,2,2 does not
    settle from the 2,1,1 fixpoint; the learner learns at 3,1,1 from that fixpoint (as many rounds as the first
    stage took, at least LADDER_ROUNDS), takes the peers' first-stage fixpoints that came meanwhile (not waited
    for), and 3,2,2 starts again from both. A ladder that does not settle leaves the course as before: the peers'
    fixpoints, then the draws."""
    monkeypatch.setattr(clauses, "SPLIT_FIRST_STAGE", True)
    small, between, larger = Bounds(2, 1, 1, 1), Bounds(3, 1, 1, 1), Bounds(3, 2, 2, 1)
    seen: list[tuple[Bounds, list[str], int, bool]] = []
    ladder_makes: list[str] = ["m"]

    def fake(protocol, at, found, start=(), deadline=None, note=None, trim=True, enc=None,  # type: ignore[no-untyped-def]
             max_rounds=clauses.MAX_ROUNDS):
        names = [x.name for x in start]
        seen.append((at, names, max_rounds, trim))
        if at == small:
            alive = [Lemma(n, (), lambda s: True) for n in ("a", "b")]
            return clauses.Stage(at, alive, alive[:1], 1, 2, 1.0)
        if at == between:
            if not ladder_makes:
                return clauses.Stage(at, [], None, max_rounds, len(start), 1.0, "round limit")
            alive = list(start) + [Lemma(n, (), lambda s: True) for n in ladder_makes]
            return clauses.Stage(at, alive, alive, 3, len(alive), 1.0)
        if "m" in names or "d" in names:
            return clauses.Stage(at, list(start), list(start), 1, len(start), 1.0)
        return clauses.Stage(at, [], None, max_rounds, len(start), 1.0, "round limit")

    monkeypatch.setattr(clauses, "learn_at", fake)
    plan = [(small, "exhaustive"), (between, "exhaustive")]
    peers = _FakePeers({clauses.FIRST_TAG: ["c"]}, count=2)
    r = clauses.learn(REFERENCE, plan, [small, larger], peers=peers)
    assert r.ok and [x.name for x in r.lemmas] == ["a", "b", "m", "c"]
    cap = max(clauses.LADDER_ROUNDS, 1)  # the first stage took 1 round
    assert seen[0][0] == small  # the first stage, from the enumerated families
    assert [(at, names, limit) for at, names, limit, _ in seen[1:]] == [
        (larger, ["a", "b"], clauses.FALLBACK_ROUNDS), (between, ["a", "b"], cap),
        (larger, ["a", "b", "m", "c"], clauses.FALLBACK_ROUNDS)]
    assert seen[2][3] is False  # the ladder keeps its whole fixpoint
    assert peers.asked == [clauses.FIRST_TAG]
    # the ladder does not settle: the peers' fixpoints (waited for), then the draws, as before
    seen.clear()
    ladder_makes.clear()
    monkeypatch.setattr(clauses, "FIRST_DRAWS", (0, 1000))
    peers = _FakePeers({clauses.FIRST_TAG: ["c"], "draw 1000": ["d"]}, count=2)
    r = clauses.learn(REFERENCE, plan, [small, larger], peers=peers)
    assert r.ok and peers.asked == [clauses.FIRST_TAG, "draw 1000"]
    assert [at for at, _, _, _ in seen] == [small, larger, between, larger, small, larger]


def test_where_every_learner_learns_the_same_first_stage_the_ladder_starts_from_the_union(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """clauses.learn(peers=...), the split off (every learner at 2,1,1): where 3,2,2 does not settle from this
    learner's fixpoint, the peers' fixpoints are waited for and 3,2,2 tried from the union first; where that does not
    settle either, the ladder (3,1,1) starts from the union, and 3,2,2 again from the ladder's fixpoint. A peer's
    fixpoint that adds nothing: the ladder at once."""
    monkeypatch.setattr(clauses, "SPLIT_FIRST_STAGE", False)
    small, between, larger = Bounds(2, 1, 1, 1), Bounds(3, 1, 1, 1), Bounds(3, 2, 2, 1)
    seen: list[tuple[Bounds, list[str], int]] = []

    def fake(protocol, at, found, start=(), deadline=None, note=None, trim=True, enc=None,  # type: ignore[no-untyped-def]
             max_rounds=clauses.MAX_ROUNDS):
        names = [x.name for x in start]
        seen.append((at, names, max_rounds))
        if at == small:
            alive = [Lemma(n, (), lambda s: True) for n in ("a", "b")]
            return clauses.Stage(at, alive, alive[:1], 1, 2, 1.0)
        if at == between:
            alive = list(start) + [Lemma("m", (), lambda s: True)]
            return clauses.Stage(at, alive, alive, 3, len(alive), 1.0)
        if "m" in names:
            return clauses.Stage(at, list(start), list(start), 1, len(start), 1.0)
        return clauses.Stage(at, [], None, max_rounds, len(start), 1.0, "round limit")

    monkeypatch.setattr(clauses, "learn_at", fake)
    plan = [(small, "exhaustive"), (between, "exhaustive")]
    for theirs, after in ((["c"], [(larger, ["a", "b", "c"])]), (["a"], [])):
        seen.clear()
        peers = _FakePeers({clauses.FIRST_TAG: theirs}, count=2)
        r = clauses.learn(REFERENCE, plan, [small, larger], peers=peers)
        union = ["a", "b"] + [n for n in theirs if n not in ("a", "b")]
        assert r.ok and [x.name for x in r.lemmas] == union + ["m"]
        assert peers.asked == [clauses.FIRST_TAG]
        assert [(at, names) for at, names, _ in seen[1:]] == [(larger, ["a", "b"])] + after + [
            (between, union), (larger, union + ["m"])]
