"""A variant file cannot end deferral with a verdict's exit code, is loaded once, and loads inside the time limit."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import deferral.cli.contain as contain
from fuzz_support import assert_contract, counterexample_doc, run_cli

HEADER = "from deferral.model import REFERENCE\nimport ctypes, os, signal, sys, time\n"
STEP = "def r(s, i, p, sp):\n    {}\nVARIANT = REFERENCE.derive('x', procedures={{'resync': r}})\n"
ENDINGS = {
    "os._exit(0)": "os._exit(0)",
    "os._exit(1)": "os._exit(1)",
    "kill -9 of itself": "os.kill(os.getpid(), signal.SIGKILL)",
    "SIGTERM to its group": "os.killpg(0, signal.SIGTERM)",
    "exec of /bin/true": "os.execv('/bin/true', ['true'])",
}


def commands(path: Path, trace: Path) -> dict[str, list[str]]:
    return {
        "check": ["check", "--variant-file", str(path), "--workers", "1"],
        "prove": ["prove", "--variant-file", str(path), "--method", "bmc", "--depth", "2"],
        "replay": ["replay", str(trace), "--variant-file", str(path)],
        "regress": ["regress", "--candidate", str(path), "--bounds", "2,1,1,1", "--no-corpus", "--no-behaviours"],
        "variants": ["variants", "--variant-file", str(path)],
    }


@pytest.fixture()
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "cex.json"
    path.write_text(counterexample_doc())
    return path


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_a_variant_ending_the_process_while_it_loads_is_bad_input(tmp_path: Path, trace: Path, ending: str) -> None:
    path = tmp_path / "variant.py"
    path.write_text(HEADER + ENDINGS[ending] + "\nVARIANT = REFERENCE\n")
    for name, argv in commands(path, trace).items():
        o = run_cli(*argv)  # in this process: had the file ended it, pytest would be gone
        assert_contract(o)
        assert o.code == 2 and "variant.py: ended the process while it loaded" in o.err, (name, o)


@pytest.mark.parametrize("ending", sorted(ENDINGS))
def test_a_step_ending_the_process_is_bad_input_naming_the_step(tmp_path: Path, trace: Path, ending: str) -> None:
    path = tmp_path / "variant.py"
    path.write_text(HEADER + STEP.format(ENDINGS[ending]))
    for name in ("check", "prove", "regress"):
        o = run_cli(*commands(path, trace)[name])
        assert_contract(o)
        assert o.code == 2 and "ended the process" in o.err and "step write(0,0,0)" in o.err, (name, o)


def test_libc_exit_through_ctypes_is_caught_by_the_trial(tmp_path: Path, trace: Path) -> None:
    path = tmp_path / "variant.py"
    path.write_text(HEADER + STEP.format("ctypes.CDLL(None)._exit(0)"))
    o = run_cli(*commands(path, trace)["check"])
    assert o.code == 2 and "ended the process (exit status 0) in step write(0,0,0)" in o.err, o


@pytest.mark.parametrize("ending", ["os._exit(0)", "kill -9 of itself", "exec of /bin/true"])
@pytest.mark.parametrize("command", ["check", "prove"])
def test_past_the_trial_the_call_raises_in_this_process(tmp_path: Path, trace: Path, monkeypatch: pytest.MonkeyPatch,
                                                        ending: str, command: str) -> None:
    monkeypatch.setattr(contain, "TRIAL_STATES", 0)  # the trial runs no step: the second layer acts
    path = tmp_path / "variant.py"
    path.write_text(HEADER + STEP.format(ENDINGS[ending]))
    o = run_cli(*commands(path, trace)[command])
    assert_contract(o)
    call = ENDINGS[ending].split("(")[0]
    assert o.code == 2 and f"called {call}(" in o.err and "write(0,0,0" in o.err, o
    assert os._exit is contain._REAL_EXIT  # restored after the command


def test_the_variant_file_is_loaded_once_by_this_process(tmp_path: Path) -> None:
    log = tmp_path / "loads"
    path = tmp_path / "variant.py"
    path.write_text(HEADER + f"open({str(log)!r}, 'a').write(str(os.getpid()) + '\\n')\nVARIANT = REFERENCE\n"
                    "from deferral.engine import Hypervisor\nENGINE = Hypervisor\n")
    for argv in (["check", "--variant-file", str(path), "--workers", "1"],
                 ["prove", "--variant-file", str(path), "--method", "bmc", "--depth", "1"],
                 ["variants", "--variant-file", str(path)],
                 ["engine", "run", "--variant-file", str(path), "--seconds", "0.2"],
                 ["conform", "--variant-file", str(path), "--depth", "1"]):
        log.write_text("")
        o = run_cli(*argv)
        assert o.code in (0, 3), o
        pids = log.read_text().split()
        assert pids.count(str(os.getpid())) == 1, pids  # and once in the trial's child
        assert len(pids) == 2, pids


@pytest.mark.parametrize("argv", [["check", "--time-limit", "1"], ["prove", "--timeout", "1"]])
def test_loading_the_variant_file_counts_against_the_time_limit(tmp_path: Path, argv: list[str]) -> None:
    path = tmp_path / "variant.py"
    path.write_text(HEADER + "time.sleep(8)\nVARIANT = REFERENCE\n")
    start = time.monotonic()
    o = run_cli(*argv, "--variant-file", str(path))
    took = time.monotonic() - start
    assert_contract(o)
    assert o.code == 3 and "time limit of 1 s reached" in o.err, o
    assert took < 6, took  # the limit + its 2.05 s of grace, not the 8 s load (nor the 10 s load limit)
