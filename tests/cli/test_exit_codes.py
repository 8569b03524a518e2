"""The exit-code contract: a crash, a variant's sys.exit or a bad output path never reads as a verdict."""

from __future__ import annotations

import functools
import json
import os
import stat
import time
from pathlib import Path

import pytest

from deferral.cli import check as check_cli

EXITS = """
import sys
sys.exit(0)
"""

STEP_EXITS = """
import sys
from deferral.model import REFERENCE

def resync(s, i, p, sp):
    sys.exit(0)

VARIANT = REFERENCE.derive("exits", procedures={"resync": resync})
"""

STEP_LOOPS = """
from deferral.model import REFERENCE

def resync(s, i, p):
    while True:
        try:
            pass
        except Exception:
            pass

VARIANT = REFERENCE.derive("loops", procedures={"resync": resync})
"""


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("command", [["check"], ["prove", "--method", "bmc", "--depth", "3"], ["variants"],
                                     ["regress", "--candidate"]])
def test_a_variant_file_that_exits_while_loading_is_bad_input(cli, tmp_path: Path, command: list[str]) -> None:
    path = write(tmp_path, "exit0.py", EXITS)
    argv = command + [path] if command[-1] == "--candidate" else command + ["--variant-file", path]
    result = cli(*argv)
    assert result.code == 2, result
    assert "exit0.py" in result.err and "sys.exit(0)" in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err


@pytest.mark.parametrize("command", [["check"], ["prove", "--method", "bmc", "--depth", "3"]])
def test_a_step_that_exits_is_bad_input_naming_the_step(cli, tmp_path: Path, command: list[str]) -> None:
    path = write(tmp_path, "step_exits.py", STEP_EXITS)
    result = cli(*command, "--variant-file", path)
    assert result.code == 2, result
    assert "sys.exit(0)" in result.err and "step " in result.err and "step_exits.py" in result.err
    assert result.err.count("\n") == 1


def test_replay_with_a_step_that_exits_is_bad_input(cli, tmp_path: Path) -> None:
    trace = tmp_path / "cex.json"
    assert cli("check", "--variant", "drain-local-only", "--trace-out", str(trace)).code == 1
    result = cli("replay", str(trace), "--variant-file", write(tmp_path, "step_exits.py", STEP_EXITS))
    assert result.code == 2 and "sys.exit(0)" in result.err


def test_an_unexpected_exception_is_internal_error_70_with_traceback_only_under_debug(cli, monkeypatch) -> None:
    # raised in C, so no frame of a user's file (this test file would count as one) is on the stack
    monkeypatch.setattr(check_cli, "search", functools.partial(divmod, 1, 0))
    result = cli("check")
    assert result.code == 70
    assert result.err.startswith("deferral: internal error: TypeError: divmod()")
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    debug = cli("check", "--debug")
    assert debug.code == 70 and "Traceback" in debug.err and "divmod()" in debug.err
    as_json = cli("--debug", "check", "--json")
    assert as_json.code == 70
    assert json.loads(as_json.out) == {"error": {"kind": "internal", "message": as_json.err.splitlines()[-1]
                                                 .removeprefix("deferral: ")}, "exit_code": 70}


def test_json_on_bad_input_prints_an_error_object(cli) -> None:
    result = cli("check", "--json", "--vcpus", "9")
    assert result.code == 2
    doc = json.loads(result.out)
    assert doc["exit_code"] == 2 and doc["error"]["kind"] == "bad-input" and "--vcpus" in doc["error"]["message"]


@pytest.mark.parametrize("target", ["/proc/nope/x.json", "/sys/x.json", "{file}/x.json", "{dir}", "/proc/self/x"])
def test_output_paths_are_refused_before_the_search(cli, tmp_path: Path, monkeypatch, target: str) -> None:
    def no_search(*args, **kwargs):
        raise AssertionError("the search must not start")

    monkeypatch.setattr(check_cli, "search", no_search)
    (tmp_path / "file").write_text("x")
    path = target.format(file=tmp_path / "file", dir=tmp_path)
    result = cli("check", "--variant", "drain-local-only", "--trace-out", path)
    assert result.code == 2, result
    assert "--trace-out" in result.err and result.err.count("\n") == 1


@pytest.mark.parametrize("argv", [["prove", "--invariant-out", "/proc/x"], ["prove", "--trace-out", "{dir}"],
                                  ["regress", "--candidate", "reference", "--junit", "/sys/x.xml"],
                                  ["engine", "run", "--trace-out", "{dir}", "--seconds", "0.1"]])
