"""JSON Lines traces survive truncation; the engine and conform commands and their bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from deferral.cli.main import main
from deferral.engine.runner import RunConfig, run
from deferral.model import REFERENCE, Bounds
from deferral.traces.format import load
from deferral.traces.replay import replay


def test_jsonl_trace_loads_up_to_the_last_complete_line(tmp_path: Path) -> None:
    out = tmp_path / "run.jsonl"
    result = run(RunConfig(Bounds(2, 1, 1, 1), "reference", seconds=0.2, seed=4, snapshots=True,
                           trace_out=str(out), jsonl=True, max_steps=300))
    assert result.trace is None  # streamed, not kept in memory
    whole = load(out)
    assert len(whole.steps) == result.summary["steps"]
    assert replay(whole, REFERENCE).ok
    text = out.read_text()
    lines = text.splitlines(keepends=True)
    cut = "".join(lines[:41]) + lines[41][: len(lines[41]) // 2]  # header + 40 steps + half a line
    out.write_text(cut)
    part = load(out)
    assert len(part.steps) == 40 and part.extra.get("truncated") is True
    assert [s.step for s in part.steps] == [s.step for s in whole.steps[:40]]
    assert replay(part, REFERENCE).ok


def test_engine_run_cli_json_and_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.json"
    code = main(["engine", "run", "--variant", "reference", "--vcpus", "2", "--pages", "2", "--frames", "1",
                 "--queue", "1", "--seconds", "0.2", "--seed", "5", "--trace-out", str(out), "--snapshots",
                 "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["steps"] > 0 and summary["violations"]["steps"] == 0
    assert summary["trace_format"] == "deferral-trace/1"
    assert replay(load(out), REFERENCE).ok


def test_engine_run_cli_reports_a_deadlock(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["engine", "run", "--variant", "wait-irqs-off", "--seconds", "0.3", "--grace", "0.2", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 1 and summary["stuck"]


def test_conform_cli(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["conform", "--depth", "3", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["conforms"] is True
    assert main(["conform", "--random-walks", "3", "--length", "20", "--seed", "1", "--vcpus", "3"]) == 0
    assert "conforms" in capsys.readouterr().out
    assert main(["conform", "--counterexamples", "--variant", "reload-no-drain", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["counterexamples"][0]["length"] == 5 and out["counterexamples"][0]["engine_violates"]


@pytest.mark.parametrize("argv", [
    ["engine", "run", "--vcpus", "7"],
    ["engine", "run", "--queue", "0"],
    ["engine", "run", "--seconds", "0"],
    ["engine", "run", "--seconds", "abc"],
    ["engine", "run", "--variant", "nope"],
    ["engine", "run", "--jsonl"],
    ["engine", "run", "--seed", "-1"],
    ["engine", "run", "--max-steps", "0"],
    ["engine", "run", "--variant-file", "/nonexistent.py"],
    ["engine"],
    ["conform"],
    ["conform", "--depth", "0"],
    ["conform", "--depth", "2", "--random-walks", "3"],
    ["conform", "--random-walks", "0"],
    ["conform", "--random-walks", "2", "--length", "0"],
    ["conform", "--depth", "2", "--pages", "4"],
    ["conform", "--depth", "2", "--variant", "nope"],
    ["conform", "--depth", "2", "--time-limit", "-1"],
    # a flag of another mode is refused, not silently ignored
    ["conform", "--depth", "2", "--max-states", "10"],
    ["conform", "--random-walks", "2", "--max-states", "10"],
    ["conform", "--depth", "2", "--length", "5"],
    ["conform", "--counterexamples", "--length", "5"],
    ["conform", "--depth", "2", "--seed", "3"],
    ["conform", "--random-walks", "2", "--no-prune"],
    ["conform", "--counterexamples", "--max-steps", "10"],
])
def test_bad_input_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("deferral:") and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_conform_counterexamples_cut_by_max_states_names_the_properties_left_undecided(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The model's search stopped before deciding a property: exit 3 saying which property and why,
    not 'not every path was checked' (no path is left unchecked in this mode)."""
    code = main(["conform", "--counterexamples", "--variant", "reload-no-drain", "--max-states", "2000"])
    out = capsys.readouterr().out
    assert code == 3
    assert "not every path was checked" not in out
    assert "shootdowns_can_complete" in out and "--max-states" in out
    assert main(["conform", "--counterexamples", "--variant", "reload-no-drain", "--max-states", "2000",
                 "--json"]) == 3
    report = json.loads(capsys.readouterr().out)
    assert report["undecided"] == ["shootdowns_can_complete"]
    # what the model's search covered before it stopped
    assert report["model_search"]["states"] == 2000 and report["model_search"]["depth"] > 0


def test_conform_random_walks_honour_the_time_limit_and_max_steps(capsys: pytest.CaptureFixture[str]) -> None:
    """--time-limit and --max-steps stop random walks too (exit 3, the walks and steps done so far):
    they were ignored there, and '--random-walks 2000 --length 50 --time-limit 2' ran 7 minutes."""
    start = time.monotonic()
    code = main(["conform", "--random-walks", "100000", "--length", "50", "--time-limit", "1", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert time.monotonic() - start < 10
    assert code == 3 and report["stopped_by"] == "time-limit" and report["complete"] is False
    assert 0 < report["paths"] < 100000 and report["steps"] > 0
    code = main(["conform", "--random-walks", "50", "--length", "30", "--max-steps", "40", "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 3 and report["stopped_by"] == "max-steps" and report["steps"] == 40
    code = main(["conform", "--random-walks", "50", "--length", "30", "--max-steps", "40"])
    assert code == 3 and "stopped by max-steps" in capsys.readouterr().out


def test_conform_counterexamples_decides_two_spaces_at_its_default_max_states(
        capsys: pytest.CaptureFixture[str]) -> None:
    # before 5 Dec, night, the default --max-states 500000 stopped every search at S=2 (about 3.3M
    # states) before it decided: exit 3 for the README's own command, and for a safe change too
    assert main(["conform", "--counterexamples", "--spaces", "2", "--variant", "switch-no-drain", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["complete"] and out["counterexamples"][0]["length"] == 7 and out["counterexamples"][0]["engine_violates"]
