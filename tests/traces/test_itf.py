"""ITF (Apalache's Informal Trace Format): written by check/prove, read back by replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deferral.model import PUBLISHED
from deferral.traces.format import load
from deferral.traces.itf import to_itf


def test_counterexample_round_trips_through_itf(cli, tmp_path: Path) -> None:
    native, itf = tmp_path / "cex.json", tmp_path / "cex.itf.json"
    assert cli("check", "--variant", "drain-local-only", "--trace-out", str(native), "--itf", str(itf)).code == 1
    doc = json.loads(itf.read_text())
    assert doc["vars"][0] == "gpt" and len(doc["states"]) == 9  # initial state + 8 steps
    assert doc["states"][1]["#meta"]["action"] == "write"
    assert doc["states"][0]["gpt"] == {"#map": [[0, 0]]}
    assert doc["states"][0]["lw"] == {"#map": [[0, "none"]]}
    assert doc["states"][0]["queue"] == {"#map": [[0, []], [1, []]]}
    a, b = load(native), load(itf)
    assert [(s.step, s.args, s.state) for s in a.steps] == [(s.step, s.args, s.state) for s in b.steps]
    assert a.initial == b.initial and a.bounds == b.bounds and a.expected == b.expected
    r = cli("replay", str(itf))
    assert r.code == 0 and "violates no_stale_translation" in r.out


def test_steps_are_inferred_when_the_states_name_no_action(cli, tmp_path: Path) -> None:
    native = tmp_path / "cex.json"
    cli("check", "--variant", "reload-no-drain", "--trace-out", str(native))
    doc = to_itf(load(native), PUBLISHED["reload-no-drain"])
    for state in doc["states"]:
        state["#meta"] = {"index": state["#meta"]["index"]}  # as another tool would write it
    bare = tmp_path / "bare.itf.json"
    bare.write_text(json.dumps(doc))
    trace = load(bare)
    assert [s.step for s in trace.steps] == ["write", "shadow_fault", "write", "reload_cr3", "finish_reload"]
    assert cli("replay", str(bare)).code == 0


def test_bad_itf_is_one_line_exit_2(cli, tmp_path: Path) -> None:
    file = tmp_path / "x.itf.json"
    file.write_text(json.dumps({"vars": ["gpt"], "states": [{"gpt": {"#map": [[0, 0]]}}]}))
    r = cli("replay", str(file))
    assert r.code == 2 and "does not say its bounds" in r.err and len(r.err.strip().splitlines()) == 1
    file.write_text(json.dumps({"#meta": {"bounds": {"vcpus": 2, "pages": 1, "frames": 1, "queue": 1}},
                                "vars": ["gpt"], "states": [{"gpt": {"#map": [[1, 0]]}}]}))
    r = cli("replay", str(file))
    assert r.code == 2 and "keys 0..n-1" in r.err


def _reload_no_drain_itf(cli, tmp_path: Path) -> dict:
    native = tmp_path / "cex.json"
    cli("check", "--variant", "reload-no-drain", "--trace-out", str(native))
    return to_itf(load(native), PUBLISHED["reload-no-drain"])


def test_a_bound_the_protocol_does_not_declare_is_bad_input_not_an_internal_error(cli, tmp_path: Path) -> None:
    doc = _reload_no_drain_itf(cli, tmp_path)
    doc["#meta"]["bounds"]["tickets"] = 3  # a bound of another protocol (tests/model/data/tickets.py)
    for suffix, text in ((".itf.json", json.dumps(doc)), (".json", None)):
        file = tmp_path / f"t{suffix}"
        if text is None:  # the same in deferral's own format
            native = json.loads((tmp_path / "cex.json").read_text())
            native["bounds"]["tickets"] = 3
            text = json.dumps(native)
        file.write_text(text)
        r = cli("replay", str(file), "--json")
        assert r.code == 2, (suffix, r.out)
        assert json.loads(r.out)["error"]["kind"] == "bad-input" and "tickets" in r.err
        assert len(r.err.strip().splitlines()) == 1


def test_a_state_meta_or_action_of_the_wrong_type_is_malformed(cli, tmp_path: Path) -> None:
    for where, value in (("#meta", "write"), ("action", 3), ("args", [0, 0, 1])):
        doc = _reload_no_drain_itf(cli, tmp_path)
        if where == "#meta":
            doc["states"][1]["#meta"] = value
        else:
            doc["states"][1]["#meta"][where] = value
        file = tmp_path / "bad.itf.json"
        file.write_text(json.dumps(doc))
        r = cli("replay", str(file))
        assert r.code == 2, (where, r.out)
        assert "state 1" in r.err and where in r.err and len(r.err.strip().splitlines()) == 1


@pytest.mark.parametrize("drop", ["vars", "states"])
def test_an_itf_trace_missing_vars_or_states_is_named_as_such(cli, tmp_path: Path, drop: str) -> None:
    """It was called 'not a deferral trace (format is None, expected deferral-trace/1)'."""
    doc = _reload_no_drain_itf(cli, tmp_path)
    del doc[drop]
    file = tmp_path / "cut.itf.json"
    file.write_text(json.dumps(doc))
    r = cli("replay", str(file))
    assert r.code == 2 and f"ITF trace without '{drop}'" in r.err and "format is None" not in r.err