def test_every_output_flag_is_checked(cli, tmp_path: Path, argv: list[str]) -> None:
    result = cli(*[a.format(dir=tmp_path) for a in argv])
    assert result.code == 2, result
    assert result.err.count("\n") == 1


def test_atomic_files_get_umask_permissions(cli, tmp_path: Path) -> None:
    trace = tmp_path / "cex.json"
    old = os.umask(0o022)
    try:
        assert cli("check", "--variant", "reload-no-drain", "--trace-out", str(trace)).code == 1
    finally:
        os.umask(old)
    assert stat.S_IMODE(trace.stat().st_mode) == 0o644


def test_a_step_that_loops_forever_ends_near_the_time_limit(cli, tmp_path: Path) -> None:
    path = write(tmp_path, "loops.py", STEP_LOOPS)
    start = time.monotonic()
    result = cli("check", "--variant-file", path, "--time-limit", "0.5")
    took = time.monotonic() - start
    assert result.code == 3, result
    assert "time limit" in result.err and "loops.py" in result.err and result.err.count("\n") == 1
    assert took < 0.5 + 2.1 + 8.0  # limit + grace + slack on a busy 2-core machine


def test_replay_never_runs_a_file_the_trace_names(cli, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    evil = write(tmp_path, "evil.py", f"open({str(marker)!r}, 'w').write('ran')\n"
                                      "from deferral.model import REFERENCE\nVARIANT = REFERENCE\n")
    trace = tmp_path / "cex.json"
    assert cli("check", "--variant", "drain-local-only", "--trace-out", str(trace)).code == 1
    doc = json.loads(trace.read_text())
    for variant in ("drain-local-only", "mine"):
        doc["variant"], doc["variant_source"] = variant, evil
        trace.write_text(json.dumps(doc))
        result = cli("replay", str(trace))
        assert result.code == 2 and "--variant-file" in result.err
        assert not marker.exists(), "replay ran code named by a trace"
    # Given on the command line, the same file is the user's choice and is loaded.
    assert cli("replay", str(trace), "--variant-file", evil).code in (0, 1, 4)
    assert marker.exists()


def test_a_cancelled_solver_reason_is_text(cli) -> None:
    result = cli("prove", "--method", "pdr", "--timeout", "1", "--json")
    doc = json.loads(result.out)
    assert result.code == 3 and doc["status"] == "unknown"
    assert doc["reason"] == "canceled"


def test_output_off_a_terminal_is_not_wrapped_at_80_columns(cli) -> None:
    result = cli("prove", "--method", "induction")
    assert result.code == 0
    first = result.out.splitlines()[0]
    assert len(first) > 80 and first.startswith("proved no_stale_translation") and first.endswith("s)")


def test_loading_a_file_that_reuses_a_published_variant_leaves_it_unchanged(cli, tmp_path: Path) -> None:
    from deferral.model import REFERENCE

    same = write(tmp_path, "same.py", "from deferral.model import REFERENCE\nVARIANT = REFERENCE\n")
    assert cli("check", "--variant-file", same, "--max-states", "10").code == 3
    assert REFERENCE.source == "built-in"


def _raise(exc: BaseException, *args: object, **kwargs: object) -> None:
    raise exc


def test_running_out_of_file_descriptors_is_a_limit_not_a_verdict(cli, monkeypatch) -> None:
    import errno

    monkeypatch.setattr(check_cli, "search", functools.partial(_raise, OSError(errno.EMFILE, "Too many open files")))
    result = cli("check")
    assert result.code == 3
    assert "too many open files (verdict unknown)" in result.err and "ulimit -n" in result.err
    assert result.err.count("\n") == 1


def test_an_error_whose_report_fails_is_still_internal_error_70(cli, monkeypatch) -> None:
    """3,2,1,2 ran out of descriptors and the error report's own import failed the same way: the
    process ended with Python's 1, which reads as "violated". It must be the internal error's code."""
    import errno

    from deferral.cli import main as main_cli

    monkeypatch.setattr(check_cli, "search", functools.partial(divmod, 1, 0))
    monkeypatch.setattr(main_cli, "classify",
                        functools.partial(_raise, OSError(errno.EMFILE, "Too many open files")))
    result = cli("check")
    assert result.code == 70
    assert result.err.startswith("deferral: internal error: TypeError") and result.err.count("\n") == 1
    assert "reporting it failed: OSError" in result.err
