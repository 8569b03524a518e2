"""Lemmas inferred by Spacer at small bounds, generalized, and proved at larger bounds.

Spacer at N=2 takes a minute or more (benchmarks/PROVE.md), so inference here is at N=1
(under a second) and the larger bounds are in frames; the N=2 -> N=3/4 figures are in
benchmarks/bench_prove.py.
"""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import pytest
import z3

from deferral.checks.symbolic.generalize import Literal, Template, generalize, load, save
from deferral.checks.symbolic.induction import check_inductive, houdini
from deferral.checks.symbolic.pdr import pdr
from deferral.checks.symbolic.prove import infer_bounds, prove
from deferral.checks.terms.encoding import encode
from deferral.cli.main import main
from deferral.model import PUBLISHED, REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.variants import load_variant_file

SMALL = Bounds(1, 1, 1, 1)
EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "drain_zaps.py"


def inferred(name: str) -> list[Template]:
    res = pdr(encode(PUBLISHED[name], SMALL), timeout=60, encoding="onehot")
    assert res.status == "proved" and res.atoms
    return generalize(res.invariant, res.atoms, encode(PUBLISHED[name], SMALL).layout)


def test_templates_restate_spacers_invariant_at_its_own_bounds() -> None:
    templates = inferred("reference")
    assert templates and all(t.params for t in templates)
    alive, log = houdini(encode(REFERENCE, SMALL), [t.lemma() for t in templates])
    assert len(alive) == len(templates), log  # every reading is equivalent at the bounds inferred at
    assert check_inductive(encode(REFERENCE, SMALL), alive).status == "proved"


def test_kept_lemmas_hold_in_every_reachable_concrete_state() -> None:
    # the templates evaluate on concrete states too (same StepContext), and what Houdini keeps is true
    b = Bounds(1, 1, 2, 1)
    alive, _ = houdini(encode(REFERENCE, b), [t.lemma() for t in inferred("reference")])
    assert alive
    model = Model(REFERENCE, b)
    seen, frontier = {model.initial}, [model.initial]
    while frontier:
        state = frontier.pop()
        for lem in alive:
            ctx = model.context(state)
            for args in product(*(range(d.size(b)) for _, d in lem.params)):
                assert lem.fn(ctx, *args), (lem.show(), args, model.to_json(state))
        for _, succ in model.successors(state):
            if succ not in seen:
                seen.add(succ)
                frontier.append(succ)
    assert len(seen) > 50


@pytest.mark.parametrize("name", ["reference", "wait-irqs-off"])
def test_auto_proves_larger_bounds_with_inferred_lemmas(name: str) -> None:
    b = Bounds(1, 1, 3, 1)
    assert infer_bounds(b) == SMALL
    res = prove(PUBLISHED[name], b, "auto", timeout=120, infer_first=True, learn=False)
    assert res.status == "proved", res.log
    assert res.route == "pdr-generalized+houdini+induction", res.log
    assert res.inferred_at == SMALL and res.templates and len(res.invariant or []) == len(res.templates)


def test_auto_user_variant_file_inferred_route() -> None:
    protocol = load_variant_file(str(EXAMPLE))
    res = prove(protocol, Bounds(1, 1, 2, 1), "auto", timeout=120, infer_first=True, learn=False)
    assert res.status == "proved" and res.route == "pdr-generalized+houdini+induction", res.log


