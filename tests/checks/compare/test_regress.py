"""Regression reports and behaviours: what changed between a baseline and a candidate."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np

from deferral.checks.compare.behaviours import compare, shared_variables
from deferral.checks.explicit.reachable import reachable
from deferral.checks.compare.regress import regress
from deferral.traces.report.junit import regress_junit
from deferral.model import BOOL, PAGE, REFERENCE, VCPU, Bounds, Var
from deferral.model.concrete import Model
from deferral.model.variants import PUBLISHED
from deferral.traces.corpus import load_corpus

SMALL = Bounds(2, 1, 1, 1)


def test_reachable_counts_match_protocol_md():
    assert len(reachable(REFERENCE, Bounds(1, 1, 1, 1))) == 75
    assert len(reachable(REFERENCE, SMALL)) == 3163


def test_reachable_paths_are_real_shortest_paths():
    reach = reachable(REFERENCE, SMALL)
    model = Model(REFERENCE, SMALL)
    for n in (0, 1, len(reach) // 2, len(reach) - 1):
        path = reach.path_to(n)
        state = model.initial
        for action, after in path[1:]:
            state = model.apply(state, action)
            assert state == after
        assert model.canonical(state) == tuple(int(v) for v in reach.rows[n])
    assert len(reach.path_to(len(reach) - 1)) - 1 == reach.depth


def test_shared_variables_drop_ghosts_and_one_sided_variables():
    extra = Var("mark", BOOL, (VCPU,), "an extra protocol variable")
    variant = REFERENCE.derive("with-mark", add_variables=[extra])
    names = [v.name for v in shared_variables(REFERENCE, variant)]
    assert "mark" not in names and not {"lw", "req", "covers"} & set(names)
    assert names == [v.name for v in REFERENCE.variables if not v.ghost]
    changed = REFERENCE.derive("pg-other", remove_variables=["pg"],
                               add_variables=[Var("pg", BOOL, (VCPU,))])
    assert "pg" not in [v.name for v in shared_variables(REFERENCE, changed)]


def test_same_protocol_has_same_behaviours():
    d = compare(REFERENCE, REFERENCE, SMALL)
    assert d.added == d.lost == 0 and d.added_example is None
    assert d.baseline_behaviours == d.candidate_behaviours < d.baseline_states  # ghosts projected away


def test_new_behaviour_comes_with_a_shortest_trace_in_the_candidate():
    cand = PUBLISHED["drain-local-only"]
    d = compare(REFERENCE, cand, SMALL)
    assert d.added > 0
    path = d.added_example
    assert path is not None
    model = Model(cand, SMALL)
    state = model.initial
    for action, after in path[1:]:
        state = model.apply(state, action)
        assert state == after
    # the behaviour at the end is not reachable in the reference (projected)
    ref = reachable(REFERENCE, SMALL)
    shared = shared_variables(REFERENCE, cand)
    from deferral.checks.compare.behaviours import Projection
    pr = Projection.of(ref.model.layout, shared)
    pc = Projection.of(model.layout, shared)
    key = pc.keys(np.array([state], dtype=np.uint8))
    assert not np.isin(key, pr.keys(ref.rows)).any()


def test_regress_reports_lost_properties_and_corpus_changes():
    report = regress(REFERENCE, PUBLISHED["drain-local-only"], [SMALL], load_corpus())
    assert report.exit_code == 1
    [lost] = report.lost
    assert lost.prop == "no_stale_translation" and lost.candidate_length == 8
    # its own counterexample, and resync-running-only's at two spaces (a drain that skips
    # another VCPU's cached shadow is also a drain that resyncs only the drainer's own)
    assert [r.name for r in report.corpus_lost] == ["cex-drain-local-only", "cex-resync-running-only"]
    n = len(report.corpus)
    xml = ET.fromstring(regress_junit(report))
    assert len(xml.findall(".//testcase")) == 2 + n
    assert len(xml.findall(".//failure")) == 3
    properties, corpus = xml.findall("testsuite")
    assert (properties.get("tests"), properties.get("failures"), properties.get("skipped")) == ("2", "1", "0")
    assert (corpus.get("tests"), corpus.get("failures")) == (str(n), "2")
    assert corpus.get("skipped") == str(sum(r.candidate.outcome == "cannot-replay" for r in report.corpus))


def test_regress_liveness_loss():
    report = regress(REFERENCE, PUBLISHED["wait-irqs-off"], [SMALL], load_corpus(), behaviours=False)
    assert [r.prop for r in report.lost] == ["shootdowns_can_complete"]
    row = {r.name: r for r in report.corpus}["cex-wait-irqs-off"]
    assert row.baseline.outcome == "passes"
    assert row.candidate.properties == ["shootdowns_can_complete"]


def test_candidate_without_a_step_reports_cannot_replay():
    cand = REFERENCE.derive("no-reload", remove_steps=["reload_cr3", "finish_reload"])
    report = regress(REFERENCE, cand, [SMALL], load_corpus(), behaviours=True)
    assert report.exit_code == 0
    rows = {r.name: r for r in report.corpus}
    assert rows["cex-reload-no-drain"].candidate.outcome == "cannot-replay"
    assert "no step 'reload_cr3'" in rows["cex-reload-no-drain"].candidate.reason
    [beh] = report.behaviours
    assert beh.diff is not None and beh.diff.lost > 0 and beh.diff.added == 0


def test_candidate_adding_a_variable_replays_corpus_by_steps():
    extra = Var("seen_page", BOOL, (PAGE,))
    cand = REFERENCE.derive("extra", add_variables=[extra])
    report = regress(REFERENCE, cand, [SMALL], load_corpus())
    assert report.exit_code == 0
    assert all(not r.changed for r in report.corpus)
    assert report.behaviours[0].diff.added == report.behaviours[0].diff.lost == 0  # type: ignore[union-attr]


def test_candidate_without_a_property_replays_the_corpus_on_its_own_properties():
    """A candidate that removes the property corpus traces name: each trace's steps are judged on
    the candidate's own properties (before, regress stopped with "the trace names property
    'no_stale_translation', which ... does not have", exit 2)."""
    cand = REFERENCE.derive("live-only", remove_properties=["no_stale_translation"])
    report = regress(REFERENCE, cand, [SMALL], load_corpus(), behaviours=False)
    rows = {r.name: r for r in report.corpus}
    assert rows["cex-drain-local-only"].candidate.outcome == "passes"
    assert rows["cex-wait-irqs-off"].candidate.outcome == "passes"
    [row] = [r for r in report.verdicts if r.prop == "no_stale_translation"]
    assert (row.baseline, row.candidate) == ("holds", "absent")


