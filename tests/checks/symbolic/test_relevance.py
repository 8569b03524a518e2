"""The bounded Houdini's interrupting alarm (checks/symbolic/relevance.py): an interrupt that lands as
a query ends is never read as a verdict, and never leaves the context unusable."""

from __future__ import annotations

import time

import z3

from deferral.checks.symbolic.relevance import _Alarm


def _sat_model() -> tuple[z3.ModelRef, z3.BitVecRef, int]:
    """A model, a term, and the term's value in it (read before any alarm)."""
    x, y = z3.BitVec("x", 8), z3.BitVec("y", 8)
    s = z3.Solver()
    s.add(x * y == 42, x > 3)
    assert s.check() == z3.sat
    model = s.model()
    return model, x + y, model.eval(x + y, model_completion=True).as_long()


def test_an_interrupt_that_no_query_consumed_is_cleared_when_the_alarm_ends() -> None:
    model, term, value = _sat_model()
    with _Alarm(time.monotonic()) as alarm:  # the deadline has passed: it fires with no query running
        end = time.monotonic() + 5
        while not alarm.fired and time.monotonic() < end:
            time.sleep(0.01)
    assert alarm.fired
    # Z3 keeps the cancel flag until the next check: without clearing it this raises "canceled"
    assert model.eval(term, model_completion=True).as_long() == value


def test_an_alarm_that_did_not_fire_reports_the_solvers_reason() -> None:
    s = z3.Solver()
    with _Alarm(None) as alarm:
        assert s.check() == z3.sat
    assert not alarm.fired
    assert alarm.reason(s) == s.reason_unknown()
