"""``regress --prove``: both sides proved for every N, V, F per Q, S; a lost proof is a regression.

A safe change keeps the baseline's proofs (exit 0); a change refuted at a small instance loses
them (exit 1, with where and how long its counterexample is, in the terminal, JSON and JUnit);
a candidate proof that is neither found nor refuted leaves the question open (exit 3), never a pass.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from deferral.checks.compare.proofs import concrete_parts
from deferral.cli.main import main
from deferral.model import REFERENCE, Bounds

ROOT = Path(__file__).resolve().parents[3]
SAFE = ROOT / "examples" / "drain_zaps.py"
QUICK = ["--no-corpus", "--no-behaviours"]

ACK_EARLY = '''
from deferral.model import REFERENCE, VCPU
from deferral.model.protocol import step
from deferral.model.reference import PC

@step(("k", VCPU), guard=lambda s, k: (s.pc[k] == PC.Ipi) & s.queue[k].empty())
def ack_ipi(s, k):
    """Ack, and forget the remote flush (a bug)."""
    s.proc.ack(k, s.cur[k])

VARIANT = REFERENCE.derive("no-remote-flush", doc="ack_ipi does not flush", replace_steps=[ack_ipi])
'''


def test_one_proof_per_queue_capacity_and_number_of_spaces() -> None:
    parts = concrete_parts(REFERENCE, [Bounds(2, 1, 1, 1), Bounds(1, 2, 1, 1), Bounds(2, 1, 1, 2),
                                       Bounds(1, 1, 1, 1, 2), Bounds(3, 1, 1, 2)])
    assert [b.short() for _, b in parts] == ["N=2,V=1,F=1,Q=1", "N=2,V=1,F=1,Q=2", "N=1,V=1,F=1,Q=1,S=2"]
    assert [part for part, _ in parts] == [{"queue": 1, "spaces": 1}, {"queue": 2, "spaces": 1},
                                           {"queue": 1, "spaces": 2}]


def test_a_safe_change_keeps_the_proofs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    junit = tmp_path / "r.xml"
    code = main(["regress", "--candidate", str(SAFE), "--bounds", "2,1,1,1", "--prove", "--json", "--junit",
                 str(junit), *QUICK])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["exit_code"] == 0 and len(doc["proofs"]) == 1
    row = doc["proofs"][0]
    assert row["assumed_concrete"] == {"queue": 1, "spaces": 1} and row["change"] == "same"
    assert row["baseline"]["status"] == row["candidate"]["status"] == "proved"
    assert row["candidate"]["verdict"].startswith("proved for every number of vcpus, pages, frames")
    suite = ET.parse(junit).getroot().find("testsuite[@name='proofs']")
    assert suite is not None and (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("1", "0", "0")


def test_a_refuted_change_loses_the_proofs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    variant = tmp_path / "no_remote_flush.py"
    variant.write_text(ACK_EARLY)
    junit, html = tmp_path / "r.xml", tmp_path / "r.html"
    code = main(["regress", "--candidate", str(variant), "--bounds", "2,1,1,1", "--prove", "--junit", str(junit),
                 "--html", str(html), *QUICK])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 1
    assert "✗ REGRESSION: no-remote-flush loses" in out and "its proof for every N, V, F at queue=1, spaces=1" in out
    assert "LOST" in out and "violated at N=2,V=1,F=1,Q=1" in out
    suite = ET.parse(junit).getroot().find("testsuite[@name='proofs']")
    assert suite is not None and suite.get("failures") == "1"
    failure = suite.find("testcase/failure")
    assert failure is not None and failure.text and "1. " in failure.text and "ack_ipi" in failure.text
    page = html.read_text()
    assert "Proofs for every N, V, F" in page and 'href="#proof-0-candidate"' in page and 'id="proof-0-candidate"' in page


def test_a_candidate_proof_not_reached_is_unknown_exit_3(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The candidate's routes stood in for by an unknown result: exit 3, said so, never a pass."""
    from deferral.checks.symbolic import parametric, parametric_routes

    real = parametric_routes.prove_for_every

    def unknown_for_candidate(protocol: Any, bounds: Any, **kw: Any) -> Any:
        if protocol.name == "reference":
            return real(protocol, bounds, **kw)
        res = parametric.ParametricResult(protocol, {"queue": 1, "spaces": 1}, ["vcpus", "pages", "frames"], [],
                                          [parametric.Obligation("safety", "unknown", 0.1, "stood in for")], 0.1)
        return res, "no counterexample at N=1,V=1,F=1,Q=1"

    monkeypatch.setattr(parametric_routes, "prove_for_every", unknown_for_candidate)
    code = main(["regress", "--candidate", str(SAFE), "--bounds", "2,1,1,1", "--prove", *QUICK])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 3
    assert "? not proved: drain-zaps keeps every property reference has" in out and "not proved" in out
    assert "candidate at queue=1, spaces=1: unknown: nothing is claimed proved; safety: Z3 did not decide it " \
           "(stood in for); no counterexample at N=1,V=1,F=1,Q=1" in out


def test_prove_timeout_needs_prove(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["regress", "--candidate", str(SAFE), "--prove-timeout", "5", *QUICK]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "deferral: --prove-timeout needs --prove"


def test_a_side_without_an_invariant_is_not_proved_for_every_n(tmp_path: Path) -> None:
    """A candidate with no invariant property has no proof (before: "proved", the vacuous proof of
    nothing, change "same"): its side is absent and the baseline's proof is lost."""
    from deferral.checks.compare.proofs import prove_both

    live_only = REFERENCE.derive("live-only", remove_properties=["no_stale_translation"])
    [row] = prove_both(REFERENCE, live_only, [Bounds(2, 1, 1, 1)], limit_s=60)
    assert row.baseline.status == "proved" and row.candidate.status == "absent"
    assert "live-only has no invariant property to prove" in row.candidate.verdict
    assert row.lost and row.change == "LOST"
