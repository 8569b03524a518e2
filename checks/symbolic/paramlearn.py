"""Learning an invariant that is proved for every number of VCPUs, pages and frames.

The learning loop of :mod:`deferral.checks.symbolic.infer` (lemma families over the
protocol's declared sorts and variables, kept true in sampled reachable states), with the
proof in the parametric encoding (:mod:`deferral.checks.symbolic.parametric`) instead of at
one bound:

1. **Samples** from instances big enough that facts true only at small bounds die: the
   busiest open sort (VCPUs) up to 3, every other open bound (pages, frames) up to 2, at the
   requested concrete bounds (Q, S): exhaustive (symmetry-reduced, capped) where that is
   small, random walks (the compiled kernels of checks/explicit/simulate.py) where not.
2. **Candidates**: families of at most three terms from the declared vocabulary
   (:func:`deferral.checks.symbolic.infer.terms`), each true in every sample; a family is
   "for all distinct variables of each sort: ...". Four terms only where a counterexample
   to induction needs them (below).
3. **Houdini over uninterpreted sorts** (:class:`deferral.checks.symbolic.parametric.Houdini`):
   the candidates some step does not preserve, for some number of elements, are dropped.
4. When the fixpoint does not preserve the property, the solver's **counterexample to
   induction** is a finite model over the uninterpreted sorts: it is read back as a concrete
   state (each sort's elements numbered) and excluded by the cheapest new family never
   observed on it in the samples; where no family of those shapes excludes it (three VCPUs
   in different roles), by its own **diagram** minimized on the samples
   (:mod:`deferral.checks.symbolic.diagram`: "for all distinct i, k, j, p: never (...)";
   ``diagrams="first"`` tries the diagram first), and the states that then break a diagram
   family at the bounded instance are excluded the same way (UPDR-style blocking); then 3 again.
5. The fixpoint that preserves the property is **trimmed** (unsat cores: the families the
   property's consecution uses, closed) and **proved** by :func:`parametric.prove`
   (initiation, consecution per step, safety): that proof, not the samples, is the result.

Soundness never depends on the samples or the CTIs: they only propose families."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import z3

from deferral.checks.symbolic import parametric
from deferral.checks.symbolic.diagram import diagram_families
from deferral.checks.symbolic.relevance import Relevance
from deferral.checks.symbolic.infer import (Family, Samples, _exclusion, reachable_rows, signatures,
                                            tabulate, unique_rows)
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol
from deferral.model.schema import Sort

#: Per sample bound: at most this many states from the exhaustive search, and this many random walkers.
#: A candidate family's query in Houdini (undecided: dropped; the properties' get query_s).
CANDIDATE_S = 1.0
EXHAUSTIVE_CAP, WALKERS, WALK_DEPTH, WALK_CAP = 30_000, 600, 40, 20_000
#: Signatures with two variables of one sort: for this many sorts (the busiest first: VCPUs, then pages).
TWOS = 2
#: The share of the time limit the bounded first families may take.
BOUNDED_SHARE = 0.3
#: Families proposed per counterexample to induction; terms in the largest (4 only when no family
#: of at most 3 terms excludes the counterexample: CTI-driven, never enumerated blindly).
PER_CTI, LARGEST = 2, 4
#: Counterexamples to induction of dropped candidates also learned from, per round (the last ones).
EXTRA_CTIS = 2
#: Above this many families inductive at the bounded instance, the parametric Houdini gets only
#: those the property needs there (Relevance.support), computed within this share of the time left.
SUPPORT_OVER, SUPPORT_SHARE = 20, 0.2
#: A diagram family dropped by this many bounded Houdini rounds is no longer offered (after the
#: first drop, the state that broke it is excluded and it gets a second chance).
STRIKES = 2


def open_bounds(protocol: Protocol) -> list[str]:
    """The bounds a parametric proof leaves open (VCPUs, pages, frames, a protocol's own sorts)."""
    return [d.name for d in protocol.bound_decls if d.name not in parametric.CONCRETE]


def busiest(protocol: Protocol) -> str | None:
    """The open bound of the sort most variables are indexed by (VCPUs in the reference)."""
    counts: dict[str, int] = {}
    for var in protocol.variables:
        for d in var.index:
            if isinstance(d, Sort):
                counts[d.bound] = counts.get(d.bound, 0) + 1
    opened = [b for b in open_bounds(protocol) if b in counts]
    return max(opened, key=lambda b: counts[b]) if opened else None


def sample_plan(protocol: Protocol, concrete: Mapping[str, int]) -> list[tuple[Bounds, str]]:
    """Where samples come from: (bounds, "exhaustive" or "walks"). The busiest open sort at 2
    then 3, the others at 1 then 2 (each within its declared range); the largest by random walks."""
    first = busiest(protocol)
    decls = {d.name: d for d in protocol.bound_decls}
    concrete = parametric.concrete_bounds(protocol, concrete)

    def at(top: int, rest: int) -> Bounds:
        values = {name: max(decls[name].low, min(decls[name].high, top if name == first else rest))
                  for name in open_bounds(protocol)}
        return protocol.bounds(**values, **{k: v for k, v in concrete.items() if k in decls})

    plan: list[tuple[Bounds, str]] = []
    for top, rest, how in ((2, 1, "exhaustive"), (3, 1, "exhaustive"), (2, 2, "exhaustive"), (3, 2, "walks")):
        b = at(top, rest)
        if b not in [x for x, _ in plan]:
            plan.append((b, how))
    return plan


def walk_rows(model: Model, walkers: int = WALKERS, depth: int = WALK_DEPTH, seed: int = 0,
              cap: int = WALK_CAP) -> np.ndarray:
    """Distinct states seen by ``walkers`` seeded random walks of ``depth`` steps (at most ``cap``)."""
    from deferral.checks.explicit.simulate import Walker

    walker = Walker(model, depth)
    rng = np.random.default_rng(seed)
    rows = np.repeat(walker.start, walkers, axis=0)
    alive = np.ones(walkers, dtype=bool)
    seen = [rows.copy()]
    for _ in range(depth):
        if walker.step(rows, alive, rng) is None:
            break
        seen.append(rows[alive].copy())
    out = unique_rows(np.concatenate(seen))
    if out.shape[0] > cap:
        out = out[np.sort(rng.choice(out.shape[0], cap, replace=False))]
    return out


def sample(protocol: Protocol, plan: Sequence[tuple[Bounds, str]], deadline: float | None = None) -> Samples:
    """Reachable states at ``plan``'s bounds (random walks or exhaustive), abstracted per signature."""
    def rows_of(b: Bounds, how: str) -> Callable[[], np.ndarray]:
        if how == "walks":
            return lambda: walk_rows(Model(protocol, b))
        return lambda: reachable_rows(protocol, b, EXHAUSTIVE_CAP)

    return tabulate(protocol, signatures(protocol, twos=TWOS), [(b, rows_of(b, how)) for b, how in plan], deadline)


@dataclass
class LearnResult:
    """What the parametric learning loop did, and its proof (``proof``) when it found one."""

    status: str  # proved | unknown
    families: list[Family]  # the trimmed invariant (proved) or the last fixpoint (unknown)
    elapsed_s: float
    concrete: dict[str, int]
    open_bounds: list[str]
    proof: parametric.ParametricResult | None = None
    reason: str = ""
    sampled: list[tuple[Bounds, str, int]] = field(default_factory=list)  # bounds, method, states
    stages: list[dict[str, Any]] = field(default_factory=list)  # per round: candidates, kept, the CTI
    log: list[str] = field(default_factory=list)
    kept: list[Family] = field(default_factory=list)  # Houdini's last fixpoint (families)
    lemmas: list[Lemma] = field(default_factory=list)  # the fixed candidates (shipped lemmas) kept and used
    #: where the time went: seconds per part (sampling, the bounded first stage, the bounded Houdini
    #: and cores at the largest sample bound, exclusion by fixed shapes, diagrams, the parametric
    #: Houdini, the trim and the final proof; the cores the parametric Houdini asks are in both)
    seconds_by_part: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "elapsed_s": round(self.elapsed_s, 3),
                "samples": [{"bounds": b.as_dict(), "method": how, "states": n} for b, how, n in self.sampled],
                "rounds": self.stages, "families": len(self.families), "fixpoint": len(self.kept),
                "fixed_lemmas_used": [lem.name for lem in self.lemmas],
                "seconds_by_part": {k: round(v, 2) for k, v in self.seconds_by_part.items()},
                "reason": self.reason or None}


