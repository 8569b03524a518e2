"""Spacer (pdr) proves and refutes; and ``deferral prove``: exit codes, --json shape, traces.

Spacer is slow at N=2 (about 50 s or more for the reference at N=2,V=1,F=1,Q=1 even with
the one-hot encoding, see benchmarks/PROVE.md), so the proof here is at N=1 and one refutation at N=2; the
other published mutants are refuted by pdr in benchmarks/bench_prove.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deferral.checks.symbolic.pdr import pdr
from deferral.checks.terms.encoding import encode
from deferral.cli.main import main
from deferral.model import PUBLISHED, REFERENCE, Bounds
from deferral.traces.format import load


def test_pdr_proves_the_reference_with_an_invariant() -> None:
    res = pdr(encode(REFERENCE, Bounds(1, 1, 1, 1)), timeout=60)
    assert res.status == "proved" and res.clauses and res.smt2


def test_pdr_one_hot_encoding_proves_with_atoms() -> None:
    res = pdr(encode(REFERENCE, Bounds(1, 1, 1, 1)), timeout=60, encoding="onehot")
    assert res.status == "proved" and res.clauses and res.atoms
    assert any("pc[0]=" in c for c in res.clauses) or any("=" in c for c in res.clauses)


def test_pdr_refutes_a_mutant_with_a_shortest_trace() -> None:
    # one VCPU: its 5 steps are the shortest at 2,1,1,1 too (the bmc test below), which Spacer took 27-36 s
    # to find against 2 s here
    res = pdr(encode(PUBLISHED["reload-no-drain"], Bounds(1, 1, 1, 1)), timeout=60)
    assert res.status == "violated" and res.trace is not None and res.trace.depth == 5


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(["prove", *argv])
    return code, capsys.readouterr().out


def test_prove_auto_proves_the_reference_json(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out_file = tmp_path / "inv.json"
    # --timeout 4: Spacer's inference at N=2 (half of the limit) gives up, the shipped lemmas prove it
    code, out = run(capsys, "--json", "--vcpus", "2", "--pages", "2", "--timeout", "4", "--invariant-out",
                    str(out_file))
    doc = json.loads(out)
    assert code == 0 and doc["status"] == "proved" and doc["method"] == "auto"
    assert set(doc) >= {"variant", "bounds", "method", "status", "elapsed_s", "depth", "invariant", "trace"}
    assert doc["trace"] is None and doc["depth"] is None and len(doc["invariant"]) == 13
    assert json.loads(out_file.read_text())["invariant"] == doc["invariant"]


def test_prove_bmc_violation_trace_replays(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    trace_file = tmp_path / "cex.json"
    code, out = run(capsys, "--json", "--method", "bmc", "--depth", "8", "--variant", "reload-no-drain",
                    "--trace-out", str(trace_file))
    doc = json.loads(out)
    assert code == 1 and doc["status"] == "violated" and doc["depth"] == 5
    assert len(doc["trace"]["steps"]) == 5
    trace = load(trace_file)
    from deferral.traces.replay import replay
    report = replay(trace, PUBLISHED["reload-no-drain"])
    assert report.ok and report.violations


def test_prove_bmc_nothing_found_is_unknown(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--json", "--method", "bmc", "--depth", "3")
    doc = json.loads(out)
    assert code == 3 and doc["status"] == "unknown" and "no violation and no failing step up to depth 3" in doc["reason"]


def test_prove_induction_on_a_mutant_shows_a_cti(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "--json", "--method", "induction", "--variant", "drain-local-only")
    doc = json.loads(out)
    assert code == 3 and doc["status"] == "unknown"
    cti = doc["counterexample_to_induction"]
    assert cti["step"] and cti["before"] and cti["after"] and cti["broken"]


def test_wait_irqs_off_satisfies_the_invariant(capsys: pytest.CaptureFixture[str]) -> None:
    # wait-irqs-off breaks only liveness; prove covers the invariant, which holds
    code, out = run(capsys, "--json", "--variant", "wait-irqs-off", "--timeout", "4")
    assert code == 0 and json.loads(out)["status"] == "proved"


@pytest.mark.parametrize("argv", [["--vcpus", "9"], ["--method", "nope"], ["--variant", "nope"],
                                  ["--depth", "0"], ["--timeout", "-1"], ["--variant-file", "/nonexistent.py"]])
def test_prove_bad_flags_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    assert main(["prove", *argv]) == 2
