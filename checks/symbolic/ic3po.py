"""Symmetry-aware invariant inference in the style of IC3PO: IC3 on a small instance, every clause learned as a whole orbit.

Goel and Sakallah, "On Symmetry and Quantification: A New Approach to Verify Distributed
Protocols" (NFM 2021): run IC3/PDR on a small finite instance of the protocol, and boost
every clause it learns by the protocol's symmetry, so that a frame holds whole orbits of
clauses; read each orbit back as one quantified family ("for all distinct i, k, j: ...");
grow the instance until the families stop changing (the cutoff), and prove the result.

Here the IC3 loop is our own (Python + Z3, over the bit-vector encoding of the protocol's own
step functions, :mod:`deferral.checks.terms.encoding`), at an instance such as N=3, V=2,
F=2 at the requested Q and S. Its literals are the terms of the learned route's vocabulary
(:mod:`deferral.checks.symbolic.infer`: reads, queue lengths and contents, equalities of
frames) over a signature that names *every* element of the instance (three VCPUs i, k, j,
two pages p, q, ...), each with its abstract value ("lw[p] = k", "len(queue[i]) = full",
"gpt[p] = shadow[k][p]"). A state's cube is all of them; its orbit is the family "never
(these terms) = (these values)" for all distinct variables, an :class:`infer.Family`:

* a counterexample to the property in frame k is blocked recursively (its predecessors in
  lower frames first), as in IC3;
* a blocked cube is shrunk by the unsat core of the relative-induction query, then literal by
  literal (inductive generalization, "down"), each candidate first checked against the
  reachable states the explicit search and random walks give at the instance (a cube some
  reachable state matches cannot be blocked: no solver query is spent on it) and the
  initial state;
* the whole orbit (every permutation of VCPUs, pages, spaces; frames are compared only by
  equality, so their permutations are in it too) is added to the frames, not one clause;
* clauses are pushed forward; two equal frames are an inductive invariant at the instance.

When the explicit search enumerates every reachable state of the instance ("exact"), one frame is
enough: a counterexample to induction is excluded by the literals over the FEWEST variables (then
without nested reads, then the shortest irredundant greedy cover, rarest literal first) that no
reachable state has together; a family over two variables carries to every N. Each instance starts
from the orbits learned at the smaller ones that no reachable state of it violates (exact, cheap),
so only what is new there is learned (the cutoff grows one dimension at a time).

Nothing learned is trusted: the families are then (a) kept by Houdini and proved inductive,
with the property, at the requested bounds (:mod:`deferral.checks.symbolic.induction`) and
(b) proved for every N, V, F at the requested Q and S over uninterpreted sorts
(:mod:`deferral.checks.symbolic.parametric`). Soundness rests only on Z3's unsat answers of
those final proofs; an undecided query makes the route "unknown" with Z3's reason as text.
The shipped lemmas of model/invariant.py are not used.

The route is split by job: :mod:`~deferral.checks.symbolic.ic3po_vocab` (the instance's terms,
cubes, orbits as families), :mod:`~deferral.checks.symbolic.ic3po_sample` (reachable states as one
abstract row per orbit, and the scans over them), :mod:`~deferral.checks.symbolic.ic3po_core` (the
IC3 loop), :mod:`~deferral.checks.symbolic.ic3po_files` (loading a saved invariant); this module is
the route's driver and keeps every public name importable from here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from deferral.checks.terms.encoding import Encoding, encode
from deferral.checks.symbolic.ic3po_core import INF, QUERY_S, Clause, Ic3, Ic3Result, Ic3Unknown
from deferral.checks.symbolic.ic3po_files import is_ic3po_file, load
from deferral.checks.symbolic.ic3po_sample import GROWTH_CAP, SAMPLE_CAP, WALK_CAP, Rows, exclusion, reachable_samples
from deferral.checks.symbolic.ic3po_vocab import Cube, Vocabulary, full_signature, orbit_family
from deferral.checks.symbolic.induction import check_inductive, houdini
from deferral.checks.symbolic.infer import Family, property_lemmas
from deferral.model.bounds import Bounds
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol

__all__ = ["INF", "INSTANCES", "QUERY_S", "ROUTE_BOUNDED", "ROUTE_PARAMETRIC", "SAMPLE_CAP", "WALK_CAP", "Clause",
           "Cube", "Ic3", "Ic3Result", "Ic3Unknown", "Ic3poResult", "Rows", "Vocabulary", "exclusion",
           "full_signature", "instances_for", "is_ic3po_file", "learn_and_prove", "load", "orbit_family",
           "prove_bounded", "prove_parametric", "reachable_samples"]

#: The instances IC3 runs at, smallest first (each clipped to the requested bounds, at its Q and S):
#: the cutoff grows the instance while the families learned at the last one are not proved.
INSTANCES = ((2, 1, 1), (3, 1, 1), (2, 2, 1), (2, 2, 2), (3, 2, 2))
#: Route names in prove's JSON.
ROUTE_BOUNDED, ROUTE_PARAMETRIC = "ic3po+houdini+induction", "ic3po+parametric"


# ---- the route: learn at growing instances, prove at the requested bounds and for every N, V, F --------
@dataclass
class Ic3poResult:
    status: str  # proved | unknown
    route: str
    families: list[Family]
    elapsed_s: float
    reason: str = ""
    learned_at: list[Bounds] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)  # per instance: figures of IC3 and the proofs
    for_every: dict[str, Any] | None = None
    lemmas: list[Lemma] = field(default_factory=list)


def instances_for(protocol: Protocol, bounds: Bounds, clipped: bool = True) -> list[Bounds]:
    """:data:`INSTANCES` at ``bounds``' other bounds (Q, S), ``clipped`` to ``bounds``; duplicates dropped."""
    out: list[Bounds] = []
    for n, v, f in INSTANCES:
        b = bounds.replace(vcpus=min(n, bounds.vcpus), pages=min(v, bounds.pages), frames=min(f, bounds.frames)
                           ) if clipped else bounds.replace(vcpus=n, pages=v, frames=f)
        if b not in out:
            out.append(b)
    return out