def test_a_property_the_baseline_holds_and_the_candidate_removes_is_lost():
    """Removing the invariant is losing it: exit 1, a JUnit failure saying so (before: 'changed',
    exit 0 and "✓ no regression: ... keeps every property reference has")."""
    cand = REFERENCE.derive("live-only", remove_properties=["no_stale_translation"])
    report = regress(REFERENCE, cand, [SMALL], behaviours=False)
    assert [(r.prop, r.change) for r in report.lost] == [("no_stale_translation", "LOST")]
    assert report.exit_code == 1
    xml = ET.fromstring(regress_junit(report))
    [failure] = xml.findall(".//failure")
    assert "live-only has no property no_stale_translation" in (failure.text or ""), failure.text
    back = regress(cand, REFERENCE, [SMALL], behaviours=False)  # a property added is no loss
    assert back.exit_code == 0 and not back.lost


def test_the_default_matrix_catches_bugs_of_two_vcpus_at_two_frames_or_two_spaces() -> None:
    """A user's changes (qa3) that are safe with one VCPU but not with two: a write making a PTE present
    queues no notice (violated at 2,1,2,1, 6 steps) and a CR3 switch draining only the target space's
    notices (violated at 2,1,1,1,S=2, 9 steps). The default matrix had frames and spaces raised only at
    one VCPU (1,1,2,1 and 1,1,1,1,2), so regress said "no regression" (exit 0) for both."""
    from pathlib import Path

    from deferral.model.variants import load_variant_file

    data = Path(__file__).parent / "data"
    for name, where, length in (("write_nonpresent.py", Bounds(2, 1, 2, 1), 6),
                                ("switch_drain_target_bug.py", Bounds(2, 1, 1, 1, 2), 9)):
        report = regress(REFERENCE, load_variant_file(data / name), behaviours=False)
        lost = [(v.bounds, v.candidate_length) for v in report.verdicts if v.prop == "no_stale_translation"
                and v.baseline == "holds" and v.candidate == "violated"]
        assert (where, length) in lost, (name, lost)
        assert report.exit_code == 1


def test_the_default_matrix_catches_bugs_of_two_vcpus_at_two_pages() -> None:
    """A user's change (qa5) safe with one page or one VCPU but not with two of each: shootdown IPIs that
    carry the page in one global variable without a lock (Linux i386 flush_va), violated at 2,2,1,1 in
    10 steps. The default matrix raised frames, the queue and spaces beside a second VCPU but pages only
    at one VCPU (1,2,1,1), so regress said "no regression" (exit 0)."""
    from pathlib import Path

    from deferral.model.variants import load_variant_file

    cand = load_variant_file(Path(__file__).parent / "data" / "global_flush_va_nolock_bug.py")
    report = regress(REFERENCE, cand, behaviours=False)
    lost = [(v.bounds, v.candidate_length) for v in report.verdicts if v.prop == "no_stale_translation"
            and v.baseline == "holds" and v.candidate == "violated"]
    assert (Bounds(2, 2, 1, 1), 10) in lost, lost
    assert report.exit_code == 1
