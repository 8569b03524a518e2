"""A deliberately injected deviation is caught at the right step, by replay and by conform."""

from __future__ import annotations

from deferral.engine.bugs import Bugs
from deferral.engine.conform import conform_depth, follow, record
from deferral.engine.runner import RunConfig, run
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.traces.replay import replay

B = Bounds(2, 1, 1, 2)
SKIP = Bugs(skip_resync_vcpu=1)
# VCPU 1 maps page 0; VCPU 0 rewrites it and drains: VCPU 1's shadow must be resynced.
PATH = [("write", (0, 0, 1)), ("shadow_fault", (1, 0)), ("write", (0, 0, 0)), ("invlpg", (0, 0)),
        ("drain_one", (0,))]


def actions(model: Model, path: list[tuple[str, tuple[int, ...]]]) -> list:
    found = [model.find_action(name, args) for name, args in path]
    assert all(a is not None for a in found)
    return found


def test_replay_catches_skipped_resync_at_the_drain() -> None:
    model = Model(REFERENCE, B)
    trace = record(model, SKIP, actions(model, PATH))
    report = replay(trace, REFERENCE)
    assert not report.ok
    d = report.divergence
    assert d.step_number == 5 and d.step == "drain_one(0)"
    assert d.expected == {"shadow[1][0]": 0} and d.actual == {"shadow[1][0]": 1}
    assert replay(record(model, Bugs(), actions(model, PATH)), REFERENCE).ok


def test_conform_catches_skipped_resync_at_the_drain() -> None:
    model = Model(REFERENCE, B)
    report, _ = follow(model, SKIP, actions(model, PATH))
    m = report.mismatch
    assert m is not None and m.kind == "state"
    assert m.step_number == 5 and m.step == "drain_one(0)"
    assert m.expected == {"shadow[1][0]": 0} and m.actual == {"shadow[1][0]": 1}
    assert follow(model, Bugs(), actions(model, PATH))[0].mismatch is None


def test_conform_depth_finds_a_shortest_mismatch() -> None:
    model = Model(REFERENCE, Bounds(2, 1, 1, 1))
    report = conform_depth(model, SKIP, 5)
    m = report.mismatch
    assert m is not None and m.kind == "state" and m.step_number == 4
    assert m.expected == {"shadow[1][0]": 0} and m.actual == {"shadow[1][0]": 1}
    assert m.step.startswith(("write", "drain_one"))  # only a drain resyncs


def test_conform_catches_forgotten_tlb_clear() -> None:
    model = Model(REFERENCE, Bounds(1, 1, 1, 1))
    report = conform_depth(model, Bugs(keep_tlb_on_invlpg=True), 5)
    m = report.mismatch
    assert m is not None and m.step.startswith("finish_invlpg") and m.expected == {"tlb[0][0]": 0}


def test_replay_catches_the_deviation_in_a_threaded_run() -> None:
    for seed in range(10):
        result = run(RunConfig(Bounds(2, 1, 1, 1), "reference", seconds=0.15, seed=seed, snapshots=True,
                               bugs=SKIP, max_steps=400))
        report = replay(result.trace, REFERENCE)
        if not report.ok:
            d = report.divergence
            # the first divergence is where the skipped resync shows: a drain (or an overflow drain)
            assert result.trace.steps[d.step_number - 1].step in ("drain_one", "write")
            assert set(d.expected) == {"shadow[1][0]"}
            return
    raise AssertionError("no threaded run exposed the injected deviation in 10 seeds")
