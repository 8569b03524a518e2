"""``prove --json``: one quick run per route and exit code (0 proved, 1 violated, 2 bad input, 3 unknown),
each saying what settled it and, for an unknown, why (as text)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deferral.cli.main import main

EXAMPLES = Path(__file__).parents[2] / "examples"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["prove", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def _plain(text: Any) -> None:
    assert isinstance(text, str) and text.strip() and "b'" not in text and 'b"' not in text, text


def test_shipped_route_records_its_houdini_stage(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "--vcpus", "2", "--timeout", "60")
    assert code == 0 and doc["status"] == "proved" and doc["route"] == "shipped-lemmas+houdini+induction"
    assert doc["log"] == [] or all("bmc" not in line for line in doc["log"])  # proved before any bounded search
    (row,) = doc["stages"]
    assert row["route"] == "shipped-lemmas" and row["method"] == "houdini+induction"
    assert row["families_in"] == 13 and row["families_kept"] == 13 and row["result"] == "proved"


def test_learned_route_records_where_it_sampled_and_each_stage(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "--vcpus", "1", "--no-shipped-lemmas", "--infer-first", "--timeout", "60")
    assert code == 0 and doc["route"] == "inferred+houdini+induction"
    assert doc["lemma_source"].startswith("learned") and doc["lemmas_learned_at"]
    methods = [row["method"] for row in doc["stages"] if row["route"] == "inferred"]
    assert methods[0] == "sample" and methods[-1] == "houdini+cti"
    last = doc["stages"][-1]
    assert last["bounds"] == doc["bounds"] and last["families_kept"] <= last["families_in"]
    assert len(doc["invariant"]) <= last["families_kept"] + 1  # the shrunk invariant (with the property)


def _no_explicit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Leave auto's explicit route out (no time in its box): the bmc routes refute."""
    from deferral.checks.symbolic import exhaust

    monkeypatch.setattr(exhaust, "EXPLICIT_SHARE", 0.0)


def test_a_bug_is_refuted_by_the_explicit_search_after_the_lemmas_fail(capsys: pytest.CaptureFixture[str]) -> None:
    """Where the lemmas fail, the explicit search at the requested bounds (cheap here) refutes: the
    shortest counterexample, as long as bmc's (6 steps, below)."""
    code, doc = _run(capsys, "--variant", "ipi-before-drain", "--vcpus", "2", "--timeout", "60")
    assert code == 1 and doc["status"] == "violated" and doc["route"] == "explicit-search" and doc["depth"] == 6
    assert [row["route"] for row in doc["stages"]] == ["shipped-lemmas", "weakened", "explicit"] and doc["trace"]
    assert len(doc["trace"]["steps"]) == 6 and doc["stages"][2]["result"] == "violated"
    assert "violates no_stale_translation" in doc["log"][-2] or any("violates no_stale" in x for x in doc["log"])
    assert doc["exhaustive"]["verdict"].startswith("no_stale_translation violated in 6 steps")


