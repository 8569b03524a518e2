"""Replay judges traces: counterexamples replay, an altered step is caught at that step."""

from __future__ import annotations

import copy

import pytest

from deferral.checks.explicit.search import search
from deferral.model import PUBLISHED, Bounds
from deferral.model.concrete import Model
from deferral.traces.format import loads
from deferral.traces.replay import path_to_trace, replay

CASES = [("drain-local-only", (2, 1, 1, 1)), ("ipi-before-drain", (2, 1, 1, 1)),
         ("remote-no-drain", (2, 1, 1, 1)), ("reload-no-drain", (2, 1, 1, 1)),
         ("overflow-drop", (2, 2, 1, 1))]


@pytest.mark.parametrize("symmetry", [True, False], ids=["sym", "nosym"])
@pytest.mark.parametrize("name, bounds", CASES, ids=[c[0] for c in CASES])
def test_every_counterexample_replays_and_violates(name: str, bounds: tuple[int, ...], symmetry: bool,
                                                  searched) -> None:
    variant, b = PUBLISHED[name], Bounds(*bounds)
    outcome = searched(name, bounds, symmetry).outcome("no_stale_translation")
    trace = path_to_trace(Model(variant, b), outcome.path, outcome.name)
    report = replay(loads(trace.dumps()), variant)
    assert report.ok
    assert report.violated_properties == ["no_stale_translation"]
    assert report.violations[0][0] == outcome.length  # violated first at the last step
    # The same steps under the reference do not replay: the bug is in the variant.
    judged_by_reference = replay(trace, PUBLISHED["reference"])
    assert not (judged_by_reference.ok and judged_by_reference.violations)


def counterexample() -> tuple[Model, dict]:
    variant = PUBLISHED["remote-no-drain"]
    model = Model(variant, Bounds(2, 1, 1, 1))
    outcome = search(variant, model.bounds, symmetry=False).outcome("no_stale_translation")
    return model, path_to_trace(model, outcome.path, outcome.name).to_json()


@pytest.mark.parametrize("position", [0, 3, 6])
def test_altered_state_is_rejected_at_that_step(position: int) -> None:
    model, doc = counterexample()
    altered = copy.deepcopy(doc)
    state = altered["steps"][position]["state"]
    state["gpt"][0] = 1 - state["gpt"][0]
    report = replay(loads(__import__("json").dumps(altered)), model.protocol)
    assert not report.ok
    assert report.divergence.step_number == position + 1
    assert set(report.divergence.expected) == {"gpt[0]"}


def test_disabled_step_is_rejected_with_the_guard_fields() -> None:
    model, doc = counterexample()
    altered = copy.deepcopy(doc)
    altered["steps"].insert(0, {"step": "finish_invlpg", "args": {"i": 0}})
    report = replay(loads(__import__("json").dumps(altered)), model.protocol)
    assert report.divergence.step_number == 1
    assert "not enabled" in report.divergence.reason
    assert report.divergence.expected == {"pc[0]": "Idle", "len(queue[0])": 0}


@pytest.mark.parametrize("step, reason", [
    ({"step": "teleport", "args": {}}, "has no step 'teleport'"),
    ({"step": "reload_cr3", "args": {"k": 0}}, "do not match the step's parameters"),
    ({"step": "reload_cr3", "args": {"i": 5}}, "outside vcpu"),
])
def test_unknown_or_bad_steps_are_rejected(step: dict, reason: str) -> None:
    model, doc = counterexample()
    doc["steps"] = [step]
    report = replay(loads(__import__("json").dumps(doc)), model.protocol)
    assert report.divergence.step_number == 1 and reason in report.divergence.reason


