"""Loops whose iterations write an element other iterations may write (``tlb[k][pg[j]] = 0`` for every
pending ``j``) in the parametric backend: evaluated where the order cannot matter, refused where it can."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from deferral.checks.symbolic import parametric as P
from deferral.checks.terms.encoding import EncodingError
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.schema import VCPU
from deferral.model.variants import load_variant_file

from tests.checks.symbolic.test_parametric import relation

DATA = Path(__file__).parent / "data"
BATCH = load_variant_file(DATA / "ipi_batch.py")
NOFLUSH = load_variant_file(DATA / "ipi_batch_noflush_bug.py")
AT = Bounds(3, 2, 1, 1)


def batching_states(model: Model, wanted: int) -> list[tuple[int, ...]]:
    """Reachable states (seeded random walks) where some VCPU may ack an IPI while another initiator's
    IPI is pending at it and its TLB holds an entry of that initiator's page: the loop has work."""
    rng, found = random.Random(0), []
    for _ in range(400):
        state = model.initial
        for _ in range(60):
            succ = list(model.successors(state))
            if not succ:
                break
            state = rng.choice(succ)[1]
            js = model.to_json(state)
            if any(js["pc"][k] == "Ipi" and not js["queue"][k] and any(
                    js["ipi"][k][j] and js["tlb"][k][js["pg"][j]] for j in range(AT.vcpus)) for k in range(AT.vcpus)):
                found.append(state)
                break
        if len(found) == wanted:
            return found
    raise AssertionError(f"only {len(found)} batching states in 400 walks")


def test_the_loop_agrees_with_the_model_at_finite_sorts() -> None:
    """At exactly 3 VCPUs and 2 pages the parametric functions allow exactly the model's successors, from
    states where the handler's loop flushes another initiator's page; the bug's model differs there."""
    model = Model(BATCH, AT)
    states = batching_states(model, 4)
    bridge, solver, x, y = relation(BATCH, AT)
    for state in states:
        assert P.successors(bridge, solver, x, y, state) == {t for _, t in model.successors(state)}, model.to_json(state)
    bug = Model(NOFLUSH, AT)
    assert any(P.successors(bridge, solver, x, y, s) != {t for _, t in bug.successors(s)} for s in states)


def test_the_batching_handler_is_proved_for_every_n_v_f() -> None:
    res = P.prove(BATCH, {"queue": 1}, timeout=60)
    assert (res.status, res.exit_code) == ("proved", 0), res.reason


def test_the_batching_bug_is_never_proved() -> None:
    """It acks every pending IPI but flushes one page (violated at 3,2,1,1 in 13 steps)."""
    res = P.prove(NOFLUSH, {"queue": 1}, timeout=5, seeds=(0,))
    assert (res.status, res.exit_code) == ("unknown", 3)
    assert any(o.status in ("cti", "unknown") for o in res.obligations) and res.reason


def _variant(body):  # type: ignore[no-untyped-def]
    def ack_all(s, k):  # type: ignore[no-untyped-def]
        i = s.cur[k]
        s.proc.remote_flush(k, i)
        s.proc.ack(k, i)
        for j in s.each(VCPU):
            with s.when(s.ipi[k][j]):
                body(s, k, j)
                s.ipi[k][j] = False
                s.waiting[j][k] = False
    return REFERENCE.derive("loop", replace_steps=[REFERENCE.step("ack_ipi").with_effect(ack_all)])


def _post(variant) -> None:  # type: ignore[no-untyped-def]
    enc = P.ParamEncoding(variant, {"queue": 1, "spaces": 1})
    step = variant.step("ack_ipi")
    enc.post(step, enc.instances(step)[0], enc.state("x"))


@pytest.mark.parametrize("body,why", [
    (lambda s, k, j: s.tlb[k].__setitem__(s.pg[j], s.gpt[s.sp[j]][s.pg[j]]), "value that differs between iterations"),
    (lambda s, k, j: s.tlb[k].__setitem__(s.pg[j], s.ite(s.tlb[k][0] == 0, 0, 0)), "reads it"),
])
def test_an_order_dependent_loop_is_refused(body, why: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(EncodingError, match=rf"step ack_ipi\(k\).*writes tlb at an index that is not the loop variable.*{why}"):
        _post(_variant(body))


def test_one_value_written_by_every_iteration_is_evaluated() -> None:
    _post(_variant(lambda s, k, j: s.tlb[k].__setitem__(s.pg[j], 0)))
