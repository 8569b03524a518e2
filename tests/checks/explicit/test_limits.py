"""Limits and process hygiene of `deferral check`: time and memory limits stop a search in the
middle of a level with exit 3 and partial figures; killing it leaves no process behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from deferral.checks.explicit.limits import LimitReached, Limits, default_memory_limit, rss_bytes
from deferral.checks.explicit.parallel import ordered_map

#: 2,2,1,2: 4.5M states, far more than the few seconds these tests let it run.
BIG = ["--vcpus", "2", "--pages", "2", "--frames", "1", "--queue", "2"]
#: A search of minutes (117,488,199 states): mid-search after seconds whatever the machine, the C
#: loop cached or not (2,2,1,2 ends in under 2 s on an idle machine once its loop is cached)
LONG = ["--vcpus", "2", "--pages", "2", "--frames", "2", "--queue", "2"]
CLI = [sys.executable, "-m", "deferral.cli"]


def _descendants(pid: int) -> set[int]:
    """Processes whose parent chain reaches ``pid`` (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            out.add(c)
            todo.append(c)
    return out


def _wait_for_cpu(pid: int, seconds: float, timeout: float = 120) -> None:
    """Wait until process ``pid`` has used ``seconds`` of CPU (a loaded machine starts slowly)."""
    tick = os.sysconf("SC_CLK_TCK")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / tick >= seconds:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not get {seconds} s of CPU in {timeout} s")


def _sigint_as_from_a_terminal() -> None:
    """In the child before exec: SIGINT at its default, as a terminal's Ctrl-C finds it.

    A process started with SIGINT ignored (a background job of a non-interactive shell, some
    test runners' workers) keeps ignoring it, as POSIX tools do: Python then installs no
    KeyboardInterrupt handler and the search runs to its verdict. The test is about Ctrl-C.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _session(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[3])
    except (OSError, ValueError, IndexError):
        return None


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT])
def test_killed_search_leaves_no_process_behind(sig: signal.Signals) -> None:
    proc = subprocess.Popen([*CLI, "check", *LONG, "--workers", "2", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=_sigint_as_from_a_terminal)
    try:
        _wait_for_cpu(proc.pid, 3.0)  # in the middle of the search (about 20 s of work), past start-up
        assert proc.poll() is None
        family = _descendants(proc.pid)
        os.kill(proc.pid, sig)
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == (130 if sig == signal.SIGINT else -sig)
    time.sleep(0.5)
    # a compiler building the fused loop for the cache runs in a session of its own and may finish its
    # build (checks/explicit/cbuild.py: a build outlives its process); every other process ends
    assert not [p for p in family if _alive(p) and _session(p) == proc.pid], "a worker outlived the search"
    with pytest.raises(ProcessLookupError):
        os.killpg(proc.pid, 0)  # nothing is left in the search's process group


def test_time_limit_stops_inside_a_level_exit_3() -> None:
    start = time.monotonic()
    out = subprocess.run([*CLI, "check", *LONG, "--time-limit", "1.5", "--json"], capture_output=True,
                         text=True, timeout=120)
    wall = time.monotonic() - start
    assert out.returncode == 3, out.stderr
    result = json.loads(out.stdout)
    assert result["complete"] is False and 0 < result["states"] < 117_488_199
    assert result["elapsed_s"] < 1.5 + 3.0  # the search itself: within seconds of the limit
    assert wall < 30  # the whole process, start-up included, on a loaded machine
    assert all(p["status"] == "unknown" for p in result["properties"])


def test_memory_limit_stops_with_partial_figures_exit_3() -> None:
    out = subprocess.run([*CLI, "check", *BIG, "--memory-limit", "100M", "--json"], capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 3, out.stderr
    result = json.loads(out.stdout)
    assert result["complete"] is False and 1 < result["states"] < 4_515_824
    assert result["stats"]["memory_limit_bytes"] == 100 << 20 and result["stopped_by"] == "memory-limit"
    # the whole search peaks at about 150 MiB here, so 100M stops it part-way. The limit is polled
    # every 0.05 s and after each chunk, and what a chunk's expansion and a level's merge will
    # allocate is counted before they start: the peak stays under it on a quiet machine; one run
    # beside other CPU-heavy jobs peaked at 1.17x, hence the margin (benchmarks/bench_limits.py)
    assert result["stats"]["peak_rss_bytes"] <= 1.25 * (100 << 20), result["stats"]


def test_memory_limit_flag_is_checked() -> None:
    out = subprocess.run([*CLI, "check", "--memory-limit", "lots"], capture_output=True, text=True)
    assert out.returncode == 2 and "--memory-limit" in out.stderr and "Traceback" not in out.stderr


def test_default_memory_limit_is_a_share_of_available_memory() -> None:
    limit = default_memory_limit()
    if limit is None:
        pytest.skip("no memory figures on this system")
    assert rss_bytes() < limit


def test_poll_interrupts_a_task_that_never_returns() -> None:
    """The time limit holds even while a chunk (here: a step stuck forever) is running."""
    limits = Limits(time.monotonic(), time_limit=0.3)

    def stuck(i: int) -> int:
        time.sleep(3600) if i == 1 else None
        return i

    got = []
    start = time.monotonic()
    with pytest.raises(LimitReached) as info:
        for value in ordered_map(stuck, 4, 2, poll=limits.check, poll_every=0.05):
            got.append(value)
    assert info.value.reason == "time-limit"
    assert got == [0] and time.monotonic() - start < 2


def test_ordered_map_keeps_order_and_reraises() -> None:
    assert list(ordered_map(lambda i: i * i, 50, 3)) == [i * i for i in range(50)]

    def bad(i: int) -> int:
        if i == 7:
            raise KeyError("seven")
        return i

    with pytest.raises(KeyError):
        list(ordered_map(bad, 20, 2))


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs /proc")
def test_sigterm_removes_the_spill_folder_then_dies_of_sigterm(tmp_path: Path) -> None:
    """SIGTERM (timeout, CI runners) mid-search: the --work-dir folder of spilled runs is removed,
    the report says so, and the process still ends by SIGTERM (never a verdict's exit code)."""
    proc = subprocess.Popen([*CLI, "check", *LONG, "--workers", "2", "--work-dir", str(tmp_path),
                             "--spill-above", "1", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, start_new_session=True)
    try:
        _wait_for_cpu(proc.pid, 3.0)
        assert proc.poll() is None
        assert list(tmp_path.iterdir()), "the search has not spilled yet"
        os.kill(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGTERM
    assert "terminated (SIGTERM)" in err.decode()
    assert json.loads(out)["exit_code"] == 143
    assert not list(tmp_path.iterdir()), "the spill folder outlived the search"


def test_a_chunk_left_running_by_a_limit_stops_soon_after(monkeypatch: pytest.MonkeyPatch) -> None:
    """A time limit ends the search while a worker thread still expands a chunk (the first levels
    trace every step's kernels: seconds at big bounds). The chunk's result is dropped, but it ran
    to its end, using the CPU of what came next (prove's next route, in the same process): it now
    stops at its next step instance."""
    from deferral.checks.explicit import vectorized
    from deferral.checks.explicit.expand import Expander
    from deferral.model import REFERENCE, Bounds

    calls: list[float] = []
    enabled = Expander.enabled

    def slow(self: Expander, rows: Any, action: Any) -> Any:
        calls.append(time.monotonic())
        time.sleep(0.05)
        return enabled(self, rows, action)

    monkeypatch.setattr(Expander, "enabled", slow)
    monkeypatch.setenv("DEFERRAL_CC", "0")  # the numpy path, a step instance at a time
    result = vectorized.explore_vectorized(REFERENCE, Bounds(2, 2, 1, 1), time_limit=0.3, workers=1)
    ended, before = time.monotonic(), len(calls)
    time.sleep(1.0)
    assert result.stopped_by == "time-limit"
    assert sum(t > ended for t in calls) <= 1 and len(calls) - before <= 1