def learn(protocol: Protocol, concrete: Mapping[str, int], *, timeout: float | None = 120.0,
          start: Sequence[Family] = (), query_s: float = 4.0, max_rounds: int = 400,
          note: Callable[[str], None] | None = None, data: Samples | None = None,
          bounded_first: bool = True, lemmas: Sequence[Lemma] = (), diagrams: str = "fallback") -> LearnResult:
    """Learn lemma families and prove them for every N, V, F at ``concrete`` (Q, S).

    ``start``: families to begin with (a bounded learned route's, a lemma file's); without
    them, ``bounded_first`` learns a first set at the smallest sampled instance (the bounded
    loop of infer.py, cheap, with every sample: only families true at the larger instances
    are proposed), else the loop starts from the property alone. ``lemmas``: fixed candidates
    offered with the families (the shipped lemmas in auto; Houdini decides, and then no bounded
    first stage). ``diagrams``: "fallback" (a counterexample's diagram where no fixed-shape family
    excludes it), "first" (the diagram before the fixed shapes) or "off". Unknown (never "proved") when the time,
    the rounds or the vocabulary run out; the reason says which."""
    t0 = time.monotonic()
    deadline = None if timeout is None else t0 + timeout
    say = note or (lambda text: None)
    conc = parametric.concrete_bounds(protocol, concrete)
    log: list[str] = []
    res = LearnResult("unknown", [], 0.0, conc, open_bounds(protocol), log=log)
    part = res.seconds_by_part
    plan = sample_plan(protocol, conc)
    how: dict[Bounds, str] = dict(plan) if data is None else {b: "given" for b in data.bounds}
    exact: list[Bounds] = []  # where a diagram is refuted exactly (the exhaustive samples)

    def samples() -> Samples:
        """The samples, taken on first use: with fixed candidates (``lemmas``) and no ``start``, only
        a counterexample to induction needs them (the enumerated families of --parametric at two
        spaces: 12.5 s of sampling for nothing, PROVE.md, 5 Dec, late morning)."""
        nonlocal data
        if data is None:
            say(f"learn: sampling reachable states at {', '.join(f'{b.short()} ({how})' for b, how in plan)}")
            now = time.monotonic()
            data = sample(protocol, plan, deadline=None if deadline is None else now + 0.25 * max(0.0, deadline - now))
            part["sampling"] = data.elapsed_s
        if not res.sampled:
            exact.extend(b for b in data.bounds if how.get(b) != "walks")
            res.sampled = [(b, how.get(b, "exhaustive"), n) for b, n, _ in data.per_bound]
            log.insert(0, f"samples: {data.states} states at "
                       f"{', '.join(f'{b.short()} ({m})' for b, m, _ in res.sampled)} ({data.elapsed_s:.1f} s)")
        return data

    part["sampling"] = 0.0
    if data is not None or start or not lemmas:
        samples()

    def spent(name: str, since: float) -> None:
        part[name] = part.get(name, 0.0) + time.monotonic() - since

    def done(status: str, reason: str = "") -> LearnResult:
        res.status, res.reason, res.elapsed_s = status, reason, time.monotonic() - t0
        part[f"bounded houdini and cores at {rel.at.short()}"] = rel.seconds
        log.append("seconds by part: " + ", ".join(f"{k} {v:.1f}" for k, v in part.items()))
        return res

    def left() -> float | None:
        return None if deadline is None else deadline - time.monotonic()

    if not start and bounded_first and not lemmas:  # cheap rounds at the smallest instance, from the big samples
        t1 = time.monotonic()
        start = _bounded(protocol, samples(), plan[0][0], res,
                         None if timeout is None else BOUNDED_SHARE * timeout, say)
        spent("first stage (bounded)", t1)
    # the start families must hold in every sample (those true only at small bounds go here)
    fams: dict[str, Family] = {}
    for f in start:
        if f.show() not in fams and _holds_in(f, samples()):
            fams[f.show()] = f
    must = parametric.learned_lemmas([], protocol)
    rel = Relevance(protocol, plan[-1][0] if data is None else data.bounds[-1])
    engine = parametric.Houdini(protocol, conc, query_s, candidate_s=CANDIDATE_S)
    engine.relevant = rel.core
    tried: dict[int, set[tuple[int, ...]]] = {}  # per table, the column sets tried (filled on first use)
    lemma_of: dict[str, Lemma] = {}
    shown_diagrams: set[str] = set()  # every diagram family proposed (never proposed again)
    strikes: dict[str, int] = {}  # bounded rounds that dropped a diagram family

    def _exclude(read: tuple[dict[str, int], tuple[int, ...]]) -> int:
        """New families under which the state was never observed; how many."""
        sizes, state = read
        b = protocol.bounds(**sizes, **conc)
        added = 0
        ways = {"first": ("diagram", "shapes"), "off": ("shapes",)}.get(diagrams, ("shapes", "diagram"))
        for way in ways:
            if added:
                break
            t1 = time.monotonic()
            if way == "shapes":
                data_ = samples()
                for n in range(len(data_.tables)):
                    tried.setdefault(n, set())
                got = [f for _, f in _exclusion(protocol, data_, state, b, tried, protocol.layout(b), limit=PER_CTI,
                                                deadline=deadline, largest=LARGEST)]
                spent("exclusion (fixed shapes)", t1)
            else:  # the state's own diagram, minimized on the samples (three VCPUs in different roles too)
                got = diagram_families(protocol, samples(), state, b, limit=PER_CTI, banned=shown_diagrams,
                                       exact=exact, deadline=deadline)
                spent("diagrams", t1)
                if got:
                    say(f"learn: {len(got)} diagram families ({time.monotonic() - t1:.1f} s): "
                        + "; ".join(f.show() for f in got))
            for f in got:
                if f.show() not in fams:
                    fams[f.show()] = f
                    added += 1
        return added

    def bounded_cti(families: Sequence[Lemma]) -> tuple[list[Lemma], tuple[dict[str, int], tuple[int, ...]] | None]:
        """Houdini at the largest sample bound: what survives, and a counterexample to induction
        of the property given that (sizes, state), or None."""
        alive, broke, state = rel.houdini(families, must, deadline)
        sizes = {name: rel.at[name] for name in open_bounds(protocol)}
        return alive, (None if broke is None or state is None else (sizes, tuple(state)))

    def refuted(alive: list[Lemma]) -> bool:
        """Does the bounded Houdini over ``alive`` (the parametric Houdini's live candidates) leave a
        counterexample to the property's induction? Then the parametric fixpoint (within the bounded
        one) does not preserve it either: an undecided property query need not be asked again."""
        try:
            return bounded_cti([fams[lem.name].lemma() if lem.name in fams else lem for lem in alive])[1] is not None
        except TimeoutError:
            return False

    engine.refuted_at = refuted

    patience = 1  # rounds whose undecided property query is asked again with twice the time
    for rnd in range(1, max_rounds + 1):
        if left() is not None and left() <= 0:
            return done("unknown", f"time limit after {rnd - 1} rounds")
        every = list(lemmas)
        for f in fams.values():
            lem = lemma_of.get(f.show())
            if lem is None:
                lem = lemma_of[f.show()] = parametric.for_distinct(f.lemma())
            every.append(lem)
        t1 = time.monotonic()
        mark = len(rel.dropped)
        try:
            alive_b, cti = bounded_cti(list(lemmas) + [f.lemma() for f in fams.values()])
        except TimeoutError as exc:
            return done("unknown", f"{exc} (round {rnd})")
        live_b = {lem.name for lem in alive_b}
        for name in [n for n in fams if n in shown_diagrams and n not in live_b]:  # a diagram family
            strikes[name] = strikes.get(name, 0) + 1  # dropped again (its breaking state was excluded): gone
            if strikes[name] >= STRIKES:
                del fams[name]
        if cti is not None and diagrams != "off":  # the states that broke diagram families: excluded too
            sizes = {name: rel.at[name] for name in open_bounds(protocol)}
            blocked = [st for name, st in rel.dropped[mark:] if name in shown_diagrams][-EXTRA_CTIS:]
            for st in blocked:
                _exclude((sizes, tuple(st)))
        if cti is not None and _exclude(cti):  # a cheap round at the largest sample bound
            res.stages.append({"stage": f"bounded at {rel.at.short()}", "round": rnd, "candidates": len(every),
                               "kept": len(alive_b), "seconds": round(time.monotonic() - t1, 2)})
            say(f"learn: round {rnd}: a counterexample to induction at {rel.at.short()} excluded "
                f"({len(fams)} families, {len(alive_b)} inductive there)")
            continue
        names = {lem.name for lem in alive_b}
        if cti is None and len(alive_b) > SUPPORT_OVER:  # only what the property needs at 3,2,2 (unsat cores)
            try:
                small = rel.support(alive_b, must, None if deadline is None else min(
                    deadline, time.monotonic() + SUPPORT_SHARE * (left() or 0)))
            except (z3.Z3Exception, TimeoutError):  # the support's share ran out: every family goes on
                small = None
            if small is not None:
                say(f"learn: round {rnd}: {len(small)} of the {len(alive_b)} families inductive at "
                    f"{rel.at.short()} support the property there (unsat cores)")
                names = {lem.name for lem in small}
        cands = [lem for lem in every if lem.name in names]  # what some step breaks at 3,2,2 is not tried
        t2 = time.monotonic()
        try:
            h = engine.run(cands, must, timeout=left())
        except TimeoutError as exc:
            spent("parametric houdini", t2)
            return done("unknown", f"{exc} (round {rnd})")
        spent("parametric houdini", t2)
        res.kept = [fams[lem.name] for lem in h.alive if lem.name in fams]
        res.lemmas = [lem for lem in h.alive if lem.name not in fams]
        stage: dict[str, Any] = {"stage": "parametric", "round": rnd, "candidates": len(every),
                                 "bounded_kept": len(cands), "kept": len(h.alive), "queries": h.queries,
                                 "undecided": h.undecided, "by_core": h.by_core,
                                 "seconds": round(time.monotonic() - t1, 2)}
        res.stages.append(stage)
        say(f"learn: round {rnd}: Houdini kept {len(h.alive)} of {len(every)} families ({len(cands)} at "
            f"{rel.at.short()}; {h.undecided} of {h.queries} queries undecided; {stage['seconds']} s)"
            + ("" if h.broken is None else f"; {h.broken}"))
        if h.broken is None:
            break
        try:  # the bounded Houdini at its deadline raises: the learning ends there, unknown
            settled = h.cti is None and bounded_cti(res.lemmas + [fams[lem.name].lemma() for lem in h.alive
                                                                  if lem.name in fams])[1] is None
        except TimeoutError as exc:
            return done("unknown", f"{exc} (round {rnd})")
        if settled:
            if patience:  # Z3 did not decide the property's query: once more with twice the time
                patience -= 1
                engine.query_s *= 2
                continue
            return done("unknown", f"round {rnd}: {h.broken}")
        added, shown = 0, ""
        # the property's counterexample first, then the last candidates' (they stop supporting families)
        for what, cti in [(h.broken, h.cti)] + engine.ctis[::-1][:EXTRA_CTIS]:
            read = None if cti is None else engine.cti_state(cti)
            if read is None and what == h.broken:  # undecided, or too many elements: one at the largest sample bound
                try:
                    read = bounded_cti(res.lemmas + [f.lemma() for f in res.kept])[1]
                except TimeoutError as exc:
                    return done("unknown", f"{exc} (round {rnd})")
            if read is None:
                continue
            sizes, state = read
            b = protocol.bounds(**sizes, **conc)
            stage.setdefault("ctis", []).append({"broken": what, "bounds": b.as_dict()})
            added += _exclude(read)
            if not shown:
                shown = f"at {b.short()} (state {Model(protocol, b).to_json(state)})"
        stage["new_families"] = added
        if not added and h.cti is None and patience:  # undecided, and nothing new to learn: more time once
            patience -= 1
            engine.query_s *= 2
            continue
        if not added:
            return done("unknown", f"round {rnd}: a counterexample to induction ({h.broken}) "
                                   f"{shown or 'in a model too large to read as a state'} that no family of at "
                                   f"most {LARGEST} terms learned from the samples excludes")
    else:
        return done("unknown", f"round limit ({max_rounds})")
    alive = res.lemmas + [lemma_of[f.show()] for f in res.kept]
    t3 = time.monotonic()
    say(f"learn: trimming {len(alive)} families (unsat cores)")
    small = engine.support(alive, must, timeout=None if left() is None else max(1.0, 0.5 * (left() or 0)))
    res.families = [fams[lem.name] for lem in small if lem.name in fams]
    res.lemmas = [lem for lem in small if lem.name not in fams]
    log.append(f"{len(small)} of the {len(alive)} inductive families suffice (unsat cores)")
    say(f"learn: proving {len(small)} families for every {', '.join(res.open_bounds)}")
    # what Houdini's incremental solver proved is not asked again (engine.proved: unsat cores within the set)
    proof = parametric.prove(protocol, conc, list(small) + must,
                             timeout=max(2.0, left() or 60.0), note=None, needs=engine.needs, known=engine.proved)
    if proof.status != "proved" and len(small) < len(alive):  # the trimmed set: try the whole fixpoint
        proof = parametric.prove(protocol, conc, list(alive) + must, timeout=max(2.0, left() or 60.0),
                                 needs=engine.needs, known=engine.proved)
        res.families, res.lemmas = list(res.kept), [lem for lem in alive if lem.name not in fams]
    res.proof = proof
    spent("trim and final proof", t3)
    if proof.status != "proved":
        return done("unknown", proof.reason)
    return done("proved")