def prove_bounded(enc: Encoding, fams: Sequence[Family], timeout: float | None) -> tuple[str, list[Family], str]:
    """Houdini over the families (with the property) at ``enc``'s bounds, then induction, all within
    ``timeout`` seconds: (status, kept, why)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    cands = [f.lemma() for f in fams] + property_lemmas(enc.protocol)
    try:
        alive, _ = houdini(enc, cands, timeout=timeout, deadline=deadline)
    except TimeoutError as exc:
        return "unknown", [], str(exc)
    names = {lem.name for lem in alive}
    if not all(lem.name in names for lem in property_lemmas(enc.protocol)):
        return "unknown", [], "the property is not inductive with the families"
    left = None if deadline is None else deadline - time.monotonic()
    if left is not None and left <= 0:
        return "unknown", [], "time limit (before the safety check)"
    r = check_inductive(enc, alive, timeout=left, inductive=True)
    kept = [f for f in fams if f.show() in names]
    return ("proved" if r.status == "proved" else "unknown"), kept, r.reason or r.status


def prove_parametric(protocol: Protocol, bounds: Bounds, fams: Sequence[Family], timeout: float | None,
                     note: Callable[[str], None] | None = None) -> Any:
    """The families (and the property) for every N, V, F at ``bounds``' Q and S: Houdini over uninterpreted
    sorts drops what a step does not preserve, then the parametric obligations (a ParametricResult)."""
    from deferral.checks.symbolic import parametric

    lems = parametric.learned_lemmas(list(fams), protocol)
    props = lems[len(fams):]
    first = parametric.prove(protocol, dict(bounds), lems, timeout=timeout, note=note)
    if first.status == "proved":
        return first
    try:
        h = parametric.houdini(protocol, dict(bounds), lems[:len(fams)], props, timeout=timeout, note=note)
    except TimeoutError as exc:  # unknown, with the reason as text
        first.obligations.append(parametric.Obligation("houdini over uninterpreted sorts", "unknown", 0.0,
                                                       reason=str(exc)))
        return first
    if h.broken is not None:
        first.obligations.append(parametric.Obligation("houdini over uninterpreted sorts", "unknown", h.elapsed_s,
                                                       reason=h.broken))
        return first
    return parametric.prove(protocol, dict(bounds), list(h.alive) + props, timeout=timeout, note=note)


def learn_and_prove(protocol: Protocol, bounds: Bounds, *, timeout: float | None = 120.0, for_every: bool = True,
                    note: Callable[[str], None] | None = None) -> Ic3poResult:
    """IC3 with orbit clauses at growing instances; the families proved at ``bounds`` (bounded) and, with
    ``for_every``, for every N, V, F at its Q and S. Unknown (never proved) when the time runs out, IC3
    finds a counterexample at an instance, or the families are not inductive."""
    t0 = time.monotonic()
    deadline = None if timeout is None else t0 + timeout
    say = note or (lambda text: None)
    res = Ic3poResult("unknown", ROUTE_BOUNDED, [], 0.0)
    enc_req: Encoding | None = None
    last: set[str] = set()

    def left() -> float | None:
        return None if deadline is None else max(0.0, deadline - time.monotonic())

    reasons = []
    before: list[Family] = []  # every orbit learned at the instances so far: the seeds of the next one
    pool: dict[str, Family] = {}
    sampled: list[tuple[Bounds, bool, int]] = []  # per instance: exact?, how many orbits
    for at in instances_for(protocol, bounds, clipped=not for_every):
        began = time.monotonic()
        if deadline is not None and deadline - began < 1.0:
            reasons.append(f"time limit before IC3 at {at.short()}")
            break
        say(f"ic3po: sampling reachable states at {at.short()}")
        engine = Ic3(protocol, at, deadline, note)
        explicit = not any(b.vcpus <= at.vcpus and b.pages <= at.pages and b.frames <= at.frames
                           and (not ok or n > GROWTH_CAP) for b, ok, n in sampled)
        engine.samples, engine.exact = reachable_samples(protocol, at, engine.vocab, deadline, explicit)
        sampled.append((at, engine.exact, len(engine.samples)))
        seeded = engine.seed(before)
        say(f"ic3po: IC3 with orbit clauses at {at.short()} ({len(engine.vocab.terms)} terms, "
            f"{seeded} of {len(before)} orbits learned at smaller instances hold here)")
        r = engine.run()
        for c in engine.clauses:
            pool.setdefault(c.family.show(), c.family)
        before = list(pool.values())
        row: dict[str, Any] = {"bounds": at.as_dict(), "status": r.status, "frames": r.frames,
                               "clauses": r.clauses, "seeded": seeded, "families": len(r.families),
                               "queries": r.queries, "samples": r.samples, "exact": engine.exact,
                               "seconds": round(r.elapsed_s, 2)}
        res.rounds.append(row)
        if r.status != "invariant":
            reasons.append(f"IC3 at {at.short()}: {r.status} ({r.reason})")
            if r.status == "violated":
                break
            continue
        res.learned_at = [at]
        shown = {f.show() for f in r.families}
        row["same_as_before"] = shown == last
        last = shown
        if True:  # the requested bounds first: Houdini there drops what holds only at the instance
            enc_req = enc_req or (engine.enc if at == bounds else encode(protocol, bounds, check=False))
            if deadline is not None and left() <= 0:
                reasons.append(f"time limit before the proof at {bounds.short()}")
                break
            proving = time.monotonic()
            status = "unknown"
            if at == bounds:  # IC3's fixpoint here is inductive at the bounds themselves: confirm it alone first
                status, kept, why = prove_bounded(enc_req, r.families, left())
            if status != "proved":
                status, kept, why = prove_bounded(enc_req, before, left())  # every instance's orbits
            row["bounded"] = status
            row["bounded_seconds"] = round(time.monotonic() - proving, 2)
            if status != "proved":
                reasons.append(f"at {bounds.short()}, the {len(before)} orbits learned up to {at.short()}: {why}")
                continue
            res.families = kept
        if for_every:
            say(f"ic3po: proving {len(res.families)} families for every N, V, F")
            p = prove_parametric(protocol, bounds, res.families, None if left() is None else left() / 2, note)
            row["parametric"] = p.verdict
            row["seconds_total"] = round(time.monotonic() - began, 2)
            if p.status == "proved":
                res.status, res.route = "proved", ROUTE_PARAMETRIC
                res.for_every = {"for_every": p.open_bounds, "assumed_concrete": p.concrete}
                res.lemmas = list(p.lemmas)
                break
            reasons.append(f"for every N, V, F, the families from {at.short()}: {p.reason[:300]}")
            if enc_req is not None:  # proved at the requested bounds at least
                res.status = "proved"
            continue
        res.status = "proved"
        break
    res.elapsed_s = time.monotonic() - t0
    if res.status != "proved" or (for_every and res.route != ROUTE_PARAMETRIC):
        res.reason = "; ".join(reasons) or "no instance left"
    return res

