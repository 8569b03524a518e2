"""The judge: the model's ghosts and invariants along engine steps, memoised soundly."""

from __future__ import annotations

import random

import pytest

from deferral.engine.bugs import Bugs
from deferral.engine.conform import record
from deferral.engine.judge import Encoder, Judge, Transitions, engine_view
from deferral.engine.runner import RunConfig, run
from deferral.model import Bounds, get_variant
from deferral.model.concrete import Model


@pytest.mark.parametrize("variant,bounds", [("reference", Bounds(3, 2, 2, 1)), ("overflow-drop", Bounds(2, 2, 1, 1)),
                                            ("ipi-before-drain", Bounds(2, 1, 1, 1))])
def test_memoised_transitions_equal_the_models(variant: str, bounds: Bounds) -> None:
    """Every (state, action) on random walks: the read-set memo gives Model.apply's answer."""
    model = Model(get_variant(variant), bounds)
    memo, enc = Transitions(model, 100_000), Encoder(model)
    assert enc.fast
    rng = random.Random(3)
    hits = 0
    for _ in range(3):
        state = model.initial
        for _ in range(30):
            for action in model.actions:
                before = memo.size
                assert memo.apply(state, action) == model.apply(state, action), action.label()
                hits += memo.size == before
            assert enc.encode(engine_view(model, state), state) == state
            state = model.apply(state, rng.choice([a for a in model.actions if model.enabled(state, a)]))
    assert hits > memo.size  # the memo is used, not only filled


def test_engine_snapshots_carry_no_ghosts_and_the_judge_supplies_them() -> None:
    model = Model(get_variant("reference"), Bounds(2, 1, 1, 1))
    by_label = {a.label(): a for a in model.actions}
    actions = [by_label[label] for label in ("write(0,0,1)", "shootdown(0,0)", "drain_one(0)", "send_ipis(0)",
                                             "take_ipi(1,0)", "ack_ipi(1)", "shootdown_done(0)")]
    trace = record(model, Bugs(), actions)
    assert all(not {"lw", "req", "covers"} & set(step.state) for step in trace.steps)
    judge = Judge(model, trace.initial)
    state = model.initial
    for tstep, action in zip(trace.steps, actions):
        judge.step(tstep.step, tstep.args, tstep.state)
        state = model.apply(state, action)
        assert judge.state == state  # ghosts included: the model's own
    assert model.to_json(state)["req"] == [[True], [True]]
    assert judge.flush() == [] and judge.divergent_steps == 0


def test_the_online_judge_reports_an_engine_that_diverges() -> None:
    for seed in range(10):
        result = run(RunConfig(Bounds(2, 1, 1, 1), "reference", seconds=0.15, seed=seed,
                               bugs=Bugs(skip_resync_vcpu=1), max_steps=400))
        d = result.summary["divergence"]
        if d["steps"]:
            assert d["first"]["reason"] == "the engine's state differs from the model's"
            assert set(d["first"]["fields"]) == {"shadow"}
            return
    raise AssertionError("no threaded run exposed the injected deviation in 10 seeds")