def plan_bounds(protocol: Protocol, concrete: Mapping[str, int]) -> list[Bounds]:
    return [b for b, _ in sample_plan(protocol, concrete)]


def _bounded(protocol: Protocol, data: Samples, at: Bounds, res: LearnResult, budget: float | None,
             say: Callable[[str], None]) -> list[Family]:
    """The bounded learning loop (infer.py) at ``at``: its inductive families (those false in the
    larger samples are left out by the caller)."""
    from deferral.checks.terms.encoding import encode
    from deferral.checks.symbolic.infer import infer

    say(f"learn: first families at {at.short()} (bounded, from its own samples)")
    r = infer(encode(protocol, at, check=False), timeout=budget, data=data.upto(at), staged=False,
              diagrams=diagram_families)
    fams = r.kept  # every family inductive there (the trimmed subset is often too weak at larger bounds)
    res.stages.append({"stage": "bounded", "bounds": at.as_dict(), "status": r.status, "rounds": r.rounds,
                       "families": len(fams), "seconds": round(r.elapsed_s, 2)})
    res.log.append(f"bounded learning at {at.short()}: {r.status} after {r.rounds} rounds, {len(fams)} "
                   f"families ({r.elapsed_s:.1f} s)" + (f" ({r.reason[:200]})" if r.reason else ""))
    return fams


def _holds_in(f: Family, data: Samples) -> bool:
    """Does the family hold in every sampled row of its signature's table?"""
    for table in data.tables:
        if table.sig != f.sig:
            continue
        try:
            cols = [table.terms.index(t) for t in f.terms]
        except ValueError:
            return False
        seen = {tuple(int(x) for x in r) for r in unique_rows(table.rows[:, cols])}
        rows = set(f.rows)
        return seen <= rows if f.mode == "in" else not (seen & rows)
    return False