def test_liveness_counterexample_is_confirmed_by_replay() -> None:
    variant = PUBLISHED["wait-irqs-off"]
    model = Model(variant, Bounds(2, 1, 1, 1))
    outcome = search(variant, model.bounds).outcome("shootdowns_can_complete")
    trace = path_to_trace(model, outcome.path, outcome.name,
                          expected={"outcome": "violates", "property": outcome.name})
    report = replay(trace, variant)
    assert report.ok and report.liveness == {"shootdowns_can_complete": False}
    assert report.violated_properties == ["shootdowns_can_complete"]
    # Under the reference the same steps leave a way out: the goal stays reachable.
    assert replay(trace, PUBLISHED["reference"]).liveness == {"shootdowns_can_complete": True}


def test_a_step_state_with_other_variables_than_the_trace_is_malformed() -> None:
    """A trace whose states change their variables midway is not a trace of any protocol:
    bad input (malformed), not a divergence from the model."""
    model, doc = counterexample()
    altered = copy.deepcopy(doc)
    altered["steps"][3]["state"]["extra"] = 1
    report = replay(loads(__import__("json").dumps(altered)), model.protocol)
    assert report.divergence.step_number == 4 and report.divergence.malformed
    assert "extra" in report.divergence.reason


def test_a_trace_of_another_protocol_diverges_and_says_so_without_calling_it_malformed() -> None:
    """A well-formed trace of a protocol with other variables does not replay here (exit 4),
    and the reason names the variables, not a malformed file."""
    model, doc = counterexample()
    altered = copy.deepcopy(doc)
    for state in [altered["initial"]] + [s["state"] for s in altered["steps"]]:
        state["flushreq"] = [False, False]
    report = replay(loads(__import__("json").dumps(altered)), model.protocol)
    d = report.divergence
    assert d.step_number == 0 and not d.malformed
    assert "malformed" not in d.reason and "flushreq" in d.reason and "remote-no-drain" in d.reason


def test_the_cli_shows_a_disabled_steps_guard_fields_as_read_not_as_a_trace_value(cli, tmp_path) -> None:
    model, doc = counterexample()
    altered = copy.deepcopy(doc)
    altered["steps"].insert(0, {"step": "finish_invlpg", "args": {"i": 0}})
    path = tmp_path / "t.json"
    path.write_text(__import__("json").dumps(altered))
    r = cli("replay", str(path))
    assert r.code == 4
    assert "trace None" not in r.out and "pc[0] = 'Idle'" in r.out


def test_a_time_limit_says_how_far_the_replay_got(cli, tmp_path) -> None:
    """It said only 'time limit reached': now how many steps replayed and whether any broke a property."""
    import json

    steps = [{"step": "write", "args": {"i": 0, "p": 0, "f": (n + 1) % 2}} for n in range(40_000)]
    trace = tmp_path / "long.json"
    trace.write_text(json.dumps({"format": "deferral-trace/1", "variant": "reference",
                                 "bounds": {"vcpus": 2, "pages": 1, "frames": 1, "queue": 1}, "steps": steps}))
    r = cli("replay", str(trace), "--time-limit", "0.3", "--json")
    error = json.loads(r.out)["error"]
    assert r.code == 3 and error["kind"] == "limit"
    assert " of 40,000 steps replayed" in error["message"] and "no property violated" in error["message"]
    assert len(r.err.strip().splitlines()) == 1


@pytest.mark.parametrize("where", ["property", "expected"])
def test_a_trace_naming_a_property_the_protocol_lacks_is_bad_input(cli, tmp_path, where: str) -> None:
    """It replayed and said 'NOT as expected' (exit 1), as if the protocol had failed a claim it cannot make."""
    import json

    doc = {"format": "deferral-trace/1", "variant": "reference",
           "bounds": {"vcpus": 2, "pages": 1, "frames": 1, "queue": 1},
           "steps": [{"step": "write", "args": {"i": 0, "p": 0, "f": 1}}]}
    if where == "property":
        doc["property"] = "no_such_property"
    else:
        doc["expected"] = {"outcome": "violates", "property": "no_such_property"}
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps(doc))
    r = cli("replay", str(trace))
    assert r.code == 2 and "no_such_property" in r.err and "no_stale_translation" in r.err
    assert len(r.err.strip().splitlines()) == 1
