"""The Z3 proof of VCPU symmetry lets interrupts through: Ctrl-C or SIGTERM that lands in a C call's
argument conversion comes out of ctypes as ``ArgumentError("argument 2: KeyboardInterrupt: ")``, which
the encoding took for a user's step failing, so the proof said "undecided" and the command went on."""

from __future__ import annotations

import ctypes
import signal
from typing import Any

import pytest

from deferral.checks.terms.vcpu_symmetry import prove_vcpu_symmetry
from deferral.cli.terminate import Terminated
from deferral.model import REFERENCE, Bounds


def _raising(error: BaseException) -> Any:
    def enqueue_notice(s: Any, i: Any, p: Any, sp: Any = 0) -> None:
        raise error

    return REFERENCE.derive("raising", procedures={"enqueue_notice": enqueue_notice})


def test_ctrl_c_inside_a_c_call_interrupts_the_proof() -> None:
    with pytest.raises(KeyboardInterrupt):
        prove_vcpu_symmetry(_raising(ctypes.ArgumentError("argument 2: KeyboardInterrupt: ")), Bounds(2, 1, 1, 1))


def test_sigterm_inside_a_c_call_terminates_the_proof() -> None:
    """The CLI's handler (installed here whatever was there: pytest-xdist's workers have their own,
    where ``sigterm_unwinds`` leaves it alone)."""
    def terminated(signum: int, frame: Any) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, terminated)
    try:
        with pytest.raises(Terminated):
            prove_vcpu_symmetry(_raising(ctypes.ArgumentError("argument 1: Terminated: terminated (SIGTERM)")),
                                Bounds(2, 1, 1, 1))
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_a_users_own_error_is_still_undecided() -> None:
    proof = prove_vcpu_symmetry(_raising(ctypes.ArgumentError("argument 1: TypeError: wrong type")), Bounds(2, 1, 1, 1))
    assert proof.status == "undecided" and "ArgumentError" in proof.reason
