"""When the fused C loop is built or loaded, and why it is missing is said, not swallowed (no
compiler, an unwritable cache; switched off with DEFERRAL_CC=0 is no problem to report)."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from typing import Any

import pytest

from deferral.checks.explicit import cbuild, fused, fusedkey
from deferral.checks.explicit.expand import Expander
from deferral.checks.explicit.fusedkey import fused_key
from deferral.checks.explicit.limits import LimitReached, command_ends_by
from deferral.checks.explicit.vectorized import explore_vectorized
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.variants import PUBLISHED


def _expander() -> Expander:
    return Expander(Model(REFERENCE, Bounds(2, 1, 1, 1)), True)


def test_a_missing_compiler_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cbuild.ENV_CC, "no-such-cc-here")
    ex = _expander()
    assert ex.fused(None) is None
    assert ex.fused_problem is not None and "no C compiler" in ex.fused_problem
    assert "no-such-cc-here" in ex.fused_problem


def test_switched_off_is_not_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cbuild.ENV_CC, "0")
    ex = _expander()
    assert ex.fused(None) is None and ex.fused_problem is None


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_an_unwritable_cache_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("DEFERRAL_CACHE", str(blocker / "cache"))  # under a file: cannot be made
    ex = _expander()
    assert ex.fused(None) is None
    assert ex.fused_problem is not None and "cache folder" in ex.fused_problem


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_built_loop_has_no_problem() -> None:
    ex = _expander()
    assert ex.fused(None) is not None and ex.fused_problem is None


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_small_chunk_uses_the_loop_only_from_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DEFERRAL_CACHE", str(tmp_path))
    assert _expander().fused(fused.MIN_ROWS - 1) is None  # not cached: a small chunk never compiles
    assert not list(tmp_path.glob("*.so"))
    assert _expander().fused(None) is not None  # built (what a big chunk does)
    assert len(list(tmp_path.glob("*.so"))) == 1
    assert _expander().fused(1) is not None  # remembered under its key: any chunk loads it, no C generated
    for entry in tmp_path.glob("key-*.json"):  # without the key's entry: found by its source, when built
        entry.unlink()
    ex = _expander()
    assert ex.fused(fused.MIN_ROWS - 1) is None  # a small chunk does not look
    ex.start_fused()
    ex.finish_fused()
    assert ex.fused(1) is not None and not ex.fused_compiled  # found in the cache, not compiled again
    assert _expander().fused(1) is not None  # and that remembered the key again


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_background_build_can_be_cancelled(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DEFERRAL_CACHE", str(tmp_path))
    ex = _expander()
    ex.start_fused()
    ex.finish_fused(wait=False)  # cancelled (or done already): no compiler left running, nothing half-made
    assert not list(tmp_path.glob("tmp*")) and ex.fused_problem is None
    assert len(list(tmp_path.glob("*.so"))) == (1 if ex.fused(1) is not None else 0)


def _key(model: Model, symmetry: bool = True) -> str | None:
    return fused_key(model, symmetry, model.protocol.properties, "uint16", "cc", cbuild.FLAGS)


def test_the_key_follows_what_the_c_is_made_of() -> None:
    base = _key(Model(REFERENCE, Bounds(2, 1, 1, 1)))
    assert base is not None and base == _key(Model(REFERENCE, Bounds(2, 1, 1, 1)))
    assert base != _key(Model(REFERENCE, Bounds(2, 1, 1, 1)), symmetry=False)
    assert base != _key(Model(REFERENCE, Bounds(2, 1, 2, 1)))
    others = {_key(Model(p, Bounds(2, 1, 1, 1))) for p in PUBLISHED.values()}
    assert len(others) == len(PUBLISHED) and base in others
    namespace: dict[str, Any] = {}
    exec("def guard(s, *args):\n    return False\n", namespace)  # typed in: no source file, no key
    typed = REFERENCE.derive("typed", replace_steps=[dataclasses.replace(REFERENCE.step("write"),
                                                                         guard=namespace["guard"])])
    assert _key(Model(typed, Bounds(2, 1, 1, 1))) is None


def test_deferrals_own_files_count_in_the_key_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed (not editable), deferral lives in site-packages: its files are still hashed, numpy's are not."""
    root = "/opt/venv/lib/python3.11/site-packages"
    monkeypatch.setattr(fusedkey, "_PACKAGE", fusedkey.Path(f"{root}/deferral"))
    assert not fusedkey._is_library(f"{root}/deferral/checks/explicit/numpy_ops.py")
    assert fusedkey._is_library(f"{root}/numpy/core/numeric.py")
    monkeypatch.setattr(fusedkey, "_PACKAGE", fusedkey.Path("/home/me/deferral"))  # editable: a venv inside the clone
    assert not fusedkey._is_library("/home/me/deferral/checks/explicit/numpy_ops.py")
    assert fusedkey._is_library("/home/me/deferral/.venv/lib/python3.11/site-packages/numpy/core/numeric.py")


