"""The enumerated route's learning and proof: families learned up to the stage before the requested
bounds (:func:`clauses.learn`), Houdini and induction at the requested bounds, and only where they
fail, one more stage of learning there (:func:`clauses.resume`) and Houdini and induction again.

At large bounds the learned families are also tried for every N, V, F at the requested Q and S
(:func:`_for_every`: Houdini and the proof over uninterpreted sorts, checks/symbolic/parametric.py),
whose cost does not grow with N, V, F: a proof there covers the requested bounds, and says so. Which
way first, and with what share of the time, is :func:`for_every_first`'s.

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
    #: a proof for every N, V, F (:func:`_for_every`): what was open, what concrete, the verdict
    for_every: dict[str, Any] | None = None


def prove_learned(protocol: Protocol, bounds: Bounds, samples_at: Sequence[tuple[Bounds, str]],
                  stages: Sequence[Bounds], *, deadline: float | None, check_deadline: float | None,
                  given: Mapping[Bounds, Any] | None = None, note: Callable[[str], None] | None = None,
                  enc: Any = None, peers: "Peers | None" = None) -> Outcome:
    """Learn at ``stages`` from ``samples_at`` until ``deadline``, then Houdini and induction at ``bounds``
    (each until ``check_deadline``), learning on at ``bounds`` where they fail (``enc``: the encoding at
    ``bounds``, where the caller has one; ``peers``: the other learners, :func:`clauses.learn`'s). At large
    bounds the first check also tries the families for every N, V, F (:func:`_for_every`; which way first:
    :func:`for_every_first`).
    EncodingError and StepError propagate (nothing was tried)."""
    from deferral.checks.symbolic.induction import not_proved_reason
    from deferral.checks.symbolic.infer import property_lemmas
    from deferral.checks.terms.encoding import encode
    from deferral.model.concrete import Model

    began = time.monotonic()
    r = clauses.learn(protocol, samples_at, stages, deadline=deadline, note=note, given=given, trim_last=True,
                      encodings=None if enc is None else {bounds: enc}, peers=peers)
    out = Outcome("unknown", sampled=list(r.sampled), enumerated=r.enumerated)
    shown = 0  # the learning's stages already in ``out.rows``
    musts = property_lemmas(protocol)

    def encoding() -> Any:
        """The encoding at ``bounds``: built here once it is needed (a learner's; not where a proof for every
        N, V, F came first: 2 s at 6,3,3,3,S=3)."""
        nonlocal enc
        if enc is None:
            enc = encode(protocol, bounds)
        return enc

    # at large bounds the first check tries the families for every N, V, F too, before or after Houdini here
    large = len(Model(protocol, bounds).actions) >= FOR_EVERY_FIRST_ACTIONS

    def decided(r: clauses.Learned) -> Any:
        """The stages learned so far recorded; Houdini and induction at ``bounds`` over what the last one
        kept (None where the learning failed or Houdini timed out)."""
        nonlocal shown, large
        out.rows.extend({"kind": "learn", **row} for row in r.to_json()[shown:])
        shown = len(r.stages)
        out.seconds_by_part = dict(r.seconds_by_part)
        if not r.ok:
            out.why.append(("enumerated", f"unknown after {time.monotonic() - began:.1f} s ({r.why})"))
            return None
        names = {y.name for y in r.lemmas}
        cands = list(r.lemmas) + [x for x in musts if x.name not in names]
        if not large:
            return _houdini_induction(encoding(), cands, check_deadline, out, note)
        large = False  # (not again after the learning resumes: the bounded check alone then)
        ahead = for_every_first(protocol, bounds, peers)
        first = None if check_deadline is None else \
            time.monotonic() + first_check_s(max(0.0, check_deadline - time.monotonic()), ahead)
        if ahead:
            done = _for_every(protocol, bounds, cands, first, out, note, r.stages[-1].at)
            return done if done is not None else _houdini_induction(encoding(), cands, check_deadline, out, note)
        checked = _houdini_induction(encoding(), cands, first, out, note)
        if checked is not None and checked[1].status != "unknown":
            return checked  # proved, or too weak at these bounds (so for every N, V, F too)
        done = _for_every(protocol, bounds, cands, check_deadline, out, note, r.stages[-1].at)
        return done if done is not None else checked

    checked = decided(r)
    if checked is not None and checked[1].status != "proved" and (deadline is None or time.monotonic() < deadline):
        r = clauses.resume(protocol, r, bounds, deadline=deadline, note=note, enc=encoding())
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


#: From how many step instances at the requested bounds the learned families are also tried for every N, V, F
#: (:func:`for_every_first`). invlpg_sync_one's 19 families at 6,3,3,3,S=3 (420 instances): Houdini
#: and induction there 22.5-50 s, for every N, V, F at Q=3, S=3 5.6 s; at 4,3,3,3,S=3 (272) 5.1 s and 5.6 s
#: (PROVE.md, 8 Dec).
FOR_EVERY_FIRST_ACTIONS = 300
#: At large bounds, the share of the time left to the check's deadline the first of the two ways may take
#: (:func:`for_every_first`); the second has the rest.
FIRST_CHECK_SHARE = 0.4
#: Seconds the check for every N, V, F gets at least where it comes first (all that is left, where less is): with the
#: share alone, the learner that checks so first at 6,3,3,3,S=3 had 4-5 s left for it after its learning (mask_before_send's
#: families need 13-17 s, drain_zaps' 7-9 s) and gave the rest to Houdini at those bounds, which takes 22-51 s there
#: (PROVE.md, 8 Dec, 04:40).
FOR_EVERY_FIRST_MIN_S = 15.0
#: Seconds per seed of one of its Houdini's queries (parametric.Houdini's ``query_s``): an undecided query drops its
#: family. The time limit is checked between queries, and one query can take several tries (seeds, a fresh
#: context), so a failing attempt can run past it: 38 s under a limit of 28 (the reference's families learned at
#: 2,1,1,1 alone, not inductive for every N). At 1 s it ended in 16.5 s, but the families learned at 3,2,2,1,
#: which 4 s proves for every N, V, F, were not proved (PROVE.md, 8 Dec).
FOR_EVERY_QUERY_S = 4.0
#: Seconds (one seed) each query of :func:`_for_every`'s Houdini is first asked assuming every live family; where that
#: is undecided, it is asked assuming the families its unsat core at the learning's last bounds names.
FOR_EVERY_LIVE_FIRST_S = 0.3


def first_check_s(left: float, for_every: bool) -> float:
    """Of the ``left`` seconds to the check's deadline, those the first of the two ways gets: :data:`FIRST_CHECK_SHARE`
    of them, and where that is the check for every N, V, F (``for_every``) at least :data:`FOR_EVERY_FIRST_MIN_S`
    (never more than ``left``)."""
    share = FIRST_CHECK_SHARE * left
    return max(share, min(left, FOR_EVERY_FIRST_MIN_S)) if for_every else share


def for_every_first(protocol: Protocol, bounds: Bounds, peers: "Peers | None") -> bool:
    """At large bounds (:data:`FOR_EVERY_FIRST_ACTIONS` step instances or more), does this learner try its families
    for every N, V, F (:func:`_for_every`) before Houdini and induction at ``bounds``? A lone learner does; of two or
    more every second one (by rank), the others Houdini at ``bounds`` first; each gives the first way
    :data:`FIRST_CHECK_SHARE` of the check's time and the other way the rest, as the first proof wins. Neither way
    is always the faster, and one fails where the other proves (PROVE.md, 8 Dec): at 6,3,3,3,S=3 the families of
    five variants took 7.5-12.3 s for every N, V, F and 8.7-12.4 s at the bounds; invlpg_sync_one's 5.6 s and
    22-50 s; wait-irqs-off's induction at the bounds ran out of time on its safety query, where the proof for every
    N, V, F took 5.5 s; defer_all_spaces' families were not proved for every N, V, F, and its bounded proof (8 s)
    then had too little time left."""
    return peers is None or peers.count < 2 or peers.rank % 2 == 1


def _for_every(protocol: Protocol, bounds: Bounds, candidates: list[Lemma], deadline: float | None, out: Outcome,
               note: Callable[[str], None] | None, learned_at: Bounds | None = None
               ) -> tuple[list[Lemma], Any, list[str]] | None:
    """The candidates (learned families and the properties) proved for every N, V, F at ``bounds``' Q and S:
    Houdini over uninterpreted sorts (:class:`parametric.Houdini`), then the proof of what it keeps
    (:func:`parametric.prove`, the obligations Houdini's solver settled not asked again; the proof first, as
    :func:`parametric.prove_candidates` does, was unknown after 66 s where this took 5.6, invlpg_sync_one at
    Q=3, S=3); a "check" row either way. None where that is not a proof (a family not inductive for every N,
    V, F, Z3 undecided, out of time, or a protocol that cannot be evaluated for every number of elements):
    the bounded check decides then.

    ``learned_at``: the bounds the families were learned at. A query MBQI leaves undecided with every live family
    assumed (:data:`FOR_EVERY_LIVE_FIRST_S`) is asked again assuming only the families its unsat core there (at the
    requested Q and S) names: lazy_cur_clear's 30 families from a learner at 6,3,3,3,S=3 were refused after 85-113 s
    in four runs of five (seven such queries, each dropping its family after 12 s of tries), and were proved in
    19.6-21.3 s so (PROVE.md, 8 Dec, 04:40). The bounded instance is encoded at the first such query only: a Houdini
    there first (1.5-3 s) made the check too slow for the share of the time it gets at 6,3,3,3,S=2 in one grid
    (drain_zaps, defer_all_spaces: proved in 4.5 and 7.7 s on main, unknown with it)."""
    from deferral.checks.symbolic import parametric, paramlearn
    from deferral.checks.symbolic.infer import property_lemmas
    from deferral.checks.symbolic.relevance import Relevance
    from deferral.checks.terms.encoding import EncodingError
    from deferral.model.context import StepError

    concrete = parametric.concrete_bounds(protocol, dict(bounds))
    open_bounds = paramlearn.open_bounds(protocol)
    budget = None if deadline is None else max(0.0, deadline - time.monotonic())
    if budget is not None and budget < 1.0:
        return None
    props = property_lemmas(protocol)
    prop_names = {x.name for x in props}
    learned = [c for c in candidates if c.name not in prop_names]
    if note:
        note(f"auto: the {len(learned)} enumerated lemma families for every N, V, F at "
             + ", ".join(f"{k}={v}" for k, v in concrete.items()) + ("" if budget is None else f" (at most {budget:.0f} s)"))
    began = time.monotonic()

    def row(result: str, kept: int | None) -> None:
        out.rows.append({"kind": "check", "method": "parametric-houdini+induction", "families_in": len(candidates),
                         "families_kept": kept, "seconds": time.monotonic() - began, "result": result,
                         "for_every": open_bounds})

    def left() -> float | None:
        return None if budget is None else max(1.0, budget - (time.monotonic() - began))

    try:
        engine = parametric.Houdini(protocol, concrete, query_s=FOR_EVERY_QUERY_S)
        if learned_at is not None:  # unsat cores at the learned bounds for the queries MBQI leaves undecided
            rel = Relevance(protocol, learned_at.replace(**concrete))
            rel.offer(learned + props)
            engine.relevant, engine.live_first_s = rel.core, FOR_EVERY_LIVE_FIRST_S
        h = engine.run(learned, props, left(), note=note)
        if h.broken is not None:
            row("unknown", None)
            out.why.append(("enumerated+parametric-houdini+induction", f"not inductive for every N, V, F: {h.broken}"))
            return None
        res = parametric.prove(protocol, concrete, list(h.alive) + props, timeout=left(), known=engine.proved)
    except (EncodingError, StepError, TimeoutError) as exc:
        row("unknown", None)
        out.why.append(("enumerated+parametric-houdini+induction", f"not a proof for every N, V, F ({exc})"))
        return None
    if res.status != "proved":
        row(res.status, None)
        out.why.append(("enumerated+parametric-houdini+induction", res.verdict))
        return None
    row("proved", len(res.lemmas))
    out.for_every = {"for_every": res.open_bounds, "assumed_concrete": res.concrete, "verdict": res.verdict}
    out.candidates = len(candidates)
    kept = {lem.name for lem in res.lemmas}
    return [c for c in candidates if c.name in kept], res, [f"dropped (for every N, V, F): {name}: {why}"
                                                             for name, why in h.dropped]


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
