"""A claim for every N, V, F is refuted by a small instance's shortest counterexample (parametric_refute.py).

Every published bug is refused by ``prove --parametric`` as violated (exit 1), at the first small
instance that has a counterexample, with the path the explicit search finds there (the same
length, searched independently here); a safe protocol is never refuted, and what was searched
without a counterexample is said in an unknown's reason, capped searches as such.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from deferral.checks.explicit.search import search
from deferral.checks.symbolic import parametric, parametric_refute as refute
from deferral.checks.symbolic.parametric_routes import prove_for_every
from deferral.cli.main import main
from deferral.model import PUBLISHED, REFERENCE, Bounds
from deferral.model.variants import load_variant_file

ROOT = Path(__file__).resolve().parents[3]
SPACE_BUGS = {"defer-non-current", "switch-no-drain", "resync-running-only"}
BUGS = sorted(set(PUBLISHED) - {"reference", "wait-irqs-off"})
#: States searched at most per instance here (as many as the first, quick search searches).
CAP = refute.FIRST_STATES


def at(name: str) -> Bounds:
    """Defaults (Q=1), at two spaces for the bugs that need another space."""
    return Bounds(2, 1, 1, 1).replace(spaces=2 if name in SPACE_BUGS else 1)


@pytest.mark.parametrize("name", BUGS)
def test_every_published_bug_is_refuted_with_the_shortest_counterexample(name: str) -> None:
    protocol = PUBLISHED[name]
    res, also = prove_for_every(protocol, at(name), limit=60)
    assert (res.status, res.exit_code, also) == ("violated", 1, ""), res.reason
    r = res.refutation
    assert not res.obligations and r.outcome.path is not None
    # the same instance searched on its own: violated, with a path of the same (shortest) length (a
    # search capped in states has done every level before its last: its path is the shortest too)
    alone = search(protocol, r.bounds, max_states=CAP).outcome(r.outcome.name)
    assert alone.status == "violated" and alone.length == r.length
    # and no instance earlier in SMALL violates it in as many states: the least instance is named
    index = refute.SMALL.index((r.bounds["vcpus"], r.bounds["pages"], r.bounds["frames"]))
    for i, b in refute.instances(at(name)):
        if i < index:
            assert not search(protocol, b, max_states=CAP).violated, b.short()
    assert r.bounds.short() in res.verdict and res.verdict.startswith("violated: not true for every number of")


def test_a_safe_protocol_is_never_refuted_and_the_searched_instances_are_named() -> None:
    done = refute.search_small(REFERENCE, Bounds(2, 1, 1, 1), 60, 5_000)
    assert done.refutation is None and len(done.searched) == len(refute.SMALL)
    exhausted = [s for s in done.searched if s.complete]
    capped = [s for s in done.searched if not s.complete]
    assert exhausted and capped  # 1,1,1 has 75 states, 3,2,1 far more than 5,000
    summary = done.summary()
    assert summary.startswith("no counterexample at N=1,V=1,F=1,Q=1, ")
    assert f"{capped[0].bounds.short()} (first {capped[0].states:,} states)" in summary
    assert done.next_index() == capped[0].index  # a later search starts at the first capped instance


def test_a_users_buggy_change_with_new_variables_and_steps_is_refuted(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """A change of the user's own (ack before the remote flush, the flush a later step, three new
    variables): exit 1 at once, the JSON names where, the trace replays to the same violation, the
    JUnit report has one failure."""
    variant = tmp_path / "ack_early.py"
    variant.write_text('''
from deferral.model import REFERENCE, VCPU
from deferral.model.protocol import step
from deferral.model.schema import BOOL, PAGE, SPACE, Var
from deferral.model.reference import PC

@step(("k", VCPU), guard=lambda s, k: (s.pc[k] == PC.Ipi) & s.queue[k].empty())
def ack_ipi(s, k):
    """Ack at once; flush the initiator's page later."""
    i = s.cur[k]
    s.late[k] = True
    s.lpg[k] = s.pg[i]
    s.lsp[k] = s.sp[i]
    s.proc.ack(k, i)