def test_a_bug_is_refuted_after_the_lemmas_fail(capsys: pytest.CaptureFixture[str],
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    _no_explicit(monkeypatch)
    code, doc = _run(capsys, "--variant", "ipi-before-drain", "--vcpus", "2", "--timeout", "60")
    assert code == 1 and doc["status"] == "violated" and doc["route"] == "bmc" and doc["depth"] == 6
    assert [row["route"] for row in doc["stages"]] == ["shipped-lemmas", "weakened", "bmc"]
    assert doc["stages"][0]["result"] != "proved" and doc["trace"]
    assert doc["stages"][2]["depth"] == 6 and doc["stages"][2]["result"] == "violated"


def test_a_bug_found_at_the_smallest_instance_is_reported_at_the_requested_bounds(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """At bounds above the smallest instance (2,1,1), the bmc runs there first; its violation's
    steps run at the requested bounds (route bmc+lifted) and the bmc there rules out every shorter
    length, so the trace reported is a shortest one (5 steps at 2,2,1,1, as `deferral check
    --variant reload-no-drain --pages 2` finds)."""
    _no_explicit(monkeypatch)
    code, doc = _run(capsys, "--variant", "reload-no-drain", "--vcpus", "2", "--pages", "2", "--timeout", "60")
    assert code == 1 and doc["route"] == "bmc+lifted" and doc["depth"] == 5 and len(doc["trace"]["steps"]) == 5
    assert doc["shortest"] is True
    looks = [(row["bounds"]["pages"], row["result"], row["depth"]) for row in doc["stages"] if row["route"] == "bmc"]
    assert looks[0][:2] == (1, "violated") and looks[1] == (2, "unknown", 4)  # nothing within 4 steps at V=2


def test_the_explicit_search_refutes_at_the_requested_bounds_at_the_same_length(
        capsys: pytest.CaptureFixture[str]) -> None:
    """The same bug with the explicit route: found at the smallest instance (2,1,1,1) first, then at the
    requested bounds, 5 steps (bmc's length above)."""
    code, doc = _run(capsys, "--variant", "reload-no-drain", "--vcpus", "2", "--pages", "2", "--timeout", "60")
    assert code == 1 and doc["route"] == "explicit-search" and doc["depth"] == 5 and len(doc["trace"]["steps"]) == 5
    looks = [(row["bounds"]["pages"], row["result"]) for row in doc["stages"] if row["route"] == "explicit"]
    assert looks == [(1, "violated"), (2, "violated")] and doc["stages"][0]["route"] == "shipped-lemmas"


def test_what_no_lemma_route_proves_is_proved_at_exactly_the_bounds_the_explicit_search_exhausted(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """No lemma route (here: learning left out, Spacer given no time) proves the reference without the
    shipped lemmas; the explicit search exhausted 2,1,1,1: a bounded proof, said as such, each route's reason kept."""
    from deferral.checks.symbolic import prove as prove_mod
    from deferral.model import REFERENCE, Bounds

    monkeypatch.setattr(prove_mod, "INFER_SHARE", 0.0)
    res = prove_mod.prove(REFERENCE, Bounds(2, 1, 1, 1), timeout=30, shipped=False, learn=False)
    assert res.status == "proved" and res.route == "explicit-search" and res.exit_code == 0
    assert res.exhaustive is not None and res.exhaustive["states"] > 1000
    assert res.exhaustive["verdict"].startswith("holds at exactly N=2,V=1,F=1,Q=1: every reachable state")
    assert "nothing claimed for other bounds" in res.reason and not res.invariant
    routes = [row["route"] for row in res.routes_tried]
    assert routes[0] == "explicit at N=2,V=1,F=1,Q=1" and "pdr-generalized" in routes
    assert not any(row["route"] == "bmc" for row in res.stages)  # what it exhausted needs no bmc


def test_induction_unknown_names_the_lemma(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "--vcpus", "2", "--method", "induction",
                     "--variant-file", str(EXAMPLES / "invlpg_sync_one.py"))
    assert code == 3 and doc["status"] == "unknown" and doc["route"] == "induction"
    _plain(doc["reason"])
    assert doc["reason"].startswith("the invariant is not inductive: req[k][p] implies")


def test_pdr_proves_the_smallest_instance(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "--vcpus", "1", "--method", "pdr", "--timeout", "60")
    assert code == 0 and doc["route"] == "pdr" and doc["lemma_source"] == "Spacer at the requested bounds"


def test_parametric_says_what_was_assumed_concrete(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prove", "--parametric", "--json", "--timeout", "120"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["status"] == "proved"
    assert doc["for_every"] == ["vcpus", "pages", "frames"] and doc["assumed_concrete"] == {"queue": 1, "spaces": 1}
    assert doc["verdict"] == "proved for every number of vcpus, pages, frames, at queue=1, spaces=1"


def test_bad_input_is_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prove", "--json", "--method", "bmc", "--lemmas", "x.json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and doc["exit_code"] == 2 and "\n" not in doc["error"]["message"]
    assert "--lemmas is used by --method auto only" in doc["error"]["message"]


@pytest.mark.parametrize("argv, says", [
    # --method induction proves exactly the shipped lemmas: "proved" here claimed what the flag excludes
    (["--method", "induction", "--no-shipped-lemmas"], "--no-shipped-lemmas"),
    (["--method", "bmc", "--depth", "2", "--infer-first"], "--infer-first is used by --method auto only"),
    (["--method", "pdr", "--learners", "1"], "--learners is used by --method auto and --parametric only"),
    (["--learners", "9"], "argument --learners: invalid choice: 9"),
    (["--learners", "two"], "argument --learners: invalid int value: 'two'"),
])
def test_flags_that_a_method_would_ignore_are_refused(argv: list[str], says: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["prove", "--json", *argv])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and doc["error"]["kind"] == "bad-input" and says in doc["error"]["message"]


def test_hard_time_limit_is_exit_3_with_a_reason(capsys: pytest.CaptureFixture[str]) -> None:
    """Whichever ends it (the command's hard limit during the encoding, or auto finding its time gone
    before a route: the faster the machine, the likelier the second), exit 3 says the time limit."""
    code = main(["prove", "--json", "--vcpus", "4", "--pages", "3", "--frames", "3", "--queue", "3", "--spaces", "3",
                 "--timeout", "0.5"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 3
    if "error" in doc:  # the hard limit
        assert doc["exit_code"] == 3 and doc["error"]["kind"] == "limit"
        message = doc["error"]["message"]
    else:
        assert doc["status"] == "unknown"
        message = doc["reason"]
        assert "limit of 0 s" not in message  # a limit under a second was printed as 0 s
    _plain(message)
    assert "time limit" in message


def test_a_step_that_differs_over_z3_terms_is_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """The encoding's cross-check (one batched substitution per state) still catches a step whose
    Z3 terms differ from its concrete values."""
    path = tmp_path / "sneaky.py"
    path.write_text("from deferral.model import REFERENCE\nfrom deferral.model.reference import PC\n\n\n"
                    "def reload_sneaky(s, i):\n    s.pc[i] = PC.Reload\n    s.sp[i] = s.cr3[i]\n"
                    "    s.pg[i] = 1 if isinstance(s.pc[i], int) else 0\n\n\n"
                    "VARIANT = REFERENCE.derive('sneaky', replace_steps=[REFERENCE.step('reload_cr3')"
                    ".with_effect(reload_sneaky)])\n")
    code = main(["prove", "--json", "--variant-file", str(path), "--pages", "2"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and "step reload_cr3(0) evaluates differently over Z3 terms" in doc["error"]["message"]


def test_a_parametric_route_says_what_was_concrete_in_the_terminal() -> None:
    """Auto's parametric routes print what was open and what was assumed concrete (Q, S)."""
    from rich.console import Console

    from deferral.checks.symbolic.prove import prove
    from deferral.model import REFERENCE, Bounds
    from deferral.traces.report.terminal import print_prove

    res = prove(REFERENCE, Bounds(1, 1, 1, 1), timeout=60)
    res.for_every = {"for_every": ["vcpus", "pages", "frames"], "assumed_concrete": {"queue": 1, "spaces": 1}}
    out = Console(record=True, width=200)
    print_prove(out, res)
    assert "proved for every number of vcpus, pages, frames; concrete: queue=1, spaces=1" in out.export_text()


def test_parametric_unknown_gives_the_learned_routes_reason_too(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the shipped lemmas and then the learned families fail, the reason says both (as text);
    the bug's counterexample at a small instance (which refutes it otherwise) stood in for by none."""
    from deferral.checks.symbolic import paramlearn, parametric_learning, parametric_refute

    monkeypatch.setattr(parametric_refute, "search_small", lambda *a, **kw: parametric_refute.SmallSearch())
    # no enumerated families either: their real learning's course here follows what this process did before
    # (3 s alone, 40 s in a suite's worker)
    monkeypatch.setattr(parametric_learning, "enumerated", lambda *a, **kw: ([], "not used (stand-in)", [], None))

    def learn(protocol: Any, concrete: Any, **kw: Any) -> Any:
        return paramlearn.LearnResult("unknown", [], 1.5, dict(concrete), ["vcpus"], reason="round 2: stuck")

    monkeypatch.setattr(paramlearn, "learn", learn)
    # --timeout 60, not 300: the shipped lemmas' parametric Houdini (its MBQI's course follows this process's
    # history) took 38 s of a suite worker with 300; 60 caps it at 27
    code = main(["prove", "--parametric", "--json", "--variant", "reload-no-drain", "--timeout", "60",
                 "--learners", "0"])  # the stand-in learns here, not in a spawned learner
    doc = json.loads(capsys.readouterr().out)
    assert code == 3 and doc.get("status") == "unknown", doc
    assert doc["lemma_source"].startswith("model/invariant.py"), doc
    _plain(doc["reason"])
    assert doc["reason"].endswith("then learned families (checks/symbolic/paramlearn.py): unknown after 1.5 s "
                                  "(round 2: stuck)"), doc["reason"]
    assert doc["assumed_concrete"] == {"queue": 1, "spaces": 1}


def test_auto_unknown_is_built_from_each_routes_own_reason(capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Each route tried gives one clause (which lemma Houdini dropped first and the step that broke it,
    how deep the bmc got, the learning route's and Spacer's reasons); the unknown's reason is those clauses.
    (Without the explicit route, which would prove 2,1,1,1 by exhausting it, and with no weakening, which
    proves lazy_cur_clear: test_weaken.py; no new families either, so that round's clause is fixed; and
    no learning: on a quiet machine the enumerated families proved it within the 10 s, 5 Dec.)"""
    from deferral.checks.symbolic import prove as prove_mod, strengthen, weaken

    _no_explicit(monkeypatch)
    monkeypatch.setattr(weaken, "PER_LEMMA", 0)
    monkeypatch.setattr(strengthen, "PER_SIGNATURE", 0)
    monkeypatch.setattr(prove_mod, "LEARN_SHARE", 0.0)  # learned routes: no time (each says "not tried")
    monkeypatch.setattr(prove_mod, "LEARN_PARAMETRIC_MIN_S", 1e9)
    code, doc = _run(capsys, "--vcpus", "2", "--variant-file", str(EXAMPLES / "lazy_cur_clear.py"), "--timeout", "10")
    assert code == 3 and doc.get("route") == "auto", doc
    rows = doc["routes_tried"]
    routes = [row["route"] for row in rows]
    assert routes[0] == "shipped-lemmas+houdini+induction" and "bmc at N=2,V=1,F=1,Q=1" in routes
    assert routes[1] == "shipped-lemmas+weakened+houdini+induction" and "no weakening" in rows[1]["reason"]
    assert routes[2] == "shipped-lemmas+weakened+strengthened+houdini+induction" and "0 new families" in rows[2]["reason"]
    assert routes[-1] == "pdr at N=2,V=1,F=1,Q=1" and len(set(routes)) == len(routes)
    shipped = rows[0]["reason"]
    assert shipped.startswith("too-weak (no_stale_translation(") and "first dropped (not preserved by ack_ipi(" in shipped
    assert "cur[k] names a VCPU exactly when pc[k] is Ipi" in shipped
    for row in rows:
        _plain(row["reason"])
        assert f"{row['route']}: {row['reason']}" in doc["reason"]
    assert doc["reason"].startswith("no route settled it: ")


def test_auto_parametric_proof_says_which_bounds_were_concrete(capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the bounded Houdini does not decide (here made to time out), the shipped lemmas over
    uninterpreted sorts prove it for every N, V, F; the JSON says Q and S were concrete."""
    from deferral.checks.symbolic import prove as prove_mod

    def stuck(*args: Any, **kw: Any) -> Any:
        raise TimeoutError("houdini: timeout (made so by the test)")

    monkeypatch.setattr(prove_mod, "houdini", stuck)
    code, doc = _run(capsys, "--vcpus", "2", "--queue", "2", "--timeout", "60")
    assert code == 0 and doc["route"] == "shipped-lemmas+parametric-houdini", doc.get("reason")
    every = doc["proved_for_every"]
    assert every["for_every"] == ["vcpus", "pages", "frames"] and every["assumed_concrete"] == {"queue": 2, "spaces": 1}
    assert every["verdict"].startswith("proved for every number of vcpus, pages, frames, at queue=2, spaces=1")


def test_parametric_queries_leave_time_for_the_rest_of_the_limit() -> None:
    """With --timeout, one query of --parametric gets at most a sixth of it (an undecided query of
    60 s ran the whole proof into the hard limit at --timeout 60, S=2 and S=3)."""
    from deferral.checks.symbolic.parametric_routes import PARAMETRIC_QUERY_S, query_s

    assert query_s(None) == PARAMETRIC_QUERY_S and query_s(60) == 10 and query_s(3) == 1.0


def test_parametric_without_any_lemmas_says_so(cli) -> None:
    """--no-shipped-lemmas with no time to learn: the listing says there are no lemmas (not an empty source)."""
    result = cli("prove", "--parametric", "--no-shipped-lemmas", "--timeout", "4")
    assert result.code == 3
    assert "lemmas: none (no shipped lemmas, no lemma file, none learned that prove it)" in result.out
    assert "lemmas (," not in result.out


def test_a_counterexample_trace_names_the_route_that_found_it(capsys: pytest.CaptureFixture[str]) -> None:
    """The written trace's note says what found the counterexample: the explicit search is not Z3
    (before, every prove trace said "found by deferral prove (Z3)")."""
    code, doc = _run(capsys, "--variant", "ipi-before-drain", "--vcpus", "2", "--timeout", "60")
    assert code == 1 and doc["route"] == "explicit-search"
    assert "Z3" not in doc["trace"]["note"] and "explicit-search" in doc["trace"]["note"], doc["trace"]["note"]
    code, doc = _run(capsys, "--variant", "ipi-before-drain", "--vcpus", "2", "--method", "bmc", "--timeout", "60")
    assert code == 1 and doc["route"] == "bmc" and "bmc" in doc["trace"]["note"], doc["trace"]["note"]


@pytest.mark.parametrize("extra", [[], ["--parametric"], ["--method", "ic3po"], ["--method", "bmc"]])
def test_a_variant_without_an_invariant_property_is_bad_input(cli, tmp_path: Path, extra: list[str]) -> None:
    """prove covers invariant properties; a variant that has none (liveness only) has nothing to
    prove. Before, auto and ic3po said "proved : no-inv" (exit 0) and bmc "unknown" (exit 3)."""
    path = tmp_path / "no_inv.py"
    path.write_text("from deferral.model import REFERENCE\n"
                    "VARIANT = REFERENCE.derive('no-inv', remove_properties=['no_stale_translation'])\n")
    r = cli("prove", "--variant-file", str(path), "--timeout", "60", *extra)
    assert r.code == 2, r
    assert "no invariant property" in r.err and "shootdowns_can_complete" in r.err, r.err
    assert r.err.strip().count("\n") == 0 and "Traceback" not in r.err


def test_lemmas_written_at_other_spaces_say_so(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """A family saved at one address space names a queue item by its page alone; at two spaces that is
    no literal: bad input, and the message says the file was written at other bounds."""
    doc = {"format": "deferral-weakened/1", "bounds": {"vcpus": 2, "pages": 1, "frames": 1, "queue": 1},
           "lemmas": [{"vars": [["t", "space"], ["i", "vcpu"]], "or": ["not queue[i] holds pg[i]"]}]}
    path = tmp_path / "inv.json"
    path.write_text(json.dumps(doc))
    code = main(["prove", "--lemmas", str(path), "--spaces", "2", "--timeout", "30"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "not a literal" in err and "written at N=2,V=1,F=1,Q=1, not at N=2,V=1,F=1,Q=1,S=2" in err
    assert "its spaces differ" in err


def test_the_hard_time_limit_says_what_prove_was_doing(capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Where prove runs past its own limit into the command's hard one (exit 3, no verdict), the one line says
    what was running: the latest note of its routes (it said only 'time limit reached' at 65 s for --timeout 60,
    PROVE.md, 8 Dec)."""
    import time

    from deferral.cli import prove as cli_prove

    # prove stood in for by one that notes, then sleeps until the alarm at the limit plus its grace; compiled under
    # a name in <>, as a frame of this file would be a user's file's, which the line names instead of the note
    stuck: dict[str, Any] = {"time": time}
    exec(compile("def prove(*args, note=None, **kw):\n"
                 "    note('auto: bounded model checking to depth 12 at N=2,V=1,F=1,Q=1 (from depth 0, at most 0 s)')\n"
                 "    time.sleep(30)\n", "<stuck prove>", "exec"), stuck)
    monkeypatch.setattr(cli_prove, "prove", stuck["prove"])
    began = time.monotonic()
    code = main(["prove", "--json", "--timeout", "0.5"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 3 and time.monotonic() - began < 10
    assert doc["error"]["kind"] == "limit"
    assert "it was running auto: bounded model checking to depth 12" in doc["error"]["message"], doc
    assert "(its latest note)" in doc["error"]["message"] and "(verdict unknown)" in doc["error"]["message"]
