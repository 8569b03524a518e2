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
from deferral.model.schema import VCPU, Range, Var


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


# ---- writes outside a domain: one mechanism with the reads (checks/symbolic/domain.py folded in) ---------------
def _poke_unreachable(s: Any, i: Any, k: Any) -> Any:
    """k has i's IPI pending while i does not wait for k: the shipped lemma "ipi[k][i] pending implies
    waiting[i][k]" excludes it, and no run reaches it."""
    return s.ipi[k][i] & s.not_(s.waiting[i][k])


def _poke_reachable(s: Any, i: Any, k: Any) -> Any:
    """Both VCPUs wait for acks of their shootdowns: reachable, deeper than encode's cross-check looks."""
    return (s.pc[i] == PC.SdWait) & (s.pc[k] == PC.SdWait) & (i != k)


def _poke_effect(s: Any, i: Any, k: Any) -> None:
    s.gpt[0][0] = s.F + 1  # a frame past the last: outside gpt's domain


#: writes outside gpt's domain only in a state the shipped invariant excludes
POKE = REFERENCE.derive("poke", add_steps=[Step("poke", (("i", VCPU), ("k", VCPU)), _poke_unreachable, _poke_effect)])
#: the same write in a reachable state
POKE_REACHED = REFERENCE.derive("poke_reached", add_steps=[Step("poke", (("i", VCPU), ("k", VCPU)), _poke_reachable,
                                                                _poke_effect)])


def test_an_out_of_domain_write_is_a_failure_condition() -> None:
    enc = encode(POKE, POKE.bounds(2, 1, 1, 1))
    labels = [f.label for f in failures.failure_conditions(enc)]
    assert "step poke(0,1)" in labels and "step poke(1,0)" in labels
    assert failures.discharge(enc, failures.lemma_terms(enc, list(invariant_for(enc.bounds)))).status == "ruled-out"


def test_an_unreachable_out_of_domain_write_is_proved_away_by_the_invariant() -> None:
    """Before, a write risk a short up-front search did not reach left every route unknown."""
    r = prove(POKE, POKE.bounds(2, 1, 1, 1), "induction", timeout=60)
    assert r.status == "proved", r.reason


@pytest.mark.parametrize("method", ["induction", "pdr", "bmc", "auto"])
def test_a_reachable_out_of_domain_write_is_bad_input_with_the_models_message(method: str) -> None:
    from deferral.model.context import StepError

    message = r"step poke\(0,1\).*wrote 2 to gpt\[0\], outside its domain.*reached in 4 steps"
    with pytest.raises(StepError, match=message):
        prove(POKE_REACHED, POKE_REACHED.bounds(2, 1, 1, 1), method, timeout=60)


def test_a_write_the_invariant_admits_and_no_search_reaches_leaves_it_unknown() -> None:
    """The shipped lemmas admit both VCPUs in SdWait; the search for the write (4 steps) stops at 3."""
    r = prove(POKE_REACHED, POKE_REACHED.bounds(2, 1, 1, 1), "induction", depth=3, timeout=60)
    assert r.status == "unknown", r
    assert "step poke(" in r.reason and "outside its domain" in r.reason and "none within 3 steps" in r.reason
    assert "nothing is claimed proved" in r.reason


# ---- --parametric: for every N, V, F -------------------------------------------------------------------
def _distinct_sdwait(s: Any, a: Any, b: Any, c: Any, d: Any, e: Any) -> Any:
    xs = (a, b, c, d, e)
    return s.all(x != y for n, x in enumerate(xs) for y in xs[n + 1:]) & (s.pc[a] == PC.SdWait)


def _peek5_effect(s: Any, a: Any, b: Any, c: Any, d: Any, e: Any) -> None:
    s.pg[a] = s.ite(s.pg[s.cur[a]] == s.pg[a], s.pg[a], s.pg[a])


#: PEEK's read, but the step needs five distinct VCPUs: at every bound the explicit small-instance
#: search and the bounded stages (N <= 4) explore it is never enabled, so no failure shows there
PEEK5 = REFERENCE.derive("peek5", add_steps=[Step("peek5", tuple((x, VCPU) for x in "abcde"), _distinct_sdwait,
                                                  _peek5_effect)])


def _queue_effect(s: Any, i: Any) -> None:
    """Reads i's queue at its length: past the last position when the queue is full."""
    s.pg[i] = s.ite(s.queue[i][s.queue[i].length] == s.queue[i][0], s.pg[i], s.pg[i])


#: reads a queue position past its capacity where i's queue is full (reachable: one write)
PEEKQ = REFERENCE.derive("peekq", add_steps=[Step("peekq", (("i", VCPU),), lambda s, i: s.pc[i] == PC.Idle,
                                                  _queue_effect)])


def _tick(s: Any, i: Any) -> None:
    s.ticks[i] = s.ticks[i] + 1


#: counts past the end of its range on the third tick (the concrete model: "outside its domain")
TICK = REFERENCE.derive("tick", add_variables=[Var("ticks", Range(0, 2, name="ticks"), (VCPU,), "ticks of i")],
                        add_steps=[Step("tick", (("i", VCPU),), lambda s, i: s.pc[i] == PC.Idle, _tick)])


@pytest.mark.parametrize(("protocol", "label"), [(PEEK, "step peek(i) fails"), (PEEK5, "step peek5(a,b,c,d,e) fails"),
                                                 (PEEKQ, "step peekq(i) fails"), (TICK, "step tick(i) fails")])
def test_parametric_does_not_prove_a_variant_whose_step_fails(protocol: Protocol, label: str) -> None:
    """The shipped lemmas stay inductive and imply the property, but admit the failing state: before,
    --parametric said "proved for every N, V, F" of PEEK5 (its failing-step check ran at N <= 3 only)."""
    from deferral.checks.symbolic import parametric
    from deferral.checks.symbolic.parametric_refute import SMALL

    assert max(n for n, _, _ in SMALL) < 5  # PEEK5 fails only where the small-instance search never goes
    res = parametric.prove(protocol, {"queue": 1}, timeout=30)
    last = res.obligations[-1]
    assert last.name == parametric.NO_FAILING_STEP and (last.status, last.broken) == ("cti", [label])
    assert all(o.status == "proved" for o in res.obligations[:-1])
    assert res.status == "unknown" and "admit a state where " + label in res.reason


def test_parametric_failure_conditions_are_exact_for_the_reference() -> None:
    """ack_ipi fails where pc[k] = Ipi, its queue is empty and cur[k] is none, nowhere else: the
    condition is under the guard (a state where the guard is false fails nothing)."""
    import z3

    from deferral.checks.symbolic import parametric

    enc = parametric.ParamEncoding(REFERENCE, {"queue": 1, "spaces": 1})
    x = enc.state("x")
    goals = dict(parametric.failing_goals(enc, x))
    assert list(goals) == ["step ack_ipi(k) fails"]
    (k,) = enc.instances(next(s for s in REFERENCE.steps if s.name == "ack_ipi"))[0]
    u = enc.universe
    vcpu_or_none = next(v.domain for v in REFERENCE.variables if v.name == "cur")
    none = u.none(vcpu_or_none)
    solver = z3.Solver()
    solver.add(z3.Not(goals["step ack_ipi(k) fails"]))
    assert solver.check() == z3.sat
    solver.add(z3.Or(x[("pc", None)](k) != u.literal(PC_DOMAIN, PC.Ipi), x[("cur", None)](k) != none))
    assert solver.check() == z3.unsat


PC_DOMAIN = next(v.domain for v in REFERENCE.variables if v.name == "pc")
