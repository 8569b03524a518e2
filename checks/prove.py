"""``prove``: one entry point for the Z3 methods, and the default (``auto``) strategy.

Methods: ``bmc`` (bounded; a violation or "nothing up to depth K", never a proof),
``induction`` (the shipped lemmas of :mod:`deferral.model.invariant` must be inductive
and imply the properties), ``pdr`` (Spacer infers an invariant), and ``auto``:

1. Houdini over the candidate lemmas (the shipped lemma families, each stated for all
   VCPUs and pages) at the requested bounds: drop every family that is not initially
   true or not preserved, until the rest is inductive; if what is left implies the
   properties, the result is proved by induction (route ``houdini+induction``);
2. otherwise bounded model checking to a modest depth (a violation is a refutation with
   a shortest trace);
3. otherwise Spacer with what is left of the time limit.

The route that settled the question is reported as it is. Candidate lemmas are not
mined from Spacer's invariants (not done: the shipped lemmas are the only seed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

from deferral.checks.bmc import bmc
from deferral.checks.induction import check_inductive, houdini
from deferral.checks.pdr import pdr
from deferral.checks.results import Path
from deferral.checks.symbolic import encode
from deferral.model.bounds import Bounds
from deferral.model.invariant import INVARIANT, Lemma
from deferral.model.protocol import Protocol

METHODS = ("auto", "bmc", "induction", "pdr")
AUTO_BMC_DEPTH = 12


@dataclass
class ProveResult:
    variant: str
    bounds: Bounds
    method: str
    status: str  # proved | violated | unknown
    elapsed_s: float
    route: str = ""  # what settled it (for auto)
    depth: int | None = None
    invariant: list[str] | None = None
    path: Path | None = None
    prop: str | None = None
    reason: str = ""
    cti: dict[str, Any] | None = None
    log: list[str] = field(default_factory=list)
    smt2: str = ""

    @property
    def exit_code(self) -> int:
        return {"proved": 0, "violated": 1}.get(self.status, 3)


def prove(protocol: Protocol, bounds: Bounds, method: str = "auto", *, depth: int = 20,
          timeout: float | None = None, lemmas: tuple[Lemma, ...] = INVARIANT,
          note: Callable[[str], None] | None = None) -> ProveResult:
    """Run ``method``; ``note`` receives progress lines."""
    start = time.monotonic()
    say = note or (lambda text: None)
    enc = encode(protocol, bounds)

    def left() -> float | None:
        return None if timeout is None else max(0.5, timeout - (time.monotonic() - start))

    def result(status: str, **kw: Any) -> ProveResult:
        return ProveResult(protocol.name, bounds, method, status, time.monotonic() - start, **kw)

    if method == "bmc":
        found = bmc(protocol, bounds, depth, timeout=timeout, enc=enc,
                    progress=lambda d, t: say(f"bmc: no violation up to depth {d} ({t:.1f} s)"))
        if found.status == "violated":
            return result("violated", route="bmc", depth=found.depth, path=found.path, prop=found.prop)
        return result("unknown", route="bmc", depth=found.depth,
                      reason=f"no violation up to depth {found.depth}" + (
                          "" if found.depth == depth else f" ({found.reason})"))

    if method == "induction":
        say(f"induction: {len(lemmas)} lemmas")
        r = check_inductive(protocol, bounds, lemmas, timeout=timeout, enc=enc)
        names = [lem.show() for lem in lemmas]
        if r.status == "proved":
            return result("proved", route="induction", invariant=names)
        cti = r.cti.to_json(enc) if r.cti else None
        state = enc.model.to_json(r.state) if r.state is not None else None
        why = {"not-inductive": "the invariant is not inductive", "fails-initially": "the invariant fails initially",
               "too-weak": "the invariant does not imply the property", "unknown": r.reason}[r.status]
        return result("unknown", route="induction", invariant=names, reason=f"{why}: {', '.join(r.failed[:4])}",
                      cti=cti if cti else ({"state": state, "failed": r.failed} if state else None))

    if method == "pdr":
        say("pdr: Spacer is searching for an invariant")
        r = pdr(protocol, bounds, timeout=timeout, enc=enc)
        if r.status == "proved":
            return result("proved", route="pdr", invariant=r.clauses, smt2=r.smt2)
        if r.status == "violated" and r.trace is not None and r.trace.path is not None:
            return result("violated", route="pdr+bmc", depth=r.trace.depth, path=r.trace.path, prop=r.trace.prop)
        return result("unknown", route="pdr", reason=r.reason or "Spacer gave no answer")

    if method != "auto":
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")

    log: list[str] = []
    say(f"auto: Houdini over {len(lemmas)} candidate lemma families")
    try:
        alive, hlog = houdini(protocol, bounds, lemmas, timeout=left(), enc=enc)
        log += hlog
        say(f"auto: {len(alive)} lemma families are inductive; checking they imply the properties")
        r = check_inductive(protocol, bounds, alive, timeout=left(), enc=enc)
        if r.status == "proved":
            return result("proved", route="houdini+induction", invariant=[lem.show() for lem in alive], log=log)
        log.append(f"houdini+induction: {r.status} ({', '.join(r.failed[:3])})")
    except TimeoutError as exc:
        log.append(f"houdini: {exc}")
    say(f"auto: bounded model checking to depth {AUTO_BMC_DEPTH}")
    found = bmc(protocol, bounds, min(depth, AUTO_BMC_DEPTH) if depth else AUTO_BMC_DEPTH, timeout=left(), enc=enc)
    if found.status == "violated":
        return result("violated", route="bmc", depth=found.depth, path=found.path, prop=found.prop, log=log)
    log.append(f"bmc: no violation up to depth {found.depth}")
    say("auto: Spacer (pdr)")
    r2 = pdr(protocol, bounds, timeout=left(), enc=enc)
    if r2.status == "proved":
        return result("proved", route="pdr", invariant=r2.clauses, smt2=r2.smt2, log=log)
    if r2.status == "violated" and r2.trace is not None and r2.trace.path is not None:
        return result("violated", route="pdr+bmc", depth=r2.trace.depth, path=r2.trace.path, prop=r2.trace.prop,
                      log=log)
    return result("unknown", route="auto", reason=r2.reason or "no method settled it", log=log)
