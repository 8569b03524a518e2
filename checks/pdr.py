"""PDR/IC3 with Z3's Spacer: find an inductive invariant without being given one.

The system is the constrained Horn clauses ``Init(x) -> R(x)`` and
``R(x) & T(x, act, y) -> R(y)`` (the whole transition relation as ONE rule, which the
issue's calibration found fastest), queried with ``R(x) & !P(x)``. unsat: P holds and
Spacer's solution for ``R`` is an inductive invariant (returned as readable clauses over
the slot names); sat: P is violated, and a shortest counterexample is then found by
:func:`deferral.checks.bmc.bmc` (Spacer's own derivation is not necessarily shortest).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import z3

from deferral.checks.bmc import BmcResult, bmc
from deferral.checks.symbolic import Encoding, encode
from deferral.model.bounds import Bounds
from deferral.model.protocol import Protocol


@dataclass
class PdrResult:
    status: str  # proved | violated | unknown
    elapsed_s: float
    clauses: list[str] = field(default_factory=list)  # the invariant, one conjunct per line
    smt2: str = ""  # the invariant as an SMT-LIB term over the slot names
    trace: BmcResult | None = None
    reason: str = ""


def _readable(term: Any) -> str:
    return str(term).replace("@x", "").replace("|", "")


def pdr(protocol: Protocol, bounds: Bounds, *, timeout: float | None = None,
        enc: Encoding | None = None) -> PdrResult:
    """Prove the protocol's invariant properties with Spacer, or refute them."""
    start = time.monotonic()
    enc = enc or encode(protocol, bounds)
    fp = z3.Fixedpoint()
    fp.set(engine="spacer")
    fp.set("xform.inline_eager", False)
    fp.set("xform.inline_linear", False)
    fp.set("xform.slice", False)
    if timeout is not None:
        fp.set("timeout", max(1, int(timeout * 1000)))
    xs, ys, act = enc.state("x"), enc.state("y"), enc.selector("x")
    reach = z3.Function("Reach", *[enc.sort(s) for s in enc.layout.slots], z3.BoolSort())
    fp.register_relation(reach)
    fp.declare_var(*xs, *ys, act)
    fp.rule(reach(*xs), enc.init(xs))
    fp.rule(reach(*ys), [reach(*xs), enc.trans(xs, ys, act)])
    bad = z3.Not(enc.invariants(xs))
    try:
        r = fp.query(z3.And(reach(*xs), enc.valid(xs), bad))
    except z3.Z3Exception as exc:  # canceled by the timeout
        return PdrResult("unknown", time.monotonic() - start, reason=str(exc))
    if r == z3.unknown:
        return PdrResult("unknown", time.monotonic() - start, reason=fp.reason_unknown())
    if r == z3.sat:
        left = None if timeout is None else max(1.0, timeout - (time.monotonic() - start))
        found = bmc(protocol, bounds, 200, timeout=left, enc=enc)
        return PdrResult("violated", time.monotonic() - start, trace=found)
    inv = fp.get_cover_delta(-1, reach)
    inv = z3.substitute_vars(inv, *xs)
    inv = z3.simplify(inv)
    conjuncts = list(inv.children()) if z3.is_and(inv) else [inv]
    clauses = sorted((_readable(c) for c in conjuncts), key=lambda c: (len(c), c))
    return PdrResult("proved", time.monotonic() - start, clauses, _readable(inv.sexpr()))
