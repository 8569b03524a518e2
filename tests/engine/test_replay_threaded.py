"""The reference engine, run multithreaded across many seeds, is accepted by replay."""

from __future__ import annotations

import pytest

from deferral.engine.runner import RunConfig, run
from deferral.model import REFERENCE, Bounds
from deferral.traces.replay import replay

BOUNDS = [Bounds(2, 1, 1, 1), Bounds(2, 2, 2, 1), Bounds(3, 1, 1, 2), Bounds(3, 2, 1, 1), Bounds(4, 1, 2, 1)]


@pytest.mark.parametrize("seed", range(10))
def test_replay_accepts_reference_engine_traces(seed: int) -> None:
    bounds = BOUNDS[seed % len(BOUNDS)]
    result = run(RunConfig(bounds, "reference", seconds=1.0, seed=seed, snapshots=True, max_steps=400))
    s = result.summary
    assert not s["errors"] and not s["threads_alive"]
    assert s["steps"] > 50, "the threads barely ran"
    assert s["violations"]["steps"] == 0 and s["stuck"] == []
    assert s["shootdowns"]["started"] == s["shootdowns"]["completed"]
    assert s["ipis"]["sent"] == s["ipis"]["taken"] == s["ipis"]["acked"]
    assert result.trace is not None and len(result.trace.steps) == s["steps"]
    report = replay(result.trace, REFERENCE)
    assert report.ok, report.divergence and report.divergence.describe()
    assert report.violations == []
    assert report.steps_replayed == s["steps"]


def test_threads_really_interleave() -> None:
    """Steps of different VCPUs alternate in the recorded order (not one thread after another)."""
    result = run(RunConfig(Bounds(2, 1, 1, 1), "reference", seconds=0.2, seed=1, max_steps=600))
    assert result.trace is not None
    owners = [st.args.get("i", st.args.get("k")) for st in result.trace.steps]
    switches = sum(1 for a, b in zip(owners, owners[1:]) if a != b)
    assert switches > len(owners) // 10


def test_scripted_guests_run_to_completion_and_replay() -> None:
    from deferral.engine.guest import scripted

    programs = {
        0: [("write", 0, 1), ("access", 0), ("shootdown", 0), ("write", 0, 0), ("invlpg", 0), ("reload",)],
        1: [("access", 0), ("write", 0, 1), ("shootdown", 0), ("access", 0), ("reload",)],
    }
    result = run(RunConfig(Bounds(2, 1, 1, 1), "reference", seconds=2.0, snapshots=True,
                           programs=lambda i: scripted(programs[i])))
    s = result.summary
    assert s["stuck"] == [] and s["final_pc"] == ["Idle", "Idle"]
    assert s["by_step"]["shootdown"] == s["by_step"]["shootdown_done"] == 2
    assert s["by_step"]["write"] == 3 and s["by_step"]["finish_reload"] == 2
    assert replay(result.trace, REFERENCE).ok
