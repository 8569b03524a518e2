"""Progress on stderr: plain lines under --json (stdout stays one JSON object), none for short runs."""

from __future__ import annotations

import sys

import pytest

from deferral.checks.results import Progress
from deferral.cli.progress import live_progress, plain_notes, progress_line


def test_progress_line_names_states_depth_frontier_and_spill() -> None:
    line = progress_line("reference N=3", Progress(1_234_567, 0, 14, 98_765, 10.0, spilled=3 << 20))
    assert line == ("reference N=3: 1,234,567 states  depth 14  frontier 98,765  123,457 states/s  10 s"
                    "  spilled 3 MiB to disk")


def test_plain_progress_prints_at_most_every_ten_seconds_without_rich(capsys: pytest.CaptureFixture[str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "rich.live", raising=False)
    clock = [100.0]
    monkeypatch.setattr("deferral.cli.progress.time.monotonic", lambda: clock[0])
    with live_progress("ref", delay_s=1.0, plain=True) as update:
        update(Progress(10, 0, 1, 5, 0.5))  # within the first second: silent
        for t in (101.5, 105.0, 112.0):
            clock[0] = t
            update(Progress(int(t), 0, 2, 5, t - 100.0))
    out, err = capsys.readouterr()
    assert out == ""
    assert [line.split(":")[1].split()[0] for line in err.splitlines()] == ["101", "112"]
    assert "rich.live" not in sys.modules


def test_a_proofs_notes_off_a_terminal_are_a_plain_line_at_most_every_ten_seconds(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("deferral.cli.progress.time.monotonic", lambda: clock[0])
    note = plain_notes("prove reference", delay_s=1.0)
    for t, text in ((100.5, "sampling"), (101.5, "enumerating"), (105.0, "round 1"), (112.0, "round 2")):
        clock[0] = t
        note(text)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["prove reference, 2 s: enumerating", "prove reference, 12 s: round 2"]


def test_progress_line_says_what_a_long_level_is_doing() -> None:
    line = progress_line("ref", Progress(10, 0, 17, 5, 1.0, phase="merging level 18: 7 new states so far"))
    assert line.endswith("  (merging level 18: 7 new states so far)")
