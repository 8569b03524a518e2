"""``deferral prove`` runs with string hashing fixed, so the same command learns the same lemmas."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from deferral.cli import main as cli_main

SEED_SPY = """
import os, sys
sys.stderr.write(f"PYTHONHASHSEED={os.environ.get('PYTHONHASHSEED')}\\n")
from deferral.model import REFERENCE
VARIANT = REFERENCE.derive("spy")
"""


def run(argv: list[str], env_seed: str | None, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONHASHSEED"}
    if env_seed is not None:
        env["PYTHONHASHSEED"] = env_seed
    return subprocess.run([sys.executable, "-m", "deferral.cli", *argv], capture_output=True, text=True,
                          timeout=120, env=env, cwd=tmp_path)


def test_prove_runs_with_a_fixed_hash_seed_unless_one_is_set(tmp_path: Path) -> None:
    spy = tmp_path / "spy.py"
    spy.write_text(SEED_SPY)
    # --vcpus 0 is refused after the variant file is loaded (its bounds need the file): cheap
    fixed = run(["prove", "--variant-file", str(spy), "--vcpus", "0"], None, tmp_path)
    assert fixed.returncode == 2 and "PYTHONHASHSEED=0" in fixed.stderr
    kept = run(["prove", "--variant-file", str(spy), "--vcpus", "0"], "123", tmp_path)
    assert kept.returncode == 2 and "PYTHONHASHSEED=123" in kept.stderr
    other = run(["check", "--variant-file", str(spy), "--vcpus", "0"], None, tmp_path)
    assert other.returncode == 2 and "PYTHONHASHSEED=None" in other.stderr


@pytest.mark.parametrize("args, execs", [
    (["prove"], True), (["--debug", "prove", "--json"], True), (["check", "--variant", "prove"], False),
    (["simulate"], False), ([], False),
])
def test_only_prove_is_run_again(monkeypatch: pytest.MonkeyPatch, args: list[str], execs: bool) -> None:
    calls: list[tuple[str, list[str], dict[str, str]]] = []
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    monkeypatch.setattr(os, "execve", lambda path, argv, env: calls.append((path, argv, env)))
    cli_main.repeatable_hashing(args)
    assert bool(calls) == execs
    if execs:
        path, argv, env = calls[0]
        assert path == sys.executable and argv[1:3] == ["-m", "deferral.cli"] and argv[3:] == args
        assert env["PYTHONHASHSEED"] == "0"
