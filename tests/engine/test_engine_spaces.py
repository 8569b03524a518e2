"""Address spaces in the engine: one guest table per process, a CR3 per VCPU, shadow caches.

At one space nothing changes (snapshots, traces and guest programs are those of before);
at S = 2 and 3 threaded runs replay clean, the engine conforms along random walks, and
each of the three address-space bugs breaks the invariant along the model's shortest
counterexample (paths printed by the model checker at N=2,V=1,F=1,Q=1,S=2; PROTOCOL.md's
lengths 7, 9 and 12).
"""

from __future__ import annotations

import itertools

import pytest

from deferral.engine.bugs import Bugs, bugs_for
from deferral.engine.conform import conform_random, end_state, engine_failing, follow, record
from deferral.engine.guest import random_program, scripted
from deferral.engine.hypervisor import Hypervisor
from deferral.engine.runner import RunConfig, run
from deferral.engine.tracing import snapshot
from deferral.model import Bounds, get_variant
from deferral.model.bounds import BoundsError
from deferral.model.concrete import Model
from deferral.model.variants import VariantError
from deferral.traces.replay import replay


def _spaces(n: int, s: int, v: int = 1) -> Bounds | None:
    try:
        return Bounds(vcpus=n, pages=v, frames=1, queue=1, spaces=s)
    except (BoundsError, TypeError):
        return None


def _model_has_spaces() -> bool:
    if _spaces(2, 2) is None:
        return False
    try:
        get_variant("switch-no-drain")
    except VariantError:
        return False
    return True


needs_spaces = pytest.mark.skipif(not _model_has_spaces(), reason="the model has no address spaces yet")


def test_one_space_is_the_engine_of_before() -> None:
    b = Bounds(2, 2, 2, 1)
    hv = Hypervisor(b)
    assert set(snapshot(hv)) == {"gpt", "shadow", "tlb", "queue", "pc", "pg", "ipi", "cur", "waitret", "waiting"}
    assert snapshot(hv)["shadow"] == [[0, 0], [0, 0]]
    ops = list(itertools.islice(random_program(5, 0, b), 300))
    assert {op.kind for op in ops} == {"write", "access", "invlpg", "reload", "shootdown"}
    assert all(op.space == 0 for op in ops)
    trace = run(RunConfig(b, seconds=1.0, seed=3, max_steps=200)).trace
    assert trace is not None and all("s" not in step.args for step in trace.steps)


@needs_spaces
@pytest.mark.parametrize("bounds_args,seed", [((2, 2), 0), ((3, 2), 2), ((2, 3, 2), 4)])
def test_threaded_runs_with_spaces_replay_clean(bounds_args: tuple[int, ...], seed: int) -> None:
    bounds = _spaces(*bounds_args)
    result = run(RunConfig(bounds, "reference", seconds=1.5, seed=seed, snapshots=True, max_steps=700))
    s = result.summary
    assert not s["errors"] and not s["threads_alive"] and s["stuck"] == []
    assert s["violations"]["steps"] == 0 and s["divergence"]["steps"] == 0
    assert s["by_step"]["switch_cr3"] > 0  # the guests switch processes
    assert {"cr3", "sp"} <= set(result.trace.steps[-1].state)
    report = replay(result.trace, get_variant("reference"))
    assert report.ok, report.divergence and report.divergence.describe()
    assert report.violations == [] and report.steps_replayed == s["steps"]


@needs_spaces
@pytest.mark.parametrize("variant,spaces", [("reference", 2), ("reference", 3), ("defer-non-current", 2),
                                            ("switch-no-drain", 2), ("resync-running-only", 2),
                                            ("drain-local-only", 3)])
def test_the_engine_conforms_with_spaces_along_random_walks(variant: str, spaces: int) -> None:
    model = Model(get_variant(variant), _spaces(2, spaces))
    report = conform_random(model, bugs_for(variant), 6, 30, seed=spaces)
    assert report.mismatch is None, report.mismatch.describe()
    assert report.steps > 120


# The model's shortest counterexamples (N=2,V=1,F=1,Q=1,S=2).
COUNTEREXAMPLES = {
    "switch-no-drain": ["write(0,0,0,1)", "shadow_fault(0,0)", "write(0,0,0,0)", "switch_cr3(0,1)", "finish_reload(0)",
                        "switch_cr3(0,0)", "finish_reload(0)"],
    "defer-non-current": ["switch_cr3(0,1)", "finish_reload(0)", "write(1,1,0,1)", "shadow_fault(0,0)",
                          "write(1,1,0,0)", "shootdown(1,1,0)", "send_ipis(1)", "take_ipi(0,1)", "ack_ipi(0)"],
    "resync-running-only": ["write(0,0,0,1)", "shadow_fault(1,0)", "switch_cr3(1,1)", "finish_reload(1)",
                            "write(0,0,0,0)", "shootdown(0,0,0)", "drain_one(0)", "send_ipis(0)", "take_ipi(1,0)",
                            "ack_ipi(1)", "switch_cr3(1,0)", "finish_reload(1)"],
}


@needs_spaces
@pytest.mark.parametrize("variant", sorted(COUNTEREXAMPLES))
def test_each_space_bug_breaks_the_invariant_along_the_models_counterexample(variant: str) -> None:
    model = Model(get_variant(variant), _spaces(2, 2))
    by_label = {a.label(): a for a in model.actions}
    path = [by_label[label] for label in COUNTEREXAMPLES[variant]]
    report, stepper = follow(model, bugs_for(variant), path)
    assert report.mismatch is None, report.mismatch.describe()
    assert engine_failing(model, stepper, end_state(model, path), "no_stale_translation")
    rep = replay(record(model, bugs_for(variant), path), get_variant(variant))
    assert rep.ok and [n for n, _ in rep.violations][:1] == [len(path)]  # first violated at the last step
    ref = follow(model, Bugs(), path)[0]  # the correct engine cannot follow the buggy path
    assert ref.mismatch is not None


@needs_spaces
def test_a_write_to_another_process_is_resynced_at_once_and_a_switch_drains() -> None:
    b = _spaces(2, 2)
    programs = {
        0: [("write", 0, 1), ("access", 0), ("switch", 0, 0, 1), ("write", 0, 0, 0), ("switch", 0, 0, 0),
            ("access", 0)],
        1: [("access", 0), ("write", 0, 1, 1), ("shootdown", 0, 0, 1), ("switch", 0, 0, 1), ("access", 0)],
    }
    # grace: a loaded machine (the suite runs on two processes) may leave a VCPU thread waiting
    # for seconds; a scripted program that ends never waits for it
    result = run(RunConfig(b, seconds=2.0, grace=30.0, snapshots=True, programs=lambda i: scripted(programs[i])))
    s = result.summary
    assert s["stuck"] == [] and s["violations"]["steps"] == 0 and s["divergence"]["steps"] == 0
    assert s["by_step"]["switch_cr3"] == 3 and s["by_step"]["shootdown_done"] == 1
    report = replay(result.trace, get_variant("reference"))
    assert report.ok and report.violations == []
    writes = [st for st in result.trace.steps if st.step == "write"]
    assert {(w.args["i"], w.args["s"]) for w in writes} == {(0, 0), (1, 1)}
    # VCPU 1 writes process 1's table while it runs process 0: no notice is queued for it
    other = next(st for st in result.trace.steps if st.step == "write" and st.args["i"] == 1)
    assert other.state["queue"][1] == [] and other.state["cr3"][1] == 0