def test_auto_falls_back_to_the_shipped_lemmas_and_says_so(capsys: pytest.CaptureFixture[str],
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    # the learned routes (bounded, parametric, enumerated, ic3po) and Spacer all give up (as they do when their share of --timeout runs
    # out; stood in for here, so that the test does not depend on the machine's speed): the
    # shipped lemmas prove it, and the log says what was tried first
    from types import SimpleNamespace

    import deferral.checks.symbolic.prove as auto
    from deferral.checks.symbolic.infer import InferResult
    monkeypatch.setattr(auto, "infer", lambda enc, **kw: InferResult(
        status="unknown", families=[], elapsed_s=0.0, reason="budget spent"))
    from deferral.checks.symbolic import paramlearn
    monkeypatch.setattr(paramlearn, "learn", lambda protocol, concrete, **kw: paramlearn.LearnResult(
        status="unknown", families=[], elapsed_s=0.0, concrete=dict(concrete), open_bounds=[],
        reason="budget spent"))
    monkeypatch.setattr(auto, "pdr", lambda enc, **kw: SimpleNamespace(
        status="unknown", reason="canceled", elapsed_s=0.0))
    from deferral.checks.symbolic import clauses
    monkeypatch.setattr(clauses, "learn", lambda protocol, samples_at, stages, **kw: clauses.Learned(
        [], [], [], 0, {}, why="budget spent"))
    from deferral.checks.symbolic import ic3po
    monkeypatch.setattr(ic3po, "learn_and_prove", lambda protocol, bounds, **kw: ic3po.Ic3poResult(
        status="unknown", route="ic3po", families=[], elapsed_s=0.0, reason="budget spent"))
    code = main(["prove", "--json", "--vcpus", "2", "--timeout", "120", "--infer-first", "--learners", "0"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["status"] == "proved"
    assert doc["route"] == "shipped-lemmas+houdini+induction" and len(doc["invariant"]) == 13
    log = "\n".join(doc["log"])
    assert "inferred: unknown" in log and "ic3po: unknown" in log and "Spacer at N=2,V=1,F=1,Q=1: unknown" in log


def test_invariant_out_then_lemmas_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from deferral.cli.prove import invariant_json
    saved = tmp_path / "lemmas.json"
    # --infer-first now tries the learned route (checks/symbolic/infer.py) first: ask for Spacer's
    first = prove(REFERENCE, Bounds(1, 1, 2, 1), "auto", timeout=120, infer_first=True, learn=False)
    assert first.status == "proved" and first.route == "pdr-generalized+houdini+induction"
    saved.write_text(json.dumps(invariant_json(first, REFERENCE)))
    doc = json.loads(saved.read_text())
    assert doc["format"] == "deferral-lemmas/1" and doc["inferred_at"] == SMALL.as_dict()
    assert [x["shown"] for x in doc["lemmas"]] == first.invariant
    assert main(["prove", "--json", "--vcpus", "1", "--frames", "3", "--lemmas", str(saved)]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["status"] == "proved" and second["route"] == "lemma-file+houdini+induction"
    assert second["lemmas_learned_at"] == [SMALL.as_dict()]  # the file's Spacer bounds


@pytest.mark.parametrize("text, needle", [
    ("not json", "not JSON"),
    ('{"format": "other"}', "not a lemmas file prove --invariant-out writes (deferral-lemmas/1, deferral-lemmas/2 or "
                            "deferral-weakened/1)"),
    ('{"format": "deferral-lemmas/1", "lemmas": [{"params": [["i", "vcpu"]], "clause": '
     '[{"var": "nosuch", "index": ["i"], "part": null, "positive": true, "values": []}]}]}', "no variable"),
])
def test_bad_lemma_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           text: str, needle: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(text)
    assert main(["prove", "--lemmas", str(path), "--vcpus", "1"]) == 2
    err = capsys.readouterr().err
    assert needle in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_save_load_round_trip_and_show() -> None:
    t = Template((("i", "vcpu"), ("k", "vcpu"), ("p", "page")),
                 (Literal("waiting", ("i", "k"), None, False, ()), Literal("lw", ("p",), None, True, ("none", "k")),
                  Literal("queue", ("i",), "has", True, ("p",))))
    back = load(json.dumps(save([t], REFERENCE, SMALL)))
    assert back == [t]
    assert t.show() == "for all i, k, p: !waiting[i][k] | lw[p] in {none, k} | queue[i] holds p"
    # distinct parameters only: the instance i = k is vacuous
    enc = encode(REFERENCE, Bounds(2, 1, 1, 1), check=False)
    xs = enc.state("t")
    assert z3.is_true(z3.simplify(enc.ops.boolean(t.lemma().fn(enc.context(xs), 0, 0, 0))))


def test_auto_tries_the_shipped_lemmas_before_spacer(capsys: pytest.CaptureFixture[str]) -> None:
    # without a time limit, the reference at N=2 is proved by the shipped lemmas in seconds
    code = main(["prove", "--json", "--vcpus", "2", "--pages", "2"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["route"] == "shipped-lemmas+houdini+induction"
    assert doc["elapsed_s"] < 60
