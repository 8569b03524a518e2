"""``deferral check`` and ``deferral replay`` from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def test_default_check_holds(cli) -> None:
    result = cli("check")
    assert result.code == 0
    assert "no_stale_translation" in result.out and "holds" in result.out


def test_json_shape(cli) -> None:
    result = cli("check", "--json", "--variant", "reload-no-drain", "--no-symmetry")
    doc = json.loads(result.out)
    assert result.code == 1
    assert set(doc) >= {"variant", "bounds", "symmetry", "states", "transitions", "depth", "elapsed_s",
                        "complete", "properties"}
    assert doc["engine"] == "vectorized" and doc["stats"]["bytes_per_state"] > 0
    assert doc["bounds"] == {"vcpus": 2, "pages": 1, "frames": 1, "queue": 1}
    assert doc["symmetry"] is False and doc["complete"] is True
    prop = doc["properties"][0]
    assert prop == {"name": "no_stale_translation", "kind": "invariant", "status": "violated", "length": 5,
                    "trace": None}
    assert doc["properties"][1]["kind"] == "liveness"


def test_trace_out_then_replay(cli, tmp_path: Path) -> None:
    trace = tmp_path / "cex.json"
    result = cli("check", "--variant", "ipi-before-drain", "--trace-out", str(trace))
    assert result.code == 1 and "shortest counterexample, 6 steps" in result.out
    doc = json.loads(trace.read_text())
    assert doc["format"] == "deferral-trace/1" and len(doc["steps"]) == 6
    replayed = cli("replay", str(trace), "--json")
    report = json.loads(replayed.out)
    assert replayed.code == 0 and report["replays"] and report["outcome"] == "violates"
    # The same trace judged by the reference does not go through.
    assert cli("replay", str(trace), "--variant", "reference").code == 4


def test_max_states_gives_unknown_and_exit_3(cli) -> None:
    result = cli("check", "--json", "--max-states", "100")
    doc = json.loads(result.out)
    assert result.code == 3 and doc["complete"] is False
    assert {p["status"] for p in doc["properties"]} == {"unknown"}


@pytest.mark.parametrize("argv, message", [
    (["check", "--vcpus", "7"], "--vcpus must be an integer from 1 to 6"),
    (["check", "--variant", "nope"], "unknown variant 'nope'"),
    (["check", "--frobnicate"], "unrecognized arguments"),
    (["check", "--max-states", "-4"], "expected a positive number"),
    (["check", "--variant-file", "/nonexistent.py"], "no such file"),
    (["replay", "/nonexistent.json"], "no such file"),
])
def test_bad_input_exits_2_with_one_line(cli, argv: list[str], message: str) -> None:
    result = cli(*argv)
    assert result.code == 2
    assert message in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_replay_rejects_foreign_and_truncated_files(cli, tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.json"
    foreign.write_text('{"hello": "world"}')
    assert cli("replay", str(foreign)).code == 2
    trace = tmp_path / "cex.json"
    cli("check", "--variant", "reload-no-drain", "--trace-out", str(trace))
    cut = tmp_path / "cut.json"
    cut.write_text(trace.read_text()[:200])
    result = cli("replay", str(cut))
    assert result.code == 2 and "truncated" in result.err


def test_two_outputs_or_an_output_and_an_input_naming_one_file_are_refused(cli, tmp_path: Path) -> None:
    """--trace-out x --itf x kept only the last one written; --html naming the variant file or the
    trace being replayed overwrote the user's file with the report."""
    out = tmp_path / "out.json"
    r = cli("check", "--variant", "reload-no-drain", "--trace-out", str(out), "--itf", str(out))
    assert r.code == 2 and "--trace-out and --itf name the same file" in r.err and not out.exists()
    variant = tmp_path / "mine.py"
    variant.write_text("from deferral.model import REFERENCE\nVARIANT = REFERENCE.derive('mine')\n")
    source = variant.read_text()
    for argv in (["check", "--variant-file", str(variant), "--html", str(variant)],
                 ["regress", "--candidate", str(variant), "--junit", str(tmp_path / "." / "mine.py")]):
        r = cli(*argv)
        assert r.code == 2 and "is an input of this command" in r.err, r.err
        assert variant.read_text() == source
    trace = tmp_path / "cex.json"
    assert cli("check", "--variant", "reload-no-drain", "--trace-out", str(trace)).code == 1
    kept = trace.read_text()
    r = cli("replay", str(trace), "--html", str(trace))
    assert r.code == 2 and "is an input of this command" in r.err and trace.read_text() == kept


@pytest.mark.parametrize("engine", ["vectorized", "plain"])
def test_property_selection_stops_once_every_invariant_is_violated(cli, engine: str) -> None:
    """--property checks that invariant only: the search ends at the level of its first violation,
    with the same shortest counterexample as the full search, and says why it ended."""
    # a bug of one VCPU: 102 states (ipi-before-drain at 2,1,1 has 4,531, 7 s each in the plain engine)
    run = ("check", "--json", "--variant", "reload-no-drain", "--vcpus", "1", "--engine", engine)
    full = json.loads(cli(*run).out)
    only = cli(*run, "--property", "no_stale_translation")
    doc = json.loads(only.out)
    assert only.code == 1
    assert [p["name"] for p in doc["properties"]] == ["no_stale_translation"]
    assert doc["properties"][0]["status"] == "violated"
    assert doc["properties"][0]["length"] == full["properties"][0]["length"] == 5
    assert doc["complete"] is False and doc["stopped_by"] == "all-violated"
    assert doc["depth"] == 5 and doc["states"] < full["states"]
    everything = json.loads(cli(*run, "--property", "no_stale_translation", "--explore-all").out)
    assert everything["complete"] is True and everything["states"] == full["states"]


def test_property_selection_of_liveness_explores_everything(cli) -> None:
    result = cli("check", "--json", "--property", "shootdowns_can_complete")
    doc = json.loads(result.out)
    assert result.code == 0 and doc["complete"] is True
    assert [(p["name"], p["status"]) for p in doc["properties"]] == [("shootdowns_can_complete", "holds")]


def test_property_selection_terminal_says_why_it_stopped(cli) -> None:
    result = cli("check", "--variant", "ipi-before-drain", "--property", "no_stale_translation")
    assert result.code == 1
    assert "stopped once every property checked was violated" in result.out


@pytest.mark.parametrize("argv, message", [
    (["check", "--property", "nope"], "--property nope: reference has no such property (it has: "
                                      "no_stale_translation, shootdowns_can_complete)"),
    (["check", "--property", "no_stale_translation", "--property", "no_stale_translation"], "named twice"),
])
def test_property_selection_bad_input(cli, argv: list[str], message: str) -> None:
    result = cli(*argv)
    assert result.code == 2 and message in result.err and "Traceback" not in result.err
    assert len(result.err.strip().splitlines()) == 1
