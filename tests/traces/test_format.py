"""The trace formats: round trips, JSON Lines cut short, malformed and foreign files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deferral.model import Bounds
from deferral.traces.format import FORMAT, JsonlWriter, Trace, TraceError, TraceStep, load, loads


def sample() -> Trace:
    steps = [TraceStep("write", {"i": 0, "p": 0, "f": 1}), TraceStep("reload_cr3", {"i": 0})]
    return Trace("reference", Bounds(2, 1, 1, 1), steps, prop=None, expected={"outcome": "passes"})


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    sample().save(path)
    again = load(path)
    assert json.loads(path.read_text())["format"] == FORMAT
    assert again.steps == sample().steps and again.bounds == Bounds(2, 1, 1, 1)
    assert not list(tmp_path.glob(".*.tmp")), "atomic write leaves no temporary file"


def test_jsonl_cut_mid_line_keeps_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "t.jsonl"
    with JsonlWriter(path, sample()) as writer:
        for step in sample().steps:
            writer.step(step)
    text = path.read_text()
    cut = text[: len(text) - 5]  # the process died while writing the last line
    trace = loads(cut, "t.jsonl")
    assert [s.step for s in trace.steps] == ["write"]
    assert trace.extra.get("truncated") is True
    assert [s.step for s in load(path).steps] == ["write", "reload_cr3"]


@pytest.mark.parametrize("text, message", [
    ("", "empty file"),
    ("{\"format\": \"deferral-trace/1\", \"variant\": ", "may be truncated"),
    ("[1, 2]", "top level is not a JSON object"),
    ("{\"format\": \"other/9\"}", "format is 'other/9'"),
    ("{\"format\": \"deferral-trace/1\", \"variant\": \"reference\", \"bounds\": {\"vcpus\": 9, \"pages\": 1, "
     "\"frames\": 1, \"queue\": 1}, \"steps\": []}", "bad bounds: --vcpus"),
    ("{\"format\": \"deferral-trace/1\", \"variant\": \"reference\", \"bounds\": {\"vcpus\": 2, \"pages\": 1, "
     "\"frames\": 1, \"queue\": 1}, \"steps\": [{\"step\": \"write\", \"args\": {\"i\": \"x\"}}]}",
     "step 1: 'args' must map"),
])
def test_malformed_files_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(TraceError) as info:
        loads(text, "f.json")
    assert message in str(info.value) and "\n" not in str(info.value)
