"""Fixtures of the explicit search's tests: variants that the concrete model refuses somewhere."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from deferral.model import REFERENCE
from deferral.model.protocol import Protocol
from deferral.model.reference import PC


def _take_ipi_forgetting_the_initiator(s: Any, k: Any, i: Any) -> None:
    """take_ipi records its initiator only when it interrupts a wait: from Idle, ack_ipi then reads
    ``pg[cur[k]]`` with ``cur[k]`` none, which the concrete model refuses (index out of range)."""
    s.ipi[k][i] = False
    s.waitret[k] = s.pc[k] == PC.SdWait
    s.cur[k] = s.ite(s.pc[k] == PC.SdWait, i, s.cur[k])
    s.pc[k] = PC.Ipi


@pytest.fixture(scope="session")
def lost_cur() -> Protocol:
    """A variant whose ack_ipi reads through ``none`` three steps in (at 2,1,1,1)."""
    take = REFERENCE.step("take_ipi")
    return replace(REFERENCE, name="lost-cur", steps=tuple(
        st.with_effect(_take_ipi_forgetting_the_initiator) if st is take else st for st in REFERENCE.steps))
