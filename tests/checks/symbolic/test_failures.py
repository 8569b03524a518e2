"""A proof by Z3 stands only where its invariant rules out every failing step (checks/symbolic/failures.py).

The encoding gives a read naming no element some value, so before this check ``prove --method
induction`` (and pdr) said "proved" for a variant whose step fails two steps from the start,
where ``check`` exits 2."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deferral.checks.symbolic import failures
from deferral.checks.symbolic.prove import prove
from deferral.checks.terms.encoding import encode
from deferral.cli.main import main
from deferral.model import REFERENCE
from deferral.model.invariant import invariant_for
from deferral.model.protocol import Protocol, Step
from deferral.model.reference import PC
from deferral.model.schema import VCPU


def _peek_guard(s: Any, i: Any) -> Any:
    return s.pc[i] == PC.SdWait


def _peek_effect(s: Any, i: Any) -> None:
    """Reads the page of the initiator VCPU i serves while it waits for acks: it serves none then."""
    with s.when(s.pc[i] == PC.SdWait):
        s.pg[i] = s.ite(s.pg[s.cur[i]] == s.pg[i], s.pg[i], s.pg[i])


#: keeps every shipped lemma inductive (it changes nothing), and fails two steps in
PEEK = REFERENCE.derive("peek", doc="peek(i) reads pg[cur[i]] while cur[i] is none",
                        add_steps=[Step("peek", (("i", VCPU),), _peek_guard, _peek_effect)])


def _lemmas_of(protocol: Protocol, bounds: Any) -> Any:
    enc = encode(protocol, bounds)
    return enc, failures.lemma_terms(enc, list(invariant_for(bounds)))


def test_the_reference_can_fail_only_where_no_run_goes_and_its_lemmas_say_so() -> None:
    bounds = REFERENCE.bounds(2, 1, 1, 1)
    enc, inv = _lemmas_of(REFERENCE, bounds)
    labels = [f.label for f in failures.failure_conditions(enc)]
    assert "step ack_ipi(0)" in labels and "step ack_ipi(1)" in labels  # pg[cur[k]] with cur[k] none
    assert failures.discharge(enc, inv).status == "ruled-out"


def test_a_learned_invariant_silent_on_reads_is_strengthened() -> None:
    """The property alone says nothing of cur; Houdini over the failures' generalizations finds
    "pc[k] = Ipi and cur[k] none" never holds, which rules ack_ipi's failure out."""
    bounds = REFERENCE.bounds(2, 1, 1, 1)
    enc = encode(REFERENCE, bounds)
    xs = enc._base_vars
    assert z3_sat(enc, xs)  # the property admits a failing ack_ipi
    from deferral.checks.symbolic.infer import property_lemmas

    assert failures.discharge(enc, failures.lemma_terms(enc, property_lemmas(REFERENCE))).status == "ruled-out"


def z3_sat(enc: Any, xs: Any) -> bool:
    import z3

    from deferral.checks.symbolic.infer import property_lemmas

    solver = z3.SolverFor("QF_BV")
    solver.add(enc.valid(xs), *failures.lemma_terms(enc, property_lemmas(REFERENCE))(xs))
    return solver.check(z3.Or([f.condition for f in failures.failure_conditions(enc)])) == z3.sat


def test_an_admitted_failure_that_a_run_reaches_is_bad_input() -> None:
    bounds = PEEK.bounds(2, 1, 1, 1)
    enc, inv = _lemmas_of(PEEK, bounds)
    found = failures.discharge(enc, inv)
    assert found.status == "admitted" and found.failure is not None and found.failure.label.startswith("step peek(")
    assert "index out of range" in found.error and "index out of range" in found.describe()
    with pytest.raises(failures.ReachedFailure, match=r"index out of range.*reached in 2 steps"):
        failures.find_failure(enc, 10)


@pytest.mark.parametrize("method", ["induction", "pdr", "auto"])
def test_prove_refuses_a_variant_whose_step_fails(method: str) -> None:
    """Before: induction "proved" it (the shipped lemmas stay inductive), pdr ran out of time."""
    with pytest.raises(failures.ReachedFailure, match="peek.*index out of range.*reached in 2 steps"):
        prove(PEEK, PEEK.bounds(2, 1, 1, 1), method, timeout=60)


PEEK_FILE = """
from deferral.model import REFERENCE
from deferral.model.protocol import Step
from deferral.model.reference import PC
from deferral.model.schema import VCPU


def peek(s, i):
    with s.when(s.pc[i] == PC.SdWait):
        s.pg[i] = s.ite(s.pg[s.cur[i]] == s.pg[i], s.pg[i], s.pg[i])


VARIANT = REFERENCE.derive("peek", add_steps=[Step("peek", (("i", VCPU),), lambda s, i: s.pc[i] == PC.SdWait, peek)])
"""


def test_the_cli_says_bad_input(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    path = tmp_path / "peek.py"
    path.write_text(PEEK_FILE)
    code = main(["prove", "--json", "--variant-file", str(path), "--method", "induction", "--vcpus", "2"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 2 and "index out of range" in doc["error"]["message"], doc
    assert "reached in 2 steps" in doc["error"]["message"]


def test_every_proof_of_the_reference_stands() -> None:
    for method in ("induction", "auto"):
        r = prove(REFERENCE, REFERENCE.bounds(3, 2, 2, 2), method, timeout=60)
        assert r.status == "proved", r.reason


def test_a_bmc_path_the_concrete_model_cannot_run_is_bad_input(monkeypatch: pytest.MonkeyPatch) -> None:
    """bmc's violation after a failing step (the encoding went on with some value): the shortest
    path to the failure is reported, not an internal error."""
    from deferral.checks.symbolic import bmc
    from deferral.model.context import StepError

    enc = encode(PEEK, PEEK.bounds(2, 1, 1, 1))

    def refuse(enc: Any, states: Any) -> Any:
        raise StepError("step peek(0): index out of range")

    monkeypatch.setattr(bmc, "oriented_path", refuse)
    with pytest.raises(failures.ReachedFailure, match="reached in 2 steps"):
        bmc.concrete_path(enc, [enc.model.initial] * 4)
    with pytest.raises(StepError, match="index out of range") as caught:  # none within a shorter path: as it was
        bmc.concrete_path(enc, [enc.model.initial] * 2)
    assert caught.type is StepError
