"""What a user sees first: --version, help texts in plain words, metavars as in the docs."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from deferral.cli.main import COMMANDS, build_parser, main
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.traces.replay import path_to_trace


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0  # main returns every exit code, it never raises SystemExit
    assert capsys.readouterr().out.startswith("deferral ")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_rest_markup(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main([command, "--help"]) == 0
    text = capsys.readouterr().out
    assert "``" not in text and ":class:" not in text and ":func:" not in text
    assert text.count("\n") > 3  # a description, not just usage


def test_bound_metavars_match_the_docs() -> None:
    usage = build_parser()._subparsers._group_actions[0].choices["check"].format_usage()  # type: ignore[union-attr]
    assert "--vcpus N" in usage and "--pages V" in usage and "--frames F" in usage and "--queue Q" in usage


def long_trace(tmp_path: Path, steps: int) -> Path:
    model = Model(REFERENCE, Bounds())
    rng = random.Random(1)
    path = [(None, model.initial)]
    for _ in range(steps):
        action, state = rng.choice(list(model.successors(path[-1][1])))
        path.append((action, state))
    file = tmp_path / "long.json"
    path_to_trace(model, path).save(file)  # type: ignore[arg-type]
    return file


def test_replay_summarizes_a_long_trace_unless_full(cli, tmp_path: Path) -> None:
    file = long_trace(tmp_path, 60)
    short = cli("replay", str(file))
    assert short.code == 0
    assert "steps: " in short.out and "the last 10 steps (--full for all)" in short.out
    assert "│ 60 │" in short.out and "│ 50 │" not in short.out
    full = cli("replay", str(file), "--full")
    assert "│ 1 │" in full.out.replace("│  1 │", "│ 1 │") and "│ 60 │" in full.out
    assert len(full.out.splitlines()) > len(short.out.splitlines())
