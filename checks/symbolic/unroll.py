"""The transition relation unrolled from Init, depth by depth, on one incremental Z3 solver."""

from __future__ import annotations

import time
from typing import Any, Iterator

import z3

from deferral.checks.terms.encoding import Encoding


def unrolled(enc: Encoding, max_depth: int, timeout: float | None = None,
             prefix: str = "") -> Iterator[tuple[int, z3.Solver, list[list[Any]]]]:
    """``(d, solver, states)`` for d = 0..``max_depth``: the solver holds ``Init(s0) & T(s0,s1) &
    ... & T(s_{d-1}, s_d)`` (state variables tagged ``prefix`` + d) and a timeout of what is left
    of ``timeout``; the unrolling stops early when that is used up."""
    start = time.monotonic()
    solver = z3.SolverFor("QF_BV")
    states = [enc.state(f"{prefix}0")]
    solver.add(enc.init(states[0]))
    for d in range(max_depth + 1):
        if d > 0:
            states.append(enc.state(f"{prefix}{d}"))
            solver.add(enc.trans(states[d - 1], states[d], enc.selector(f"{prefix}{d - 1}")))
        if timeout is not None:
            left = timeout - (time.monotonic() - start)
            if left <= 0:
                return
            solver.set("timeout", max(1, int(left * 1000)))
        yield d, solver, states
