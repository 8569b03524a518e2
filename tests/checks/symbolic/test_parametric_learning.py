"""``prove --parametric``'s learning as one job, its proof sent as data (checks/symbolic/parametric_learning.py)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from deferral.checks.symbolic import clauses_process
from deferral.checks.symbolic.parametric_learning import Learning
from deferral.cli.main import main
from deferral.model import REFERENCE, Bounds

AT = Bounds(1, 1, 1, 1)  # Q=1, S=1: the learning proves the reference in seconds


@pytest.fixture(scope="module")
def learned() -> Learning:
    """The learning of the reference at AT, as a spawned learner sends it (its course depends on its inputs alone;
    in a test process it would follow what the process did before: proved or not, in 8 or 24 s)."""
    with clauses_process.Team(REFERENCE, 1) as team:
        assert team.members, team.why_here
        got, _ = team.race("for_every", {"bounds": AT, "shipped": False, "deadline": time.monotonic() + 120},
                           until=None, decode=lambda one, body: body, won=lambda body: body["status"] == "proved",
                           note=None, describe=str, label="test")
    out = Learning.from_data(json.loads(json.dumps(got)), REFERENCE)  # plain data: it goes through JSON too
    assert out.status == "proved" and out.proof is None, out.reason
    return out


def test_a_proof_sent_as_data_is_the_same_proof_rebuilt_here(learned: Learning) -> None:
    """The proof sent as plain data and rebuilt: the lemmas it names, printed the same, in the same order, with
    the obligations as Z3 decided them there (each proved) and where it sampled."""
    proof = learned.proof_here(REFERENCE, AT)
    assert proof.status == "proved" and proof.concrete == {"queue": 1, "spaces": 1}
    assert [lem.name for lem in proof.lemmas] == learned.lemma_names
    assert [o.name for o in proof.obligations] == [o["name"] for o in learned.obligations]
    assert all(o.status == "proved" for o in proof.obligations) and len(proof.obligations) > 2
    assert learned.samples_at and (learned.clauses_at is not None) == any("or" in d for d in learned.fixed)


def _changed(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with one family changed on the way: a clause shortened, else a learned family's values cut, else
    (a course that kept neither: seen once in a suite) a lemma name dropped."""
    doc = json.loads(json.dumps(doc))
    clause = next((d for d in doc["fixed"] if "or" in d and len(d["or"]) > 1), None)
    if clause is not None:
        clause["or"] = clause["or"][:1]  # a shorter clause: another family, with another name
    elif doc["families"]:
        doc["families"][0]["values"] = doc["families"][0]["values"][:1]
    else:
        doc["lemma_names"] = doc["lemma_names"][1:]
    return doc


def test_a_proof_whose_lemmas_differ_here_is_refused(learned: Learning) -> None:
    """A lemma that is rebuilt as another one (here a clause shortened), or a name the protocol does not have,
    makes the proof untakeable: ValueError, never a proof of other lemmas."""
    with pytest.raises(ValueError, match="not the learner's"):
        Learning.from_data(_changed(learned.to_data()), REFERENCE).proof_here(REFERENCE, AT)
    doc = learned.to_data()
    doc["fixed"] = [*doc["fixed"], {"lemma": "no_such_lemma"}]
    with pytest.raises(ValueError, match="'no_such_lemma' is not a shipped lemma"):
        Learning.from_data(doc, REFERENCE).proof_here(REFERENCE, AT)
    doc = {**learned.to_data(), "clauses_at": None, "families_at": None}
    if any("or" in d for d in doc["fixed"]) or doc["families"]:
        with pytest.raises(ValueError, match="without the bounds they were made at"):
            Learning.from_data(doc, REFERENCE).proof_here(REFERENCE, AT)


def test_prove_parametric_learns_in_a_fresh_process(capsys: pytest.CaptureFixture[str]) -> None:
    """deferral prove --parametric without the shipped lemmas: learned in a spawned learner, whose proof is
    rebuilt here and says where it was learned; exit 0."""
    code = main(["prove", "--parametric", "--no-shipped-lemmas", "--learners", "1", "--json", "--timeout", "120"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["status"] == "proved", doc.get("reason")
    assert doc["lemma_source"].startswith("learned: checks/symbolic/paramlearn.py")
    assert doc["lemma_source"].endswith("; the learning runs in a fresh process")
    assert all(o["status"] == "proved" for o in doc["obligations"])


def test_learners_asked_before_the_search_are_stopped_with_it() -> None:
    """The learners start learning when asked (before prove's own search for a counterexample, which runs
    meanwhile) and end when that search's block does (a counterexample found there returns from inside it)."""
    from deferral.checks.symbolic.parametric_routes import LEARNERS_MARGIN_S, Asked

    with Asked(REFERENCE, AT, shipped=False, timeout=60.0, began=time.monotonic(), learners=2) as asked:
        procs = [one._proc for one in asked.team.members]
        assert len(procs) == 2 and all(p.poll() is None for p in procs)
        assert asked.deadline - asked.t0 == asked.learn_s == pytest.approx(60.0 - LEARNERS_MARGIN_S, abs=0.5)
    assert all(p.poll() is not None for p in procs)
    with Asked(REFERENCE, AT, shipped=False, timeout=5.0, began=time.monotonic(), learners=2) as asked:
        assert not asked.team.members  # too little time to learn: nothing is started