def _slow_source(monkeypatch: pytest.MonkeyPatch, gate: "threading.Event", generated: list[int]) -> None:
    """Generating the loop's C waits for ``gate`` (at 6,3,3,3 with three spaces it takes tens of
    seconds of Python that looks at no cancel flag); each generation is counted in ``generated``."""
    real = Expander._fused_source

    def slow(self: Expander) -> Any:
        generated.append(1)
        gate.wait(60)
        return real(self)

    monkeypatch.setattr(Expander, "_fused_source", slow)


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_wait_for_the_loop_polls_the_limits_and_the_build_goes_on_for_the_next_search(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A level that waited for the loop's build ran past --time-limit (6,3,3,3 with three spaces:
    check ended by the CLI's hard deadline, without its figures). The wait polls the limits; a search
    a limit stopped leaves its build going (cancelling it lost it, so every time-boxed search built it
    again), and the next search of the same loop waits for that build rather than generating its own."""
    monkeypatch.setenv("DEFERRAL_CACHE", str(tmp_path))
    gate, generated = threading.Event(), []
    _slow_source(monkeypatch, gate, generated)
    try:
        ex = _expander()
        start = time.monotonic()

        def poll() -> None:
            if time.monotonic() - start > 0.3:
                raise LimitReached("time-limit")

        with pytest.raises(LimitReached):
            ex.fused(fused.MIN_ROWS, poll=poll)
        ex.finish_fused(wait=False, detach=True)  # what a search that a limit stopped does: at once
        assert time.monotonic() - start < 1.5
        tid = ex._fused._tid
        assert tid is not None and os.getpriority(os.PRIO_PROCESS, tid) == 19  # goes on at the lowest priority
        again = _expander()
        assert again.fused(1) is None  # a small chunk does not wait for it
        gate.set()
        assert again.fused(fused.MIN_ROWS) is not None  # the first search's build, waited for
        assert len(generated) == 1 and len(list(tmp_path.glob("fused-*.so"))) == 1
    finally:
        gate.set()


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_search_waiting_for_the_loop_stops_at_its_time_limit_with_its_figures(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """At 5 and 6 VCPUs every chunk waits for the loop started at the first level: the time limit
    still stops the search within about a second, with the states and depth it covered."""
    monkeypatch.setenv("DEFERRAL_CACHE", str(tmp_path))
    monkeypatch.setenv(fused.ENV_BUILD_FROM, "0")
    gate, generated = threading.Event(), []
    _slow_source(monkeypatch, gate, generated)
    try:
        start = time.monotonic()
        # the first level (6 states) takes about a second: tracing the steps for numpy
        result = explore_vectorized(REFERENCE, Bounds(5, 1, 1, 1), time_limit=2.5, workers=1)
        assert time.monotonic() - start < 4
        assert result.stopped_by == "time-limit" and not result.complete and result.states >= 1
    finally:
        gate.set()


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_search_that_ends_waits_for_the_build_no_later_than_its_time_limit_or_the_commands(
        monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A search that runs to its end waits for its background build (then cached for the next
    process), but it waited up to two minutes whatever its time limit: prove --timeout 5's routes
    (the explicit search, the learning routes' samples) waited for the compiler, and the command
    ended by the CLI's alarm without its figures. The wait ends at the search's time limit or the
    command's, and the build goes on."""
    monkeypatch.setenv("DEFERRAL_CACHE", str(tmp_path))
    monkeypatch.setenv(fused.ENV_BUILD_FROM, "400")  # 2,1,1,1 has 3,163 states: built from its middle
    gate, generated = threading.Event(), []
    _slow_source(monkeypatch, gate, generated)
    try:
        start = time.monotonic()
        result = explore_vectorized(REFERENCE, Bounds(2, 1, 1, 1), time_limit=4.0, workers=1)
        assert result.complete and generated and time.monotonic() - start < 5.5
        start = time.monotonic()
        with command_ends_by(time.monotonic() + 4.0):  # what `prove --timeout 4` sets
            result = explore_vectorized(PUBLISHED["wait-irqs-off"], Bounds(2, 1, 1, 1), workers=1)
        assert result.complete and len(generated) == 2 and time.monotonic() - start < 5.5
    finally:
        gate.set()


_LEAVES_A_BUILD = """
import os, sys, time
from pathlib import Path
from deferral.checks.explicit import cbuild
from deferral.checks.explicit.expand import Expander
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model

ex = Expander(Model(REFERENCE, Bounds(2, 1, 1, 1)), True)
ex.start_fused()
end = time.monotonic() + 60
while not cbuild._compiling and time.monotonic() < end:  # until the compiler runs, as a time limit would hit it
    time.sleep(0.005)
time.sleep(0.05)
assert not list(Path(os.environ["DEFERRAL_CACHE"]).glob("fused-*.so")), "built before the process ended"
ex.finish_fused(wait=False, detach=True)  # what a search a time limit stopped does; then the process ends
print("left", flush=True)
"""


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_build_left_going_outlives_its_process_and_the_next_process_waits_for_it(monkeypatch: pytest.MonkeyPatch,
                                                                                   tmp_path) -> None:
    """Before: a build a time-limited search left going died with its process (its compiler was killed at
    exit), so every time-boxed `check --vcpus 6 --pages 3 --frames 3 --queue 3 --spaces 3 --time-limit 20`
    started it again and never used the compiled loop. Now the compiler outlives the process, and the
    next process waits for that build (it does not generate the C again) and loads what it lands."""
    import subprocess
    import sys

    monkeypatch.setenv("DEFERRAL_CACHE", str(tmp_path))
    done = subprocess.run([sys.executable, "-c", _LEAVES_A_BUILD], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "left" in done.stdout, done.stderr

    def no_source(self: Expander) -> Any:
        raise AssertionError("the C was generated again")

    monkeypatch.setattr(Expander, "_fused_source", no_source)
    ex = _expander()
    assert ex.fused(fused.MIN_ROWS) is not None  # the first process's build, waited for or landed
    assert len(list(tmp_path.glob("fused-*.so"))) == 1
    end = time.monotonic() + 10  # the builder cleans up right after it renamed the library in
    while (list(tmp_path.glob("fused-*.lock")) or list(tmp_path.glob("tmp*"))) and time.monotonic() < end:
        time.sleep(0.05)
    assert not list(tmp_path.glob("fused-*.lock")) and not list(tmp_path.glob("tmp*"))
    # the first process's claim on the key, if its exit left one, is stale: no build holds it
    assert all(cbuild.claimant(p.name[4:-5], tmp_path) is None for p in tmp_path.glob("key-*.lock"))


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_stale_lock_from_a_killed_build_is_taken_over(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import subprocess

    source = "int one(void) { return 1; }\n"
    lib = tmp_path / f"fused-{cbuild._digest(cbuild.compiler() or 'cc', source)}.so"
    gone = subprocess.Popen(["true"])
    gone.wait()
    lib.with_suffix(".lock").write_text(f"{gone.pid}\n")  # a build killed before it removed its lock
    start = time.monotonic()
    got = cbuild.load(source, folder=tmp_path)
    assert got.lib is not None and got.problem is None and lib.exists()
    assert time.monotonic() - start < 30 and not lib.with_suffix(".lock").exists()


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_build_in_progress_elsewhere_is_waited_for_not_repeated(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import subprocess

    source = "int two(void) { return 2; }\n"
    cc = cbuild.compiler() or "cc"
    lib = tmp_path / f"fused-{cbuild._digest(cc, source)}.so"
    builder = subprocess.Popen(["sleep", "30"])  # stands for another process's compiler
    try:
        lib.with_suffix(".lock").write_text(f"{builder.pid}\n")
        cancel = threading.Event()
        timer = threading.Timer(0.5, cancel.set)
        timer.start()
        assert cbuild.load(source, folder=tmp_path, cancel=cancel).lib is None  # waited, not built
        assert not lib.exists() and lib.with_suffix(".lock").exists()

        def lands() -> None:  # the other build ends: its library renamed in, its lock removed
            c_file = tmp_path / "two.c"
            c_file.write_text(source)
            subprocess.run([cc, *cbuild.FLAGS, "-o", str(tmp_path / "two.so"), str(c_file)], check=True)
            os.replace(tmp_path / "two.so", lib)
            lib.with_suffix(".lock").unlink()

        threading.Timer(0.3, lands).start()
        got = cbuild.load(source, folder=tmp_path)
        assert got.lib is not None and not cbuild.built_last()  # loaded what the other build landed
    finally:
        builder.kill()
        builder.wait()


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_search_waits_for_another_process_generating_the_same_loop(monkeypatch: pytest.MonkeyPatch,
                                                                     tmp_path) -> None:
    """One mechanism for a build in this process and in another: the key's claim in the cache folder
    (before, a registry of this process's builds: another process's generation was repeated)."""
    import shutil
    import subprocess

    built, shared = tmp_path / "built", tmp_path / "shared"
    monkeypatch.setenv("DEFERRAL_CACHE", str(built))
    assert _expander().fused(None) is not None  # the loop, built once
    key = _expander()._fused_key(True)
    assert key is not None
    shared.mkdir()
    monkeypatch.setenv("DEFERRAL_CACHE", str(shared))
    other = subprocess.Popen(["sleep", "30"])  # stands for another process generating the C
    try:
        (shared / f"key-{key}.lock").write_text(f"{other.pid} {other.pid}\n")

        def lands() -> None:  # that process's build ends: its library and key, its claim released
            for path in built.iterdir():
                shutil.copy(path, shared / path.name)
            (shared / f"key-{key}.lock").unlink()

        def no_source(self: Expander) -> Any:
            raise AssertionError("the C was generated again")

        monkeypatch.setattr(Expander, "_fused_source", no_source)
        threading.Timer(0.5, lands).start()
        start = time.monotonic()
        assert _expander().fused(fused.MIN_ROWS) is not None and time.monotonic() - start >= 0.4
    finally:
        other.kill()
        other.wait()
