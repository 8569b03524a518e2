"""Each published bug, as the engine implements it, produces traces that show the violation.

Threaded runs for the bugs random guests hit quickly (the online checker and replay must
agree on it, and the reference model must reject the same trace); the model's shortest
counterexample, single-stepped through the engine, for ipi-before-drain (a narrow race)
and every invariant bug; a timeout-detected deadlock for wait-irqs-off.
"""

from __future__ import annotations

import pytest

from deferral.engine.bugs import bugs_for
from deferral.engine.conform import conform_depth, engine_can_leave_wait, follow, record
from deferral.engine.conform import end_state, engine_failing
from deferral.engine.runner import RunConfig, run
from deferral.model import REFERENCE, Bounds, get_variant
from deferral.model.concrete import Model
from deferral.traces.replay import replay

SMALL = Bounds(2, 1, 1, 1)

@pytest.mark.parametrize("variant,bounds", [("drain-local-only", SMALL), ("remote-no-drain", SMALL),
                                            ("reload-no-drain", SMALL), ("overflow-drop", Bounds(2, 2, 1, 1))])
def test_threaded_run_shows_the_violation_and_replay_agrees(variant: str, bounds: Bounds) -> None:
    for seed in range(8):
        result = run(RunConfig(bounds, variant, seconds=1.0, seed=seed, snapshots=True, max_steps=800))
        s = result.summary
        if not s["violations"]["steps"]:
            continue
        report = replay(result.trace, get_variant(variant))
        assert report.ok, report.divergence and report.divergence.describe()
        assert report.violated_properties == ["no_stale_translation"]
        first = s["violations"]["first"]["step_number"]
        assert min(n for n, _ in report.violations) == first  # the online checker agrees with the model
        assert not replay(result.trace, REFERENCE).ok  # the reference model rejects the buggy engine
        return
    raise AssertionError(f"{variant}: no violation in 8 threaded runs")


# The lengths are PROTOCOL.md's shortest counterexamples, found by the model checker.
@pytest.mark.parametrize("variant,length", [("ipi-before-drain", 6), ("reload-no-drain", 5),
                                            ("remote-no-drain", 7), ("drain-local-only", 8)])
def test_engine_breaks_the_invariant_along_the_models_counterexample(variant: str, length: int) -> None:
    from deferral.engine.conform import counterexample_actions

    model = Model(get_variant(variant), SMALL)
    path = counterexample_actions(model, "no_stale_translation")
    assert path is not None and len(path) == length
    report, stepper = follow(model, bugs_for(variant), path)
    assert report.mismatch is None, report.mismatch.describe()
    stale = engine_failing(model, stepper, end_state(model, path), "no_stale_translation")
    assert stale, "the engine's own state (with the model's ghosts) is not stale"
    trace = record(model, bugs_for(variant), path)
    rep = replay(trace, get_variant(variant))
    assert rep.ok and [n for n, _ in rep.violations][:1] == [length]
    # the reference engine cannot take this path: conform reports where it departs
    ref_report, _ = follow(Model(get_variant(variant), SMALL), bugs_for("reference"), path)
    assert ref_report.mismatch is not None


def test_wait_irqs_off_deadlocks_in_the_threaded_engine() -> None:
    for seed in range(3):
        result = run(RunConfig(SMALL, "wait-irqs-off", seconds=0.3, seed=seed, snapshots=True, grace=0.3))
        s = result.summary
        if s["stuck"]:
            break
    assert s["stuck"], "no initiator got stuck in 3 runs"
    assert s["deadlocked"] and not s["threads_alive"] and s["elapsed_s"] < 5
    assert s["shootdowns"]["completed"] < s["shootdowns"]["started"]
    assert replay(result.trace, get_variant("wait-irqs-off")).ok
    reference = run(RunConfig(SMALL, "reference", seconds=0.3, seed=0, grace=0.3))
    assert reference.summary["stuck"] == []


def test_wait_irqs_off_engine_cannot_leave_the_wait() -> None:
    """Along the model's 3-step liveness counterexample, the engine's own steps never end SdWait."""
    path = [("shootdown", (0, 0)), ("shootdown", (1, 0)), ("send_ipis", (0,))]
    for variant, stuck in (("wait-irqs-off", True), ("reference", False)):
        model = Model(get_variant(variant), SMALL)
        actions = [model.find_action(n, a) for n, a in path]
        report, stepper = follow(model, bugs_for(variant), actions)
        assert report.mismatch is None
        assert engine_can_leave_wait(stepper) is (not stuck)


@pytest.mark.parametrize("variant", ["reference", "drain-local-only", "ipi-before-drain", "remote-no-drain",
                                     "reload-no-drain", "wait-irqs-off", "overflow-drop"])
def test_every_variant_conforms_to_its_model(variant: str) -> None:
    bounds = Bounds(2, 2, 1, 1) if variant == "overflow-drop" else SMALL
    report = conform_depth(Model(get_variant(variant), bounds), bugs_for(variant), 3 if bounds.pages > 1 else 4)
    assert report.mismatch is None, report.mismatch.describe()
    assert report.complete and report.steps > 100