@step(("k", VCPU), guard=lambda s, k: s.late[k])
def late_flush(s, k):
    """The deferred remote flush."""
    with s.when(s.lsp[k] == s.cr3[k]):
        s.tlb[k][s.lpg[k]] = 0
    s.late[k] = False
    s.lpg[k] = 0
    s.lsp[k] = 0

VARIANT = REFERENCE.derive("ack-early", doc="ack before the remote flush", replace_steps=[ack_ipi],
    add_steps=[late_flush], add_variables=[Var("late", BOOL, (VCPU,), "owes a flush"),
    Var("lpg", PAGE, (VCPU,), "its page"), Var("lsp", SPACE, (VCPU,), "its space")])
''')
    trace, junit = tmp_path / "cex.trace", tmp_path / "r.xml"
    code = main(["prove", "--parametric", "--variant-file", str(variant), "--json", "--trace-out", str(trace),
                 "--junit", str(junit)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 1 and doc["status"] == "violated" and doc["refuted_at"] == {"vcpus": 2, "pages": 1, "frames": 1,
                                                                                "queue": 1}
    expected = search(load_variant_file(variant), Bounds(2, 1, 1, 1)).outcome("no_stale_translation")
    assert doc["depth"] == expected.length == len(doc["trace"]["steps"])
    assert main(["replay", "--variant-file", str(variant), str(trace)]) == 0  # violates, as it expects
    assert "violates no_stale_translation" in capsys.readouterr().out
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("1", "1")


def test_the_terminal_shows_the_counterexample(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["prove", "--parametric", "--variant", "reload-no-drain"]) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "explicit search at N=1,V=1,F=1,Q=1 finds a counterexample" in out
    assert "no_stale_translation violated: shortest counterexample, 5 steps" in out
    assert "violated: not true for every number of vcpus, pages, frames" in out


def test_an_unknown_says_where_no_counterexample_was_found(monkeypatch: pytest.MonkeyPatch) -> None:
    """The proof routes stood in for by an unknown one: the reason says which small instances were
    searched (exhaustively, or their first states) before giving up."""
    import deferral.checks.symbolic.parametric_routes as routes

    def unknown(protocol: Any, concrete: Any, **kw: Any) -> Any:
        return parametric.ParametricResult(protocol, {"queue": 1, "spaces": 1}, ["vcpus", "pages", "frames"], [],
                                           [parametric.Obligation("safety", "unknown", 0.1, "stood in for")], 0.1)

    monkeypatch.setattr(parametric, "prove_candidates", unknown)
    monkeypatch.setattr(routes, "_learned", lambda protocol, bounds, res, *a: (res, "learning stood in for"))
    monkeypatch.setattr(refute, "LAST_STATES", 5_000)
    res, also = prove_for_every(REFERENCE, Bounds(2, 1, 1, 1), limit=60, shipped=False)
    assert res.status == "unknown" and "learning stood in for" in also
    assert "no counterexample at N=1,V=1,F=1,Q=1, N=1,V=1,F=2,Q=1, N=2,V=1,F=1,Q=1" in also
    assert "(first 5,000 states)" in also


@pytest.mark.parametrize("name", ["same-value", "ipi_unlock_after_flush.py", "invlpg_sync_one.py",
                                  "defer_all_spaces.py"])
def test_the_mutants_check_finds_violated_are_refuted_at_the_same_length(name: str) -> None:
    """The buggy mutants of test_examples_safe (real optimizations with their safety check left out):
    refuted for every N, V, F, at the instance and with the length the explicit search gives there."""
    from test_examples_safe import MUTANTS, _mutant, same_value_mutant

    protocol, bounds = (same_value_mutant(), Bounds(2, 1, 1, 1)) if name == "same-value" else (
        _mutant(name), MUTANTS[name][0])
    res, _ = prove_for_every(protocol, bounds, limit=60)
    assert (res.status, res.exit_code) == ("violated", 1), res.reason
    r = res.refutation
    alone = search(protocol, r.bounds, max_states=CAP).outcome(r.outcome.name)
    assert alone.status == "violated" and alone.length == r.length
    if name in MUTANTS and r.bounds == bounds:
        assert r.length == MUTANTS[name][1]


def test_a_deep_counterexample_past_the_old_state_cap_is_found() -> None:
    """A user's tagged-TLB change (data/pcid_lazy_bug.py, qa3) is violated at 2,1,1,1,S=2 in 15 steps, after
    about 3 million states of the invariant-only search: the search after a failed proof, which stored
    at most 2,000,000 states and also ran the liveness pass, said "no counterexample ... (first 2,000,000
    states)" and the claim stayed unknown (prove --parametric --spaces 2, exit 3 after 58 s)."""
    protocol = load_variant_file(Path(__file__).parent / "data" / "pcid_lazy_bug.py")
    bounds = Bounds(2, 1, 1, 1).replace(spaces=2)
    start = refute.SMALL.index((2, 1, 1))
    done = refute.search_small(protocol, bounds, 60, refute.LAST_STATES, start=start)
    assert done.refutation is not None, done.summary()
    r = done.refutation
    assert r.bounds == bounds and r.outcome.name == "no_stale_translation" and r.length == 15


def test_a_bug_past_the_first_searchs_cap_is_refuted_before_learning(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bug that needs a second page (lazy_partial_bug: 11 steps at 2,2,1,2; the first search stops 2,2,1
    at its cap) is refuted by the second search, before any learning (it was found only by the search
    after the learning, at 136 s: PROVE.md, 6 Dec, morning); the shortest there, as the search finds it."""
    from deferral.checks.symbolic import parametric_routes

    def no_learning(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the learning ran")

    monkeypatch.setattr(parametric_routes, "_learned", no_learning)
    protocol = load_variant_file(ROOT / "tests/checks/symbolic/data/lazy_partial_bug.py")
    bounds = Bounds(2, 1, 1, 2)
    assert not search(protocol, Bounds(2, 2, 1, 2), max_states=refute.FIRST_STATES).violated  # past the first cap
    res, also = prove_for_every(protocol, bounds, limit=60, shipped=False)  # the shipped lemmas' try: 13 s more
    assert res.status == "violated" and also == "", res.status
    assert res.refutation.bounds == Bounds(2, 2, 1, 2) and res.refutation.length == 11


def test_rounds_find_a_shallow_bug_in_a_later_instance_before_searching_the_first_far() -> None:
    """search_rounds: overflow-drop at 2,1,2,2,S=2 (no violation in its first millions of states) and at
    1,2,1,2 (9 steps): the first round searches the first only FIRST states, then finds the second's shortest
    (search_small, in order, would have spent the whole total on the first)."""
    protocol = PUBLISHED["overflow-drop"]
    big, bug = Bounds(2, 1, 2, 2).replace(spaces=2), Bounds(1, 2, 1, 2)
    first = 20_000
    done = refute.search_rounds(protocol, [(4, big), (3, bug)], 60, first, 1_000_000, 1_000_000)
    assert done.refutation is not None and done.refutation.bounds == bug and done.refutation.length == 9
    assert [(s.bounds, s.states, s.complete) for s in done.searched] == [(big, first, False)]
    in_order = refute.search_small(protocol, big, 60, 1_000_000, pick=lambda b: b in (big, bug), within=True,
                                   total_states=1_000_000)
    assert in_order.refutation is None  # the total spent on the first


def test_rounds_search_further_each_round_until_the_total_and_drop_what_they_exhaust() -> None:
    """The reference at 2,1,1,1 (exhausted in the first round: searched once) and 2,1,2,2,S=2 (searched again,
    four times as far each round, until the total is spent); the summary names each one's furthest search."""
    small, big = Bounds(2, 1, 1, 1), Bounds(2, 1, 2, 2).replace(spaces=2)
    seen: list[str] = []
    done = refute.search_rounds(REFERENCE, [(2, small), (4, big)], 60, 10_000, 1_000_000, 100_000, note=seen.append)
    assert done.refutation is None
    assert [(s.bounds, s.complete) for s in done.searched] == [(small, True), (big, False)]
    assert sum(small.short() in line for line in seen) == 1
    assert [line.split("at most ")[1] for line in seen if big.short() in line] == [
        "10,000 states)", "40,000 states)", f"{100_000 - 10_000 - 40_000 - done.searched[0].states:,} states)"]
    assert done.searched[1].states == 100_000 - 10_000 - 40_000 - done.searched[0].states
    assert done.summary().startswith("no counterexample at " + small.short())
