"""The enumerated route's learning and proof: families learned up to the stage before the requested
bounds (:func:`clauses.learn`), Houdini and induction at the requested bounds, and only where they
fail, one more stage of learning there (:func:`clauses.resume`) and Houdini and induction again.

One function, :func:`prove_learned`, run by ``prove`` in its own process or in a spawned learner
(:mod:`deferral.checks.symbolic.clauses_process`); its :class:`Outcome` is plain data but for the
families, so that a learner can send it back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from deferral.checks.symbolic import clauses
from deferral.model.bounds import Bounds
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol

if TYPE_CHECKING:
    from deferral.checks.symbolic.clauses import Peers


@dataclass
class Outcome:
    """What :func:`prove_learned` did: ``status`` "proved" (``alive``: the inductive families that imply
    the properties) or "unknown" (``why``: (route, reason) pairs, the last one the verdict's); ``rows``:
    the learning's stages and each Houdini and induction at the requested bounds, in order (``kind``
    "learn" or "check"); the samples, the families true in them, the seconds by part."""

    status: str
    alive: list[Lemma] = field(default_factory=list)
    candidates: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    sampled: list[tuple[Bounds, str, int]] = field(default_factory=list)
    enumerated: int = 0
    seconds_by_part: dict[str, float] = field(default_factory=dict)
    why: list[tuple[str, str]] = field(default_factory=list)


def prove_learned(protocol: Protocol, bounds: Bounds, samples_at: Sequence[tuple[Bounds, str]],
                  stages: Sequence[Bounds], *, deadline: float | None, check_deadline: float | None,
                  given: Mapping[Bounds, Any] | None = None, note: Callable[[str], None] | None = None,
                  enc: Any = None, peers: "Peers | None" = None) -> Outcome:
    """Learn at ``stages`` from ``samples_at`` until ``deadline``, then Houdini and induction at ``bounds``
    (each until ``check_deadline``), learning on at ``bounds`` where they fail (``enc``: the encoding at
    ``bounds``, where the caller has one; ``peers``: the other learners, :func:`clauses.learn`'s). EncodingError
    and StepError propagate (nothing was tried)."""
    from deferral.checks.symbolic.induction import not_proved_reason
    from deferral.checks.symbolic.infer import property_lemmas
    from deferral.checks.terms.encoding import encode

    began = time.monotonic()
    r = clauses.learn(protocol, samples_at, stages, deadline=deadline, note=note, given=given, trim_last=True,
                      encodings=None if enc is None else {bounds: enc}, peers=peers)
    enc = enc if enc is not None else encode(protocol, bounds)  # built here once it is needed (a learner's)
    out = Outcome("unknown", sampled=list(r.sampled), enumerated=r.enumerated)
    shown = 0  # the learning's stages already in ``out.rows``
    musts = property_lemmas(protocol)

    def decided(r: clauses.Learned) -> Any:
        """The stages learned so far recorded; Houdini and induction at ``bounds`` over what the last one
        kept (None where the learning failed or Houdini timed out)."""
        nonlocal shown
        out.rows.extend({"kind": "learn", **row} for row in r.to_json()[shown:])
        shown = len(r.stages)
        out.seconds_by_part = dict(r.seconds_by_part)
        if not r.ok:
            out.why.append(("enumerated", f"unknown after {time.monotonic() - began:.1f} s ({r.why})"))
            return None
        names = {y.name for y in r.lemmas}
        cands = list(r.lemmas) + [x for x in musts if x.name not in names]
        return _houdini_induction(enc, cands, check_deadline, out, note)

    checked = decided(r)
    if checked is not None and checked[1].status != "proved" and (deadline is None or time.monotonic() < deadline):
        r = clauses.resume(protocol, r, bounds, deadline=deadline, note=note, enc=enc)
        checked = decided(r)
    if checked is None:
        return out
    alive, res, hlog = checked
    if res.status == "proved":
        out.status, out.alive = "proved", alive
        return out
    out.why.append(("enumerated+houdini+induction", not_proved_reason(len(alive), out.candidates, hlog, res)))
    out.alive = alive
    return out


def _houdini_induction(enc: Any, candidates: list[Lemma], deadline: float | None, out: Outcome,
                       note: Callable[[str], None] | None) -> tuple[list[Lemma], Any, list[str]] | None:
    """Houdini over ``candidates`` at ``enc``'s bounds, then induction on what survives (a "check" row);
    None on a timeout (its reason in ``out.why``)."""
    from deferral.checks.symbolic.induction import check_inductive, houdini

    if note:
        note(f"auto: Houdini over {len(candidates)} enumerated lemma families at {enc.bounds.short()}")
    began = time.monotonic()
    out.candidates = len(candidates)

    def left() -> float | None:
        return None if deadline is None else max(0.001, deadline - time.monotonic())

    try:
        alive, hlog = houdini(enc, candidates, timeout=left())
        r = check_inductive(enc, alive, timeout=left(), inductive=True)
    except TimeoutError as exc:
        out.why.append(("enumerated+houdini+induction", f"Houdini: {exc}"))
        out.rows.append({"kind": "check", "families_in": len(candidates), "families_kept": None,
                         "seconds": time.monotonic() - began, "result": "unknown"})
        return None
    out.rows.append({"kind": "check", "families_in": len(candidates), "families_kept": len(alive),
                     "seconds": time.monotonic() - began, "result": r.status})
    return alive, r, hlog
