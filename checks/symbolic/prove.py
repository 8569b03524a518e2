"""``prove``: one entry point for the Z3 methods, and the default (``auto``) strategy.

Methods: ``bmc`` (bounded; a violation or "nothing up to depth K", never a proof),
``induction`` (the shipped lemmas of :mod:`deferral.model.invariant` must be inductive
and imply the properties), ``pdr`` (Spacer infers an invariant), ``ic3po`` (IC3 with
orbit clauses, :mod:`deferral.checks.symbolic.ic3po`), and ``auto``, the
strongest automatic route, cheapest first:

1. *Lemmas from a file* (``--lemmas FILE``, saved by ``--invariant-out``; route
   ``lemma-file+houdini+induction``): Houdini keeps the families whose instances are
   inductive at the requested bounds; if they imply the property, it is proved.
2. *Shipped lemmas* (route ``shipped-lemmas+houdini+induction``): the same with the
   hand-written lemma families of :mod:`deferral.model.invariant` as candidates (sound
   for any variant: Houdini and induction decide, the lemmas only propose; a bug is never
   proved by them). Cheap, so tried before any bounded search; ``shipped=False``
   (``--no-shipped-lemmas``) leaves them out. Where what Houdini kept is too weak, route
   ``shipped-lemmas+weakened+houdini+induction`` (:mod:`deferral.checks.symbolic.weaken`): each
   lemma Houdini dropped is offered again as "L or D", D a disjunction of 1-3 literals over its
   parameters true wherever L fails in the reachable states of a small instance (2 VCPUs, one
   page and frame, Q and S at most 2), beside the shipped lemmas; Houdini and induction decide
   (above the sample's bounds first with only those a proof at the sample's bounds needs:
   :func:`weaken.shortened`). Where that fails too and some dropped lemmas hold in every sampled state (not inductive, but
   nothing to weaken), route ``shipped-lemmas+weakened+strengthened+houdini+induction``
   (:mod:`deferral.checks.symbolic.strengthen`): new families of 1-3 literals over those lemmas'
   parameters true in the sample (and at 3 VCPUs / 2 pages), of which what the property needs at
   the sample's bounds (Houdini, unsat cores) is offered beside the shipped lemmas.
3. *The explicit search* (:mod:`deferral.checks.symbolic.exhaust`, route ``explicit-search``),
   time-boxed (a quarter of the time left): at the smallest instance first (below), then at the
   requested bounds, each stopped after a level when its estimate says the next level will not
   end in the box (at the requested bounds, once the smallest instance was exhausted safe, also
   when the extrapolated total will not). A violation at the requested bounds is the shortest
   counterexample there (one only at the smallest instance is searched again there by bmc); an
   instance it exhausts, or a smallest instance it checked past the bmc's depth with no violation,
   needs no bmc (its slices below are skipped; the enumerated route, 5, takes a sample of the states
   it stored there as its first sample), and the depth it reached at
   the requested bounds is not queried again by the bmc there. Where it exhausted the requested
   bounds and no lemma route below proves them, that is the answer: proved at exactly these
   bounds (``exhaustive`` in the JSON), no invariant, nothing claimed beyond them.
   Then *bounded model checking* to depth 12 at the smallest instance (:func:`bmc_bounds`: 2 VCPUs,
   one page, one frame at the requested Q and S, within the requested bounds), in time slices
   (:class:`~deferral.checks.symbolic.bmc.BmcSearch` goes on where it stopped): a first slice of
   a quarter of the time left (at least a quick 10 s look), then one after each learning route
   (5 below), with a reserve of half the limit in all that the learning routes leave it; a
   slice stops before a depth it would not finish. Where the lemmas at hand fail a bug is
   likely, and a bug at large bounds almost always shows there. A violation found there is
   searched again by bmc at the requested bounds with the time left, so the trace reported is
   a shortest one at the requested bounds (bmc length = the explicit search's shortest
   length); then a quick look (at most 10 s) at the requested bounds.
4. Route ``shipped-lemmas+parametric-houdini``: Houdini over the shipped lemmas in the
   parametric encoding (:func:`deferral.checks.symbolic.parametric.prove_candidates`): a
   proof for every N, V, F at the requested Q and S, so at the requested bounds
   (``for_every`` in the JSON says what was assumed concrete).
5. *Enumerated families* (route ``enumerated+houdini+induction``, :mod:`deferral.checks.symbolic.clauses`):
   clauses of the declared vocabulary over signatures built from every declared sort, true in the
   sampled reachable states, brought in by counterexamples to induction at the smallest sampled
   instance, the largest, then the requested bounds (Houdini and induction decide; at large bounds
   first, by one learner of two, for every N, V, F at the requested Q and S: route
   ``enumerated+parametric-houdini+induction``, :func:`clauses_prove.for_every_first`); with
   ``shipped=False``, tried as soon as the explicit search found the smallest instance safe (3).
   *Learned lemmas* (route ``inferred+houdini+induction``,
   :mod:`deferral.checks.symbolic.infer`): families learned from the reachable states of
   small instances, driven by counterexamples to induction, checked by Houdini and
   induction at the requested bounds. The route for a variant that breaks a shipped lemma.
   Before or after it, route ``inferred+parametric`` (:mod:`deferral.checks.symbolic.paramlearn`):
   families learned from samples of instances up to 3 VCPUs and 2 pages and frames, kept by
   Houdini over uninterpreted sorts, the parametric counterexamples to induction read back
   as states and excluded; proved for every N, V, F at the requested Q and S, so at the
   requested bounds (the JSON's ``proved_for_every`` says what was concrete and how it was
   learned). The bounded route first at the smallest instance (2,1,1) at one address space, this
   one first above it and at more than one space;
   then route ``ic3po`` (:mod:`deferral.checks.symbolic.ic3po`): IC3 with symmetric (orbit) clauses at
   small instances, no hand-written lemmas, the families kept by Houdini and proved by induction at the
   requested bounds (route ``ic3po+houdini+induction``); ``--method ic3po`` runs it alone.
6. *Spacer's lemmas* (route ``pdr-generalized+houdini+induction``): Spacer proves the
   property at small bounds (:func:`infer_bounds`) with the one-hot encoding;
   :mod:`deferral.checks.symbolic.generalize` turns its clauses into lemma families.
7. what is left of the bounded model check at the requested bounds (a bug that shows at them
   only), then Spacer at the requested bounds with what is left of the time limit.

``infer_first`` (``--infer-first``): after the lemma file, a quick bmc (at most 10 s, at the
smallest instance), then 5 and 6 before the shipped lemmas (the enumerated families after the
learned ones).

Every bmc is a row of ``stages`` too (route ``bmc``: its bounds, depth reached, result, seconds).

The route that settled the question is reported as it is. Each route tried that did not
settle it gives one clause (``routes_tried``: the solver's reason as text, the lemma Houdini
dropped first and the step that broke it, how deep the bmc got, which limit), and auto's
unknown reason is those clauses in order; the log keeps the details."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import z3

from deferral.checks.symbolic.bmc import BmcResult, BmcSearch, bmc, oriented_path
from deferral.checks.symbolic.lift import lift_path
from deferral.checks.symbolic.generalize import Template, check_against, generalize, sort_domains
from deferral.checks.symbolic.induction import check_inductive, houdini, instances, not_proved_reason
from deferral.checks.symbolic.diagram import diagram_families
from deferral.checks.symbolic import exhaust, failures
from deferral.checks.symbolic.infer import Family, infer, property_lemmas
from deferral.checks.symbolic.pdr import pdr
from deferral.checks.results import Path
from deferral.checks.terms.encoding import EncodingError, encode
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.invariant import INVARIANT, Lemma, invariant_for
from deferral.model.protocol import Protocol
from deferral.model.context import StepError
from deferral.model.variants import VariantError, is_published

METHODS = ("auto", "bmc", "induction", "pdr", "ic3po")
AUTO_BMC_DEPTH = 12
#: With less time than this left, no proof that renaming VCPUs commutes with a variant file's steps is started (3.3-4
#: s at 6,3,3,3,S=3): a bmc slice names the VCPUs in every order instead of in order (the same shortest lengths,
#: more paths), the explicit search (whose symmetry reduction rests on it) is not tried. Started with 1-2 s left,
#: the proof ran prove 4-5 s past a 60-s limit, into the command's hard limit (no verdict) in 3 of 6 runs
#: (PROVE.md, 8 Dec).
SYMMETRY_PROOF_MIN_S = 6.0
#: Auto does not run the explicit search at requested bounds with this many step instances or more (6,3,3,3,S=3 has
#: 420): there its first levels took the whole box (depth 2, 2,505 states in 7.4 s for drain-local-only; depth 0 in
#: 13.7 s for a variant file, with its symmetry proof and first kernels), where the bmc reaches depth 4-5 in as much
#: (PROVE.md, 8 Dec). `deferral check` in 15 s: depth 3 at 6,3,3,3,S=2 (324), depth 5 at 6,3,3,3 (222), depth 6 at
#: 3,2,2,2,S=2 (129).
EXPLICIT_MAX_ACTIONS = 300
#: Spacer's share of the time limit in auto (and its budget when there is no limit).
INFER_SHARE, INFER_DEFAULT_S = 0.5, 240.0
#: The first, quick bounded model check of auto: at most this long (and this share of the limit).
QUICK_BMC_S, QUICK_BMC_SHARE = 10.0, 0.1
#: Where the lemmas at hand fail, the bmc at the smallest instance gets SMALL_BMC_SHARE of what is left in its
#: first slice; the rest of the bmc at the requested bounds FINISH_BMC_SHARE of what is left.
FINISH_BMC_SHARE, SMALL_BMC_SHARE = 0.5, 0.25
#: The bmc at the smallest instance in all (its slices between the learning routes) gets this share of the limit
#: at most: what refutes a bug whose shortest trace is long there (resync-running-only: 12 steps at 2,1,1,1,S=2).
SMALL_BMC_TOTAL_SHARE = 0.5
#: A violation at the smallest instance whose steps also violate at the requested bounds (:mod:`lift`): the bmc
#: there looks for a shorter one at most this long without a limit (with one: SHORTER_SHARE of what is left),
#: then the lifted path is the answer, said to be the shortest only when nothing shorter can exist.
SHORTER_S, SHORTER_SHARE = 60.0, 0.8
#: Once the smallest instance is safe, the instances with one element it lacks within the requested bounds (a
#: third VCPU, a second page, a second frame; with one VCPU too) are searched for a violation, at one space (half
#: the states at most), then at the first look's, in rounds (LADDER_FIRST states each, then four times as far),
#: each search up to LADDER_STATES states, all together LADDER_TOTAL (counts: the same instances searched as far
#: under any load), for at most LADDER_S (with a limit: LADDER_SHARE of what is left): a user's bug that needs two
#: pages was unknown after 60 s at 3,3,2,2, though 2,2,1,2 shows it in 11 steps, 1.47 million states (PROVE.md,
#: 6 Dec, qa5 and lead); overflow-drop at 3,2,2,2,S=2 and 6,3,3,3,S=3 too (7 Dec, evening).
LADDER_S, LADDER_SHARE, LADDER_STATES, LADDER_TOTAL = 10.0, 0.15, 2_000_000, 2_000_000
#: The ladder's first round searches each instance this far (then ROUND_GROWTH times as far each round).
LADDER_FIRST = 250_000


#: Where the explicit search exhausted the requested bounds (a bounded proof in hand), the learning routes leave
#: this share of the limit for the answer (they overrun their budgets by seconds: one ran into the CLI's hard limit
#: at lazy_tlb_ipi 2,1,1,1,S=2, --timeout 60).
EXHAUSTED_KEEP_SHARE = 0.2

#: The parametric route's budget (Houdini and the final proof) in auto.
PARAMETRIC_S = 60.0
#: The learned parametric route's share of the time left (its budget without a limit).
LEARN_PARAMETRIC_SHARE, LEARN_PARAMETRIC_S, LEARN_PARAMETRIC_MIN_S = 0.7, 120.0, 10.0
#: The bounded learned route's share of the time left: the learning routes are the only ones that prove a
#: change the shipped lemmas do not (Spacer's, after them, was canceled at 2,1,1,1 and above in every run).
LEARN_SHARE = 0.7
#: The enumerated route's share (its learners and the Houdini and induction that decide): at 4,3,3,3,S=2 without
#: the shipped lemmas, --timeout 60, two learners, 6 of the 12 were proved with 0.7 and 9 with 0.9 (lazy_cur_clear,
#: lazy_ipi_return, lazy_tlb_ipi added, in 51-56 s); no route after it proved any of them in the time 0.7 left
#: (PROVE.md, 6 Dec, 05:57-07:40 UTC).
ENUMERATED_SHARE = 0.9


def infer_bounds(bounds: Bounds) -> Bounds:
    """Where auto lets Spacer infer lemmas: at most 2 VCPUs, one page, one frame, queue 1."""
    return bounds.replace(vcpus=min(bounds.vcpus, 2), pages=1, frames=1, queue=1)


def bmc_bounds(protocol: Protocol, bounds: Bounds) -> Bounds:
    """Where auto's first bounded model check runs: the smallest instance the learning routes
    sample (2 VCPUs, one page, one frame at the requested Q and S), within ``bounds``."""
    from deferral.checks.symbolic.paramlearn import plan_bounds

    try:
        first = plan_bounds(protocol, dict(bounds))[0]
    except (KeyError, ValueError, IndexError):
        return bounds
    return bounds.replace(**{name: min(bounds[name], first[name]) for name in first if name in bounds})


def first_look_bounds(protocol: Protocol, bounds: Bounds) -> Bounds:
    """Where auto's explicit search looks first, before the learning: :func:`bmc_bounds` at no more address
    spaces than the learning samples (``clauses.LEARN_SPACES``): its states are the learning's first sample."""
    from deferral.checks.symbolic.clauses import learned_spaces

    small = bmc_bounds(protocol, bounds)
    return small.replace(**learned_spaces(dict(small)))


def smallest(protocol: Protocol, bounds: Bounds) -> bool:
    """Are ``bounds`` no larger than the smallest instance the learning routes sample (2,1,1)?"""
    from deferral.checks.symbolic.paramlearn import plan_bounds

    first = plan_bounds(protocol, dict(bounds))[0]
    return all(bounds[name] <= first[name] for name in first)


@dataclass
class SmallViolation:
    """A violation found by the explicit search at an instance smaller than the requested bounds: its shortest
    path there, the property, where, and what the search said."""

    path: Path
    prop: str | None
    bounds: Bounds
    verdict: str

    @staticmethod
    def of(ex: exhaust.Exhaustive) -> "SmallViolation":
        assert ex.path is not None
        return SmallViolation(ex.path, ex.prop, ex.bounds, ex.verdict())

    @staticmethod
    def searched(r: Any) -> "SmallViolation":
        """A :class:`parametric_refute.Refutation` (the ladder's search)."""
        assert r.outcome.path is not None
        return SmallViolation(r.outcome.path, r.outcome.name, r.bounds,
                              f"{r.outcome.name} violated in {r.length} steps (the shortest there)")


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
    templates: list[Template] | None = None  # the lemma families of a generalized route
    inferred_at: Bounds | None = None
    families: list[Family] | None = None  # the lemma families of the inferred route (or a lemma file)
    inductive: list[Family] | None = None  # the inferred route: every family Houdini kept (a superset)
    learned_at: list[Bounds] | None = None  # where the inferred route sampled reachable states
    #: a proof by shipped and weakened lemmas (the weakened route, or a ``deferral-weakened/1`` file):
    #: those lemmas, savable by checks/symbolic/weaken_files.py
    proof_lemmas: list[Lemma] | None = None
    #: a parametric route: the bounds proved for every value and those assumed concrete
    for_every: dict[str, Any] | None = None
    #: auto: every lemma route tried, in order (:func:`stage`): where, how, families in and kept, seconds
    stages: list[dict[str, Any]] = field(default_factory=list)
    #: auto's unknown: each route tried and why it did not settle it (one clause each, in order)
    routes_tried: list[dict[str, str]] = field(default_factory=list)
    #: auto's explicit route: what the breadth-first search showed (``exhaust.Exhaustive.verdict``), and
    #: for a proof by it (route ``explicit-search``), that nothing is claimed beyond these bounds
    exhaustive: dict[str, Any] | None = None
    #: a violation: whether its path is known to be a shortest one at these bounds (False: a small instance's
    #: counterexample run at these bounds, where no shorter one was ruled out in time; ``reason`` says how far)
    shortest: bool = True
    #: the protocol and bounds the proof ran on (its path's states and actions are over it)
    model: Model | None = field(default=None, repr=False, compare=False)

    @property
    def exit_code(self) -> int:
        return {"proved": 0, "violated": 1}.get(self.status, 3)


def stage(route: str, bounds: Bounds | dict[str, Any], method: str, families_in: int | None,
          families_kept: int | None, seconds: float | None, **more: Any) -> dict[str, Any]:
    """One row of ``stages`` (the JSON's record of auto's routes): ``route`` (shipped-lemmas, bmc,
    inferred, parametric...), the ``bounds`` it ran at (a dict: for a parametric stage, the
    concrete ones), ``method`` (sample, houdini+cti, houdini+induction, parametric-houdini...),
    the candidate families in and those kept (None where it does not apply), seconds."""
    return {"route": route, "bounds": bounds if isinstance(bounds, dict) else bounds.as_dict(), "method": method,
            "families_in": families_in, "families_kept": families_kept,
            "seconds": None if seconds is None else round(seconds, 2), **more}


def broken_lemmas(protocol: Protocol, bounds: Bounds, timeout: float = 120.0) -> list[tuple[str, str]]:
    """The shipped lemmas (model/invariant.py) ``protocol`` makes non-inductive at ``bounds``: each
    one some step does not preserve from a state where every shipped lemma holds (those Houdini can
    drop first), with that step; an undecided one is listed with Z3's reason instead of a step."""
    enc = encode(protocol, bounds)
    lemmas = invariant_for(enc.bounds)
    xs, ys, act = enc.state("x"), enc.state("y"), enc.selector("x")
    solver = z3.Solver()
    solver.set("timeout", int(timeout * 1000))
    solver.add(enc.valid(xs), *[t for lem in lemmas for _, t in instances(enc, lem, xs)], enc.trans(xs, ys, act))
    out = []
    for lem in lemmas:
        r = solver.check(z3.Not(z3.And([t for _, t in instances(enc, lem, ys)])))
        if r == z3.sat:
            out.append((lem.name, enc.model.actions[solver.model().eval(act, model_completion=True).as_long()].label()))
        elif r == z3.unknown:
            out.append((lem.name, f"undecided: {solver.reason_unknown()}"))
    return out


#: The weakening route (checks/symbolic/weaken.py): its sampling and choice of D get at most this long
#: and this share of the time left (Houdini and induction after it take what they need).
WEAKEN_S, WEAKEN_SHARE = 30.0, 0.25
#: Its strengthening round (checks/symbolic/strengthen.py: sampling, enumeration, support at the sample's
#: bounds) gets at most this long and this share of the time left then.
STRENGTHEN_S, STRENGTHEN_SHARE = 30.0, 0.5
#: Shortening the weakened route's proof at the sample's bounds before the requested ones (where those
#: are larger: Houdini there over a short set instead of every weakening) gets at most this long and share.
SHORT_S, SHORT_SHARE = 20.0, 0.4


def exhaust_errors() -> tuple[type[BaseException], ...]:
    """What the explicit search raises on a protocol it cannot run on arrays (the weakening route is skipped)."""
    from deferral.checks.explicit.numpy_ops import NotVectorizable

    return (NotVectorizable, MemoryError)


#: The IC3PO route's share of the time left in auto.
IC3PO_SHARE = 0.7


def ic3po_route(protocol: Protocol, bounds: Bounds, enc: Any, timeout: float | None, say: Callable[[str], None],
                result: Callable[..., ProveResult], log: list[str] | None = None,
                stages: list[dict[str, Any]] | None = None) -> ProveResult | None:
    """Route ``ic3po`` (checks/symbolic/ic3po.py): IC3 with orbit clauses at small instances, no
    hand-written lemmas; proved for every N, V, F (route ``ic3po+parametric``) or at the requested
    bounds (``ic3po+houdini+induction``); else the unknown result with the reason (``log``: auto's)."""
    from deferral.checks.symbolic import ic3po
    from deferral.checks.terms.encoding import EncodingError

    log = [] if log is None else log
    say("auto: IC3 with symmetric (orbit) clauses" + ("" if timeout is None else f" (at most {timeout:.0f} s)"))
    try:
        r = ic3po.learn_and_prove(protocol, bounds, timeout=timeout, note=say, for_every=False)
    except EncodingError as exc:
        log.append(f"ic3po: cannot be evaluated for every number of elements ({exc})")
        return None
    if stages is not None:
        stages.extend(stage("ic3po", row["bounds"], "ic3+orbits", None, row["families"], row["seconds"],
                            **{k: v for k, v in row.items() if k not in ("bounds", "families", "seconds")})
                      for row in r.rounds)
    if r.status != "proved":
        log.append(f"ic3po: unknown after {r.elapsed_s:.1f} s ({r.reason[:300]})")
        return result("unknown", route="ic3po", reason=r.reason, log=log)
    if r.reason:
        log.append(f"ic3po: {r.reason[:300]}")
    log.append(f"ic3po: {r.route} ({r.elapsed_s:.1f} s, {len(r.families)} families)")
    return result("proved", route=r.route, invariant=[f.show() for f in r.families], families=r.families, proof=r.families,
                  learned_at=r.learned_at, log=log, for_every=r.for_every)


def _misfit(enc: Any, lemmas: tuple[Lemma, ...]) -> str | None:
    """Why the lemmas cannot be read on this protocol (a variable they name is missing), if so."""
    model = enc.model
    for lem in lemmas:
        try:
            lem.fn(model.context(model.initial), *(0 for _ in lem.params))
        except (AttributeError, StepError, KeyError) as exc:
            return (f"the lemmas do not fit protocol {model.protocol.name} ({exc}); "
                    "try --method auto, pdr or bmc, or give --lemmas")
    return None


def prove(protocol: Protocol, bounds: Bounds, method: str = "auto", *, depth: int = 20,
          timeout: float | None = None, lemmas: tuple[Lemma, ...] = INVARIANT,
          templates: list[Template] | None = None, infer_first: bool = False,
          families: list[Family] | None = None, shipped: bool = True, learn: bool = True,
          file_lemmas: list[Lemma] | None = None, note: Callable[[str], None] | None = None,
          learners: int | None = None) -> ProveResult:
    """Run ``method``; ``note`` receives progress lines; ``templates`` / ``families``: lemma families from
    a file (auto); ``file_lemmas``: shipped and weakened lemmas from a ``deferral-weakened/1`` file
    (auto: route ``lemma-file+houdini+induction`` first); ``infer_first``: in auto, try inferred lemmas before the shipped ones; ``shipped``:
    False leaves the hand-written lemmas out of auto; ``learn``: False skips the learned route; ``learners``:
    the enumerated route's learners at once (checks/symbolic/clauses_process.py; 0: in this process)."""
    return _prove(protocol, bounds, method, depth=depth, timeout=timeout, lemmas=lemmas, templates=templates,
                  infer_first=infer_first, families=families, shipped=shipped, learn=learn,
                  file_lemmas=file_lemmas, note=note, learners=learners)


def _prove(protocol: Protocol, bounds: Bounds, method: str, *, depth: int, timeout: float | None,
           lemmas: tuple[Lemma, ...], templates: list[Template] | None, infer_first: bool,
           families: list[Family] | None, shipped: bool, learn: bool, file_lemmas: list[Lemma] | None,
           note: Callable[[str], None] | None, learners: int | None = None) -> ProveResult:
    """Run ``method``; ``note`` receives progress lines."""
    start = time.monotonic()
    say = note or (lambda text: None)
    enc = encode(protocol, bounds)

    def left() -> float | None:
        return None if timeout is None else max(0.5, timeout - (time.monotonic() - start))

    stages: list[dict[str, Any]] = []

    def result(status: str, proof: Any = None, **kw: Any) -> ProveResult:
        """The answer; a proof by a Z3 route (``proof``: its invariant, lemmas or a formula's terms)
        stands only where that invariant rules out every failing step (checks/symbolic/failures.py)."""
        if status == "proved" and kw.get("route") != "explicit-search":
            gap = failure_gap(proof)
            if gap:
                status, kw["reason"] = "unknown", gap
        return ProveResult(protocol.name, bounds, method, status, time.monotonic() - start, model=enc.model,
                           stages=stages, **kw)

    def failure_gap(proof: Any) -> str:
        """Why the proof's invariant does not rule out a failing step ("" where it does); a failure it
        admits and a short bmc reaches is bad input (:class:`failures.ReachedFailure`)."""
        if not failures.failure_conditions(enc):
            return ""
        if proof is None:
            return "the route gives no invariant to rule out a failing step; nothing is claimed proved"
        if not callable(proof):  # the properties too: the proof shows they hold wherever the invariant does
            proof = failures.lemma_terms(enc, list(proof) + property_lemmas(protocol))
        quick = QUICK_BMC_S if timeout is None else min(QUICK_BMC_S, QUICK_BMC_SHARE * timeout)
        why = failures.why_not_ruled_out(enc, proof, left(), depth, quick, say)
        return f"{why}; nothing is claimed proved" if why else ""

    if method == "bmc":
        found = bmc(enc, depth, timeout=left(), failing=True,
                    progress=lambda d, t: say(f"bmc: no violation or failing step up to depth {d} ({t:.1f} s)"))
        if found.status == "violated":
            return result("violated", route="bmc", depth=found.depth, path=found.path, prop=found.prop)
        return result("unknown", route="bmc", depth=found.depth,
                      reason=f"no violation and no failing step up to depth {found.depth}" + (
                          "" if found.depth == depth else f" ({found.reason})"))

    if lemmas is INVARIANT:
        lemmas = invariant_for(enc.bounds)  # with the spaces lemma at more than one space
    misfit = _misfit(enc, lemmas)
    if method == "induction":
        if misfit:
            return result("unknown", route="induction", reason=misfit)
        say(f"induction: {len(lemmas)} lemmas")
        r = check_inductive(enc, lemmas, timeout=left())
        names = [lem.show(enc.bounds) for lem in lemmas]
        if r.status == "proved":
            return result("proved", route="induction", invariant=names, proof=lemmas)
        cti = r.cti.to_json(enc) if r.cti else None
        state = enc.model.to_json(r.state) if r.state is not None else None
        why = {"not-inductive": "the invariant is not inductive", "fails-initially": "the invariant fails initially",
               "too-weak": "the invariant does not imply the property", "unknown": r.reason}[r.status]
        return result("unknown", route="induction", invariant=names, reason=f"{why}: {', '.join(r.failed[:4])}",
                      cti=cti if cti else ({"state": state, "failed": r.failed} if state else None))

    if method == "pdr":
        say("pdr: Spacer is searching for an invariant")
        r = pdr(enc, timeout=left())
        if r.status == "proved":
            return result("proved", route="pdr", invariant=r.clauses, smt2=r.smt2,
                          proof=failures.formula_terms(r.invariant, enc.state("x")))
        if r.status == "violated" and r.trace is not None and r.trace.path is not None:
            return result("violated", route="pdr+bmc", depth=r.trace.depth, path=r.trace.path, prop=r.trace.prop)
        return result("unknown", route="pdr", reason=r.reason or "Spacer gave no answer")

    if method == "ic3po":
        r = ic3po_route(protocol, bounds, enc, None if timeout is None else 0.9 * (left() or timeout), say,
                        result, stages=stages) or result("unknown", route="ic3po", reason="no time left for it")
        if r.status == "unknown" and any(row.get("status") == "violated" for row in stages if row["route"] == "ic3po"):
            # IC3 reached a state that leaves the property: the breadth-first search gives the
            # shortest counterexample at the requested bounds, as bmc does for pdr
            say("ic3po: IC3 reached a violation; the explicit search looks for the shortest counterexample")
            ex = exhaust.explore(protocol, bounds, left() or exhaust.EXPLICIT_S, note=say)
            stages.append(ex.stage())
            if ex.status == "violated" and ex.path is not None:
                return result("violated", route="ic3po+explicit-search", depth=ex.depth,
                              path=oriented_path(enc, [st for _, st in ex.path]), prop=ex.prop,
                              exhaustive={"bounds": bounds.as_dict(), "states": ex.states, "verdict": ex.verdict()})
            r.reason = f"{r.reason}; explicit search at {bounds.short()}: {ex.verdict()}"
        return r

    if method != "auto":
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")

    log: list[str] = []
    #: why each route tried did not settle it: one clause per route (the unknown's reason is built from these)
    tried: dict[str, str] = {}

    def why(route: str, clause: str, width: int = 300, logged: bool = False) -> None:
        """Record (or replace: a bmc continued) why ``route`` did not settle it, and log it (unless ``logged``)."""
        clause = " ".join(str(clause).split())
        tried[route] = clause if len(clause) <= width else clause[:width - 3] + "..."
        if not logged:
            log.append(f"{route}: {clause}")

    look_to = min(depth, AUTO_BMC_DEPTH)
    small_at = bmc_bounds(protocol, bounds)
    # the smallest instance the learning samples (2,1,1 at Q and at most two spaces): where it is smaller than
    # ``small_at`` (three spaces), the first look before the learning is there; at 2,1,1,3,S=3 the explicit search
    # exhausts nothing in its box and then, short of the bmc's depth, kept the learning back (PROVE.md, 7 Dec, s32)
    first_at = first_look_bounds(protocol, bounds)
    searches: dict[Bounds, BmcSearch] = {}  # the bmc at each bounds, continued slice by slice

    bases: dict[Bounds, str | None] = {}

    def symmetry_basis(at: Bounds) -> str | None:
        """What renaming VCPUs at ``at`` rests on (:func:`check_symmetry`: a variant's is a Z3 proof, 3.7 s at
        6,3,3,3,S=3), None where they are not alike; found once for the explicit search and the bmc."""
        from deferral.checks.explicit.symmetry_guard import check_symmetry
        from deferral.model.variants import AsymmetricProtocol

        if at not in bases:
            try:
                bases[at] = check_symmetry(protocol, at, enc=enc if at == bounds else None)
            except AsymmetricProtocol:
                bases[at] = None
        return bases[at]

    def no_time_for_symmetry(at: Bounds, budget: float | None) -> bool:
        """Would :func:`symmetry_basis` need a Z3 proof at ``at``, the requested bounds (a variant file's, not found
        yet; 2.7 s at 4,3,3,3,S=3; at the small instances auto searches first 0.1-0.4 s, not counted), with less
        than :data:`SYMMETRY_PROOF_MIN_S` of ``budget`` for it?"""
        return budget is not None and budget < SYMMETRY_PROOF_MIN_S and at == bounds and at not in bases \
            and not is_published(protocol)

    def vcpus_alike(at: Bounds) -> bool:
        """May the bmc at ``at`` take the VCPUs named in order (checks/symbolic/bmc_symmetry.py): is renaming
        them known to commute with the protocol there (published, or proved by Z3; not a sample)?"""
        from deferral.checks.symbolic.bmc_symmetry import known

        try:
            return known(symmetry_basis(at))
        except (VariantError, StepError, EncodingError):
            return False

    def search(at: Bounds, budget: float | None = None) -> BmcSearch:
        """The bmc at ``at``, built on first use; for a slice of ``budget`` seconds, built without the VCPUs
        named in order where that needs a proof which would not end in time (:data:`SYMMETRY_PROOF_MIN_S`)."""
        if at not in searches:
            searches[at] = BmcSearch(enc if at == bounds else encode(protocol, at, check=False), look_to,
                                     symmetric=alike_within(at, budget))
        return searches[at]

    def alike_within(at: Bounds, budget: float | None) -> bool:
        """:func:`vcpus_alike`, or False where that needs a proof which would not end within ``budget``."""
        return False if no_time_for_symmetry(at, budget) else vcpus_alike(at)

    def settled(at: Bounds) -> bool:
        """Has the bmc at ``at`` found a violation or checked every depth (False where it has not started)?"""
        return at in searches and searches[at].settled

    def bmc_clause(at: Bounds) -> None:
        s = search(at)
        why(f"bmc at {at.short()}", f"no violation up to depth {s.checked}" + (
            f" ({s.result.reason}; {s.seconds:.1f} s in all)" if s.checked < look_to else ""))

    def look(at: Bounds, budget: float | None, whole: bool = True) -> BmcResult:
        """Continue the bmc at ``at`` within ``budget`` seconds (a row of ``stages`` per slice;
        ``whole`` False: stop before a depth that would not end in time)."""
        s = search(at, budget)
        say(f"auto: bounded model checking to depth {look_to} at {at.short()} (from depth {s.checked + 1}"
            + ("" if budget is None else f", at most {budget:.0f} s") + ")")
        r = s.run(budget, whole=whole)
        if r.elapsed_s < 0.01 and r.status != "violated":
            return r  # nothing checked: the next depth would not end in this slice
        stages.append(stage("bmc", at, "bmc", None, None, r.elapsed_s, depth=r.depth, result=r.status))
        if r.status != "violated":
            bmc_clause(at)
        return r

    def bounded_look(budget: float | None) -> ProveResult | None:
        """Continue the bmc at the requested bounds: the violation's result, else None."""
        r = look(bounds, budget)
        if r.status == "violated":
            return result("violated", route="bmc", depth=r.depth, path=r.path, prop=r.prop, log=log)
        return None

    def reserve() -> float:
        """The time a learning route's budget leaves: the bmc's at the smallest instance (its share of
        the limit, less what it used) while it has not finished; where the explicit search exhausted
        the requested bounds, a share of the limit kept for that answer."""
        if timeout is not None and holds_at(bounds):  # the bounded proof is in hand: keep time to give it
            return EXHAUSTED_KEEP_SHARE * timeout
        s = search(small_at) if small_at in searches else None
        if timeout is None or s is None or s.settled or small_safe():
            return 0.0
        return max(0.0, SMALL_BMC_TOTAL_SHARE * timeout - s.seconds)

    def learning_budget(share: float) -> float:
        """A learning route's budget: ``share`` of the time left, at most what the bmc's reserve leaves."""
        now = left() or 0.0
        return max(0.0, min(share * now, now - reserve()))

    def small_look(budget: float | None, whole: bool = True) -> ProveResult | None:
        """Continue the bmc at the smallest instance (``small_at``); a violation there is searched
        again at the requested bounds with the time left (the shortest trace at the requested bounds)."""
        r = look(small_at, budget, whole)
        if small_at == bounds:
            return None if r.status != "violated" else result(
                "violated", route="bmc", depth=r.depth, path=r.path, prop=r.prop, log=log)
        if r.status != "violated":
            return None
        log.append(f"bmc at {small_at.short()}: {r.prop} violated in {r.depth} steps; "
                   f"the shortest trace at {bounds.short()} follows")
        assert r.path is not None
        lifted = lifted_result(r.path, r.prop, "bmc")
        if lifted is not None:
            return lifted
        why(f"bmc at {small_at.short()}", f"{r.prop} violated in {r.depth} steps, but the bmc at {bounds.short()} "
            "did not reach that violation in time")
        return bounded_look(left())

    def lifted_result(small_path: Path, prop: str | None, found_by: str, found_at: Bounds | None = None
                      ) -> ProveResult | None:
        """A violation at the smallest instance carried over to the requested bounds (:func:`lift.lift_path`):
        None when its steps do not make a violation there. Else the bmc at the requested bounds looks for a
        shorter one, from the depth the explicit search cleared there, within :data:`SHORTER_S` (or a share of
        the time left): a shorter one found is the answer (bmc: the shortest); none shorter to the lifted length
        makes the lifted path a shortest one; otherwise the lifted path is the answer, ``shortest`` False."""
        small = small_at if found_at is None else found_at
        path = lift_path(enc.model, small_path, prop, small)
        if path is None:
            return None
        length = len(path) - 1
        cleared = explored[bounds].depth if bounds in explored and explored[bounds].status != "violated" else 0
        if bounds in searches:  # an earlier bmc slice there cleared some depths too
            cleared = max(cleared, searches[bounds].checked)
        def share() -> float:
            return SHORTER_S if timeout is None else SHORTER_SHARE * (left() or 0.0)

        shorter = BmcSearch(enc, length - 1, symmetric=alike_within(bounds, share()))
        if cleared > 0:
            shorter.known_safe_to(cleared)
        budget = share()  # what the symmetry proof left
        r = shorter.run(budget) if shorter.checked < length - 1 else shorter.result
        if shorter.seconds > 0 or r.status == "violated":
            stages.append(stage("bmc", bounds, "bmc", None, None, r.elapsed_s, depth=r.depth, result=r.status))
        if r.status == "violated":
            log.append(f"bmc at {bounds.short()}: {r.prop} violated in {r.depth} steps, shorter than the "
                       f"{length} steps of the smallest instance's counterexample")
            return result("violated", route="bmc", depth=r.depth, path=r.path, prop=r.prop, log=log)
        oriented = oriented_path(enc, [st for _, st in path])
        names = [v.prop for v in enc.model.violations(oriented[-1][1])]
        prop_there = prop if prop in names else (names[0] if names else prop)
        added = length - (len(small_path) - 1)  # steps of the elements the smallest instance lacks
        steps = f"its {len(small_path) - 1} steps" + (f" and {added} of the elements it lacks" if added else "")
        if shorter.checked >= length - 1:
            log.append(f"{found_by} at {small.short()}: {steps} violate {prop_there} at {bounds.short()} "
                       f"too, and nothing shorter does there (no violation within {length - 1} steps)")
            return result("violated", route=f"{found_by}+lifted", depth=length, path=oriented, prop=prop_there, log=log)
        note = (f"a counterexample of {length} steps: the shortest at {small.short()}, run at {bounds.short()}"
                + (f" with {added} steps of the elements it lacks" if added else "") + "; "
                f"none shorter than {max(shorter.checked, cleared) + 1} steps there, shorter ones from "
                f"{max(shorter.checked, cleared) + 1} to {length - 1} steps not ruled out "
                f"(the bmc at {bounds.short()}: {r.reason or 'stopped'} after {shorter.seconds:.0f} s)")
        log.append(note)
        return result("violated", route=f"{found_by}+lifted", depth=length, path=oriented, prop=prop_there, log=log,
                      reason=note, shortest=False)

    def small_bug() -> bool:
        return small_at != bounds and small_at in searches and searches[small_at].result.status == "violated"

    explored: dict[Bounds, exhaust.Exhaustive] = {}  # the explicit route's verdicts (requested, smallest)

    def holds_at(at: Bounds) -> bool:
        """Did the explicit search exhaust ``at`` with no violation (so no bmc there can find one)?"""
        return at in explored and explored[at].status == "holds"

    def cleared(at: Bounds) -> bool:
        """Did the explicit search check every state of ``at`` within the bmc's depth with no violation
        (exhausted it, or stopped deeper): no bmc there can find one?"""
        ex = explored.get(at)
        return ex is not None and (ex.status == "holds" or ex.status == "unknown" and ex.depth >= look_to)

    def small_safe() -> bool:
        """No violation at the smallest instance within the bmc's depth: its bmc is not needed."""
        return cleared(small_at)

    def first_safe() -> bool:
        """No violation at the first look's instance within the bmc's depth: the enumerated families are
        tried first (without the shipped lemmas)."""
        return cleared(first_at)

    def ladder_search(around: Bounds, shorter_than: int | None = None) -> Any:
        """The ladder's search (:func:`ladder_route`) of the instances with one VCPU, page or frame ``around`` lacks,
        within the requested bounds (not those): at one space first, half the states at most, then at ``around``'s
        spaces, within :data:`LADDER_S` (with a limit: :data:`LADDER_SHARE` of the time left); ``shorter_than``: only
        a violation in fewer steps counts (:func:`parametric_refute.search_rounds`)."""
        from deferral.checks.symbolic import parametric_refute as refute

        began = time.monotonic()
        budget = LADDER_S if timeout is None else min(LADDER_S, LADDER_SHARE * (left() or 0.0))

        def one_larger(at: Bounds) -> bool:  # one VCPU, page or frame more than ``around`` has
            return sum(max(0, at[d] - around[d]) for d in ("vcpus", "pages", "frames")) == 1

        # at three spaces 2,1,2 took 5.4 s for its 2,000,000 states, at two 1.1 s; at one space overflow-drop's
        # 9 steps at 2,2,1,2 take 250,000 states, at two 1,000,000 reach depth 7 (it was unknown at 3,2,2,2,S=2);
        # one VCPU: its 11 steps at Q=3 take 1,2,1's 8,421 states (2,2,1,3 at one space: 250,000 reach depth 9)
        spaces = sorted({1, around["spaces"]}) if "spaces" in bounds else [None]
        found = refute.SmallSearch()
        for s in spaces:
            ats = [(index, at) for index, at in refute.instances(bounds if s is None else bounds.replace(spaces=s),
                                                                 within=True) if one_larger(at) and at != bounds]
            # at more spaces one round, LADDER_FIRST / 2 states each (the rounds there took 1.8 s at 4,3,3,3,S=3 for
            # no bug found so far; lazy_cur_clear's learning missed its 60 s by that much)
            last = s == spaces[-1] and len(spaces) > 1
            total = LADDER_TOTAL // 2 if s != spaces[-1] else LADDER_TOTAL - found.spent
            more = refute.search_rounds(protocol, ats, budget - (time.monotonic() - began),
                                        LADDER_FIRST // 2 if last else LADDER_FIRST,
                                        LADDER_FIRST // 2 if last else LADDER_STATES, total, note=say,
                                        shorter_than=shorter_than)
            found = refute.SmallSearch(more.refutation, found.searched + more.searched, found.spent + more.spent)
            if found.refutation is not None:
                break
        return found

    def shorter_nearby(bad: SmallViolation) -> SmallViolation:
        """A violation the first look found, or a shorter one at the ladder's instances around it (a third VCPU can
        make it shorter: drain-local-only, 9 steps at 2,1,1, 8 at 3,1,1; the bmc at 3,2,2,2,S=3 then has fewer
        depths to rule out). Searched once, in the ladder's box (the ladder itself runs only where it is safe)."""
        length = len(bad.path) - 1
        if bad.bounds != first_at or laddered or small_at == bounds:
            return bad
        laddered.append(first_at)
        near = ladder_search(first_at, shorter_than=length).refutation
        if near is None:
            return bad
        log.append(f"explicit at {near.bounds.short()}: {near.outcome.name} violated in {near.length} steps, fewer "
                   f"than the {length} at {bad.bounds.short()}")
        return SmallViolation.searched(near)

    def explicit_route(small_only: bool = False) -> ProveResult | None:
        """The explicit search, time-boxed: first at the smallest instances (where it is cheap; one it
        exhausts needs no bmc): the first look's (``first_at``), then ``small_at`` where that has more
        spaces; then at the requested bounds. A violation at the requested bounds is the shortest there;
        one only at a smaller instance is searched again at the requested bounds by bmc. The depth
        reached there without a violation is not queried again by the bmc
        (:meth:`BmcSearch.known_safe_to`). ``small_only``: the first look's instance alone (an instance
        already explored is not searched again)."""
        box = exhaust.EXPLICIT_S if timeout is None else exhaust.EXPLICIT_SHARE * (left() or 0.0)
        began = time.monotonic()
        small_bad: SmallViolation | None = ladder_bad[0] if ladder_bad else None
        smaller = [first_at] if small_only else list(dict.fromkeys([first_at, small_at]))
        for at in [x for x in smaller if x != bounds] + ([] if small_only else [bounds]):
            if at in explored:  # searched already (a violation there, by the first look: carried over below)
                if at != bounds and small_bad is None and explored[at].status == "violated":
                    small_bad = SmallViolation.of(explored[at])
                continue
            if small_bad is not None and at != bounds:
                continue  # a violation at a smaller instance already: the requested bounds next
            if at == bounds and len(enc.model.actions) >= EXPLICIT_MAX_ACTIONS:
                why(f"explicit at {at.short()}", f"not tried ({len(enc.model.actions)} step instances, at least "
                    f"{EXPLICIT_MAX_ACTIONS}: its first levels take its box, where the bmc goes deeper)")
                continue
            budget = box - (time.monotonic() - began)
            if budget < exhaust.EXPLICIT_MIN_S or no_time_for_symmetry(at, budget):
                why(f"explicit at {at.short()}", f"not tried ({budget:.1f} s left in its box" + (
                    "" if budget < exhaust.EXPLICIT_MIN_S else ", less than the VCPU symmetry proof it rests on "
                    "may take") + ")")
                break
            ex = explored[at] = exhaust.explore(protocol, at, budget, note=say,
                                                exhaust_only=at == bounds and holds_at(small_at),
                                                keep=learning_sample(at), basis_of=symmetry_basis)
            stages.append(ex.stage())
            if ex.status == "violated" and at == bounds:
                assert ex.path is not None
                return result("violated", route="explicit-search", depth=ex.depth,
                              path=oriented_path(enc, [st for _, st in ex.path]), prop=ex.prop, log=log,
                              exhaustive={"bounds": at.as_dict(), "states": ex.states, "verdict": ex.verdict()})
            why(f"explicit at {at.short()}", ex.verdict())
            if ex.status == "violated":
                small_bad = SmallViolation.of(ex)  # the requested bounds next: their search finds the shortest there
            if at == bounds and ex.depth > 0 and ex.status != "holds":
                search(bounds).known_safe_to(ex.depth)  # the bmc there starts deeper
        if small_bad is not None and not small_only:
            small_bad = shorter_nearby(small_bad)
            log.append(f"explicit at {small_bad.bounds.short()}: {small_bad.verdict}; the shortest trace at "
                       f"{bounds.short()} follows (bmc)")
            lifted = lifted_result(small_bad.path, small_bad.prop, "explicit-search", small_bad.bounds)
            if lifted is not None:
                return lifted
            why(f"explicit at {small_bad.bounds.short()}", f"{small_bad.verdict}, but the bmc at {bounds.short()} "
                "did not reach that violation in time")
            return bounded_look(left())
        return None

    ladder_bad: list[SmallViolation] = []  # a violation the ladder found (the explicit route carries it over)
    laddered: list[Bounds] = []  # the ladder's searches ran (once: early, or with the explicit search)

    def ladder_route() -> ProveResult | None:
        """The instances with one element the first look's lacks, within the requested bounds (a third VCPU, a
        second page or frame, with as many VCPUs or one; not the requested bounds themselves), once it is safe: at
        one space first (where they are cheap: a bug that needs no second space shows there), then at the first
        look's spaces, searched breadth-first for an invariant's violation in rounds
        (:func:`parametric_refute.search_rounds`: every instance a little first, then further; :data:`LADDER_FIRST`
        to :data:`LADDER_STATES` states each, :data:`LADDER_TOTAL` in all, within :data:`LADDER_S` or a share of
        the time left). A violation is carried over by :func:`explicit_route`, as the first look's: the requested
        bounds searched first, then :func:`lifted_result` (the bmc there looks for a shorter one)."""
        if small_at == bounds or not first_safe() or laddered:
            return None
        laddered.append(first_at)
        found = ladder_search(first_at)
        if found.refutation is None:
            if found.searched:
                why("explicit at small instances", found.summary())
            return None
        # the requested bounds searched first (where the explicit search reaches that depth there, its violation
        # is the shortest there), then the ladder's carried over (the bmc starts below what that search cleared)
        ladder_bad.append(SmallViolation.searched(found.refutation))
        return explicit_route()

    def learning_sample(at: Bounds) -> int:
        """How many of the states of ``at`` the explicit search keeps for the enumerated route: its first
        sample's (where ``at`` is the instance that sample is drawn from), else none."""
        from deferral.checks.symbolic import clauses

        if not learn:
            return 0
        try:
            first = clauses.plan(protocol, concrete(), within=bounds)[0]
        except (KeyError, ValueError, IndexError):
            return 0
        return clauses.FIRST_CAP if first[0] == at and first[1] == "exhaustive" else 0

    def concrete() -> dict[str, int]:
        """The requested bounds the learning routes keep concrete (Q, S)."""
        return {d.name: bounds[d.name] for d in bounds.decls if d.name in ("queue", "spaces")}

    quick_s = QUICK_BMC_S if timeout is None else min(QUICK_BMC_S, QUICK_BMC_SHARE * timeout)
    inferred_at: Bounds | None = None

    def inferred() -> list[Template] | None:
        """Spacer at small bounds, its clauses generalized into lemma families."""
        nonlocal inferred_at
        inferred_at = infer_bounds(bounds)
        budget = INFER_DEFAULT_S if timeout is None else learning_budget(INFER_SHARE)
        if budget < 1.0:
            why("pdr-generalized", f"not tried ({budget:.1f} s left for it, {reserve():.0f} s kept for the bmc)")
            return None
        say(f"auto: Spacer infers lemmas at {inferred_at.short()} (budget {budget:.0f} s)")
        small = pdr(enc if inferred_at == bounds else encode(protocol, inferred_at), timeout=budget,
                    encoding="onehot")
        if small.status != "proved":
            why("pdr-generalized", f"Spacer at {inferred_at.short()}: {small.status}"
                + (f" ({small.reason})" if small.reason else "") + f" after {small.elapsed_s:.1f} s")
            return None
        found_templates = generalize(small.invariant, small.atoms, encode(protocol, inferred_at, check=False).layout)
        log.append(f"pdr at {inferred_at.short()}: {len(small.clauses)} clauses in {small.elapsed_s:.1f} s, "
                   f"{len(found_templates)} candidate lemma families")
        return found_templates

    def enumerated() -> ProveResult | None:
        """Route ``enumerated+houdini+induction`` (checks/symbolic/clauses.py): clauses of the declared
        vocabulary over every sort, true in sampled reachable states, chosen by Houdini and the
        counterexamples to induction at the smallest sampled instance and the largest; then Houdini and
        induction at these bounds, and only where they fail, the learning at these bounds too."""
        from deferral.checks.symbolic import clauses, clauses_process
        from deferral.checks.terms.encoding import EncodingError

        if "enumerated" in tried or any(row["route"] == "enumerated" for row in stages):
            return None  # tried already (first, where the explicit search found the smallest instance safe)
        budget = INFER_DEFAULT_S if timeout is None else learning_budget(ENUMERATED_SHARE)
        if budget < LEARN_PARAMETRIC_MIN_S:
            why("enumerated", f"not tried ({budget:.1f} s left for it, under {LEARN_PARAMETRIC_MIN_S:.0f} s)")
            return None
        say(f"auto: enumerating lemma families over the declared sorts (at most {budget:.0f} s)")
        began = time.monotonic()
        # the states of an instance the explicit search cleared (not searched again), and this
        # encoding for the last stage, at these bounds (not built again)
        given = {at: ex.sample for at, ex in explored.items() if cleared(at) and ex.sample is not None}
        # the learning stops before these bounds: what its last stage needed goes to Houdini and induction
        # here first, and only where they fail does it learn here too (its Houdini here ran the same queries
        # as the one that decides: 5-12 s of 40-50 at 6,3,3,3,S=2; PROVE.md, 6 Dec, s6)
        every = clauses.stage_bounds(protocol, bounds)
        # in fresh processes where it can (clauses_process: a course then depends on its inputs alone, not on
        # what this process did before; two learners with their own Z3 seeds where there are two CPUs); their
        # Houdini and induction here end LATE_S before the limit, as this process waits for them that long past
        # it (unknowns at 4,3,3,3,S=2 ended 0.1-0.8 s past a 60-s limit; PROVE.md, 6 Dec, evening)
        check_s = None if timeout is None else max(0.5, (left() or 0.0) - clauses_process.LATE_S)
        try:
            out, where = clauses_process.prove_learned(
                protocol, bounds, clauses.plan(protocol, concrete(), within=bounds), every[:-1],
                deadline=began + budget, check_deadline=None if check_s is None else time.monotonic() + check_s,
                given=given, note=say, enc=enc, learners_asked=learners)
        except (EncodingError, StepError) as exc:
            why("enumerated", f"not tried ({exc})")
            return None
        except clauses_process.LearnerGone as exc:
            why("enumerated", f"unknown after {time.monotonic() - began:.1f} s ({exc})")
            return None
        log.extend(where)
        stages.extend(stage("enumerated", b, "sample", None, None, None, states=n, how=how) for b, how, n in out.sampled)
        for row in out.rows:
            if row["kind"] == "learn":
                stages.append(stage("enumerated", row["bounds"], "houdini+cti", row["families_in"], row["families_kept"],
                                    row["seconds"], rounds=row["rounds"], needed=row["needed"],
                                    **{k: row[k] for k in ("forward", "z3_seed_offset", "cti") if k in row}))
            else:  # Houdini and induction here, or for every N, V, F at these Q, S first (at large bounds)
                stages.append(stage("enumerated", bounds, row.get("method", "houdini+induction"), row["families_in"],
                                    row["families_kept"], row["seconds"], result=row["result"],
                                    **({"for_every": row["for_every"]} if "for_every" in row else {})))
        log.append(f"enumerated: {out.enumerated} families true in the samples; seconds by part: "
                   + ", ".join(f"{k} {v:.1f}" for k, v in out.seconds_by_part.items()))
        if out.status == "proved":
            every = out.for_every  # proved for every N, V, F at these Q, S (so at these bounds too)
            log.append(f"enumerated: Houdini kept {len(out.alive)} of {out.candidates} families; "
                       + ("proved by induction" if every is None else every["verdict"]))
            return result("proved", route="enumerated+houdini+induction" if every is None else
                          "enumerated+parametric-houdini+induction", log=log, proof=out.alive,
                          invariant=[lem.show(enc.bounds) for lem in out.alive],
                          learned_at=[b for b, _, _ in out.sampled], for_every=every,
                          proof_lemmas=[x for x in out.alive if isinstance(x, clauses.Clause)])  # --invariant-out
        for route, text in out.why:
            why(route, text)
        return None

    def learned() -> ProveResult | None:
        """Lemma families learned from reachable states at small bounds and CTIs (checks/symbolic/infer.py)."""
        share = LEARN_SHARE / 2 if infer_first else LEARN_SHARE  # first: leave time for what follows
        budget = INFER_DEFAULT_S if timeout is None else learning_budget(share)
        if budget < 1.0:
            why("inferred", f"not tried ({budget:.1f} s left for it, {reserve():.0f} s kept for the bmc)")
            return None
        say(f"auto: learning lemma families from reachable states (budget {budget:.0f} s)")
        r = infer(enc, timeout=budget, note=say, diagrams=diagram_families)
        log.extend(r.log)
        stages.extend(stage("inferred", b, "sample", None, None, None) for b in r.sampled_at)
        if stages and r.sampled_at:
            stages[-1]["states"] = r.sampled_states  # all the sampled bounds together
        stages.extend(stage("inferred", row["bounds"], "houdini+cti", row["families_in"], row["families_kept"],
                            row["seconds"], rounds=row["rounds"]) for row in r.stage_stats)
        if r.status == "proved":
            return result("proved", route="inferred+houdini+induction", invariant=[f.show() for f in r.families],
                          log=log, families=r.families, learned_at=r.sampled_at, inductive=r.kept, proof=r.kept)
        why("inferred", f"{r.status} after {r.rounds} rounds, {r.elapsed_s:.1f} s ({r.reason or 'no reason given'})")
        return None

    def parametric_route() -> ProveResult | None:
        """The shipped lemmas (and a lemma file's families) in the parametric encoding, Houdini
        over uninterpreted sorts: a proof for every N, V, F at these Q, S proves these bounds."""
        from deferral.checks.symbolic import parametric
        from deferral.checks.terms.encoding import EncodingError

        budget = PARAMETRIC_S if timeout is None else min(PARAMETRIC_S, left() or PARAMETRIC_S)
        say(f"auto: Houdini over the shipped lemmas for every N, V, F (parametric, at most {budget:.0f} s)")
        extra = parametric.learned_lemmas(families, protocol)[:len(families)] if families else []
        try:
            r = parametric.prove_candidates(protocol, dict(bounds), extra=extra, timeout=budget / 6,
                                            houdini_s=budget, note=say)
        except EncodingError as exc:
            why("shipped-lemmas+parametric-houdini", f"cannot be evaluated for every number of elements ({exc})")
            return None
        stages.append(stage("parametric", dict(r.concrete), "parametric-houdini", len(r.lemmas) + len(r.dropped),
                            len(r.lemmas) if r.status == "proved" else None, r.elapsed_s, for_every=r.open_bounds,
                            result=r.verdict))
        if r.status != "proved":
            why("shipped-lemmas+parametric-houdini", f"unknown after {r.elapsed_s:.1f} s ({r.reason})")
            return None
        log.append(f"parametric: {r.verdict} ({r.elapsed_s:.1f} s; Houdini dropped {len(r.dropped)}: "
                   + "; ".join(f"{n} ({w})" for n, w in r.dropped) + ")")
        return result("proved", route="shipped-lemmas+parametric-houdini", proof=r.lemmas,
                      invariant=[lem.show(r.concrete) for lem in r.lemmas], log=log,
                      for_every={"for_every": r.open_bounds, "assumed_concrete": r.concrete, "verdict": r.verdict})

    def learned_parametric() -> ProveResult | None:
        """Lemma families learned and proved for every N, V, F at these Q, S
        (checks/symbolic/paramlearn.py): a proof of the requested bounds, whatever N, V, F."""
        from deferral.checks.symbolic import paramlearn
        from deferral.checks.terms.encoding import EncodingError

        budget = LEARN_PARAMETRIC_S if timeout is None else learning_budget(LEARN_PARAMETRIC_SHARE)
        if timeout is not None and holds_at(bounds):  # an answer in hand: paramlearn ran to twice its budget at
            budget /= 2  # S=2, 3 under load 8-10 (PROVE.md, 4 Dec), into the CLI's hard limit, losing that answer
        if budget < LEARN_PARAMETRIC_MIN_S:
            why("inferred+parametric", f"not tried ({budget:.1f} s left for it, under {LEARN_PARAMETRIC_MIN_S:.0f} s)")
            return None
        say(f"auto: learning lemma families proved for every N, V, F (at most {budget:.0f} s)")
        try:
            fixed = list(lemmas) if shipped and not misfit else []  # offered too: Houdini decides
            r = paramlearn.learn(protocol, dict(bounds), timeout=budget, note=say, lemmas=fixed)
        except EncodingError as exc:
            why("inferred+parametric", f"cannot be evaluated for every number of elements ({exc})")
            return None
        log.extend(r.log)
        stages.extend(stage("inferred+parametric", b, "sample", None, None, None, states=n, how=how)
                      for b, how, n in r.sampled)
        used = ("stage", "bounds", "candidates", "kept", "seconds")
        stages.extend(stage("inferred+parametric", row.get("bounds") or dict(r.concrete),
                            row.get("stage") or "parametric-houdini+cti", row.get("candidates"), row.get("kept"),
                            row.get("seconds"), **{k: v for k, v in row.items() if k not in used})
                      for row in r.stages)  # paramlearn's rounds (a bounded stage says its bounds)
        if r.status != "proved" or r.proof is None:
            why("inferred+parametric", f"unknown after {r.elapsed_s:.1f} s ({r.reason or 'no reason given'})")
            return None
        log.append(f"inferred+parametric: {r.proof.verdict} ({r.elapsed_s:.1f} s, {len(r.families)} families)")
        return result("proved", route="inferred+parametric", log=log, proof=list(r.lemmas) + list(r.families),
                      invariant=[lem.show(r.concrete) for lem in r.lemmas] + [f.show() for f in r.families],
                      families=r.families, learned_at=[b for b, _, _ in r.sampled], inductive=r.kept,
                      for_every={"for_every": r.open_bounds, "assumed_concrete": r.concrete,
                                 "verdict": r.proof.verdict, "learning": r.to_json()})

    def houdini_induction(name: str, candidates: list[Any]) -> tuple[list[Any], list[str], Any] | None:
        """Houdini over ``candidates``, then induction on what survives; None on a timeout (its reason kept)."""
        say(f"auto: Houdini over {len(candidates)} {name} lemma families at {bounds.short()}")
        began = time.monotonic()
        try:
            alive, hlog = houdini(enc, candidates, timeout=left())
            r = check_inductive(enc, alive, timeout=left(), inductive=True)
        except TimeoutError as exc:
            why(f"{name}+houdini+induction", f"Houdini: {exc}")
            stages.append(stage(name, bounds, "houdini+induction", len(candidates), None, time.monotonic() - began,
                                result="unknown"))
            return None
        stages.append(stage(name, bounds, "houdini+induction", len(candidates), len(alive), time.monotonic() - began,
                            result=r.status))
        return alive, hlog, r

    def weakened_route(hlog: list[str]) -> ProveResult | None:
        """Route ``shipped-lemmas+weakened+houdini+induction`` (checks/symbolic/weaken.py): each shipped
        lemma Houdini dropped is offered again weakened ("L or D", D from reachable states of a small
        instance), beside the shipped lemmas; Houdini and induction at the requested bounds decide."""
        from deferral.checks.symbolic import weaken

        budget = WEAKEN_S if timeout is None else min(WEAKEN_S, WEAKEN_SHARE * (left() or 0.0))
        dropped = weaken.dropped_names(hlog)
        try:
            rep = weaken.repair(protocol, bounds, lemmas, dropped, timeout=budget, note=say)
        except exhaust_errors() as exc:
            why("shipped-lemmas+weakened+houdini+induction", f"not tried ({exc})")
            return None
        stages.append(stage("weakened", rep.sampled_at or bounds, "sample+weaken", len(dropped), len(rep.candidates),
                            rep.seconds, states=rep.states, weakened=rep.weakened))
        if rep.violated:
            why("shipped-lemmas+weakened+houdini+induction", f"not tried: a reachable state at "
                f"{rep.sampled_at.short() if rep.sampled_at else '-'} violates {rep.violated}")
            return None
        if not rep.candidates:
            why("shipped-lemmas+weakened+houdini+induction",
                "Houdini dropped no shipped lemma: nothing to weaken (they are inductive here, too weak for a "
                "property they were not written for)" if not dropped else
                "no weakening of the dropped lemmas holds in the "
                f"{rep.states} reachable states at {rep.sampled_at.short() if rep.sampled_at else '-'} "
                "(or none fails there)")
            return strengthened_route(rep)
        log.append(f"weakened: {len(rep.candidates)} weakened versions of "
                   f"{sum(1 for n in rep.weakened.values() if n)} of the {len(dropped)} dropped lemma(s), "
                   f"from {rep.states} reachable states at {rep.sampled_at.short() if rep.sampled_at else '-'} "
                   f"({rep.seconds:.1f} s)")
        candidates = list(lemmas) + rep.candidates
        done = short_first("shipped-lemmas+weakened", rep)
        if done is not None:
            return done
        tried_now = houdini_induction("shipped-lemmas+weakened", candidates)
        if tried_now is None:
            return None
        alive, hlog2, r = tried_now
        if r.status == "proved":
            alive = weaken.trim(enc, alive, timeout=left())
            return result("proved", route="shipped-lemmas+weakened+houdini+induction", proof=alive,
                          invariant=[lem.show(enc.bounds) for lem in alive], log=log,
                          learned_at=[rep.sampled_at] if rep.sampled_at else None, proof_lemmas=alive)
        not_proved("shipped-lemmas+weakened", alive, candidates, hlog2, r)
        return strengthened_route(rep)

    def short_first(name: str, rep: Any) -> ProveResult | None:
        """Where the weakenings were sampled below the requested bounds: the proof shortened at the
        sample's bounds first (:func:`weaken.shortened`: Houdini, induction and trim there, cheap), then
        Houdini and induction at the requested bounds over the shipped lemmas and that short set; None
        where it does not prove it there (the caller offers all the weakenings)."""
        from deferral.checks.symbolic import weaken

        small = rep.sampled_at
        if small is None or small == bounds:
            return None
        began = time.monotonic()
        budget = None if timeout is None else min(SHORT_S, SHORT_SHARE * (left() or 0.0))
        short = weaken.shortened(protocol, small, rep.candidates, timeout=budget)
        stages.append(stage(name, small, "houdini+induction+trim", len(rep.candidates),
                            None if short is None else len(short), time.monotonic() - began,
                            result="proved" if short is not None else "not proved"))
        if not short:
            return None
        tried_now = houdini_induction(name, list(lemmas) + short)
        if tried_now is None:
            return None
        alive, _, r = tried_now
        if r.status != "proved":
            log.append(f"{name}: the {len(short)} weakened lemmas a proof at {small.short()} needs are "
                       f"{r.status} at {bounds.short()}; all {len(rep.candidates)} offered there")
            return None
        log.append(f"{name}: a proof at {small.short()} needs {len(short)} of the {len(rep.candidates)} weakened "
                   f"lemmas; with the shipped lemmas they prove it at {bounds.short()}")
        return result("proved", route=f"{name}+houdini+induction", proof=alive, invariant=[lem.show(enc.bounds) for lem in alive],
                      log=log, learned_at=[small], proof_lemmas=alive)

    def strengthened_route(rep: Any) -> ProveResult | None:
        """Route ``shipped-lemmas+weakened+strengthened+houdini+induction`` (checks/symbolic/strengthen.py):
        where dropped lemmas still hold in every sampled state, new small families true there, and what
        the property needs of them and the weakened lemmas at the sample's bounds (Houdini, unsat cores),
        beside the shipped lemmas; Houdini and induction at the requested bounds decide."""
        from deferral.checks.symbolic import strengthen, weaken

        name = "shipped-lemmas+weakened+strengthened"
        if not rep.holding:
            return None
        budget = STRENGTHEN_S if timeout is None else min(STRENGTHEN_S, STRENGTHEN_SHARE * (left() or 0.0))
        deadline = time.monotonic() + budget
        st = strengthen.joint(protocol, rep, lemmas, deadline=deadline, note=say)
        stages.append(stage("strengthened", rep.sampled_at or bounds, "sample+enumerate+support", len(rep.holding),
                            len(st.offered), st.seconds, families=len(st.families), enumerated=st.enumerated,
                            needed=st.needed))
        if not st.offered:
            why(f"{name}+houdini+induction", f"{len(st.families)} new families true in the {rep.states} sampled "
                f"states: {st.why}")
            return None
        log.append(f"strengthened: {len(st.families)} new families over the parameters of {len(rep.holding)} "
                   f"dropped lemma(s) true in every sampled state; the property needs {len(st.offered)} weakened "
                   f"lemmas and new families at {rep.sampled_at.short()} ({st.seconds:.1f} s)")
        candidates = list(lemmas) + st.offered
        tried_now = houdini_induction(name, candidates)
        if tried_now is None:
            return None
        alive, hlog2, r = tried_now
        if r.status == "proved":
            alive = weaken.trim(enc, alive, timeout=left())
            return result("proved", route=f"{name}+houdini+induction", proof=alive,
                          invariant=[lem.show(enc.bounds) for lem in alive], log=log,
                          learned_at=[rep.sampled_at] if rep.sampled_at else None)
        not_proved(name, alive, candidates, hlog2, r)
        return None

    def not_proved(name: str, alive: list[Any], candidates: list[Any], hlog: list[str], r: Any) -> None:
        """Why Houdini + induction over ``candidates`` did not prove it: the first lemma Houdini
        dropped (and the step that broke it), then induction's verdict on the rest."""
        why(f"{name}+houdini+induction", not_proved_reason(len(alive), len(candidates), hlog, r))

    def by_templates(name: str, temps: list[Template] | None) -> ProveResult | None:
        """Houdini + induction over Spacer-generalized templates (a lemma file, or pdr-generalized)."""
        if not temps:
            return None
        candidates = [t.lemma(sort_domains(enc.layout.variables)) for t in temps]
        tried_now = houdini_induction(name, candidates)
        if tried_now is None:
            return None
        alive, hlog, r = tried_now
        log.append(f"{name}: Houdini kept {len(alive)} of {len(candidates)} families")
        if r.status == "proved":
            kept = [t for t in temps if t.show() in {a.show() for a in alive}]
            return result("proved", route=f"{name}+houdini+induction", proof=alive, invariant=[lem.show() for lem in alive],
                          log=log, templates=kept, inferred_at=inferred_at if name == "pdr-generalized" else None)
        not_proved(name, alive, candidates, hlog, r)
        return None

    if templates is not None:
        check_against(templates, enc.layout)
        done = by_templates("lemma-file", templates)
        if done is not None:
            return done
    if file_lemmas:  # a saved proof by shipped and weakened lemmas: no weakening search needed
        names = {lem.name for lem in file_lemmas}
        candidates = list(file_lemmas) + [x for x in property_lemmas(protocol) if x.name not in names]
        tried_now = houdini_induction("lemma-file", candidates)
        if tried_now is not None:
            alive, hlog, r = tried_now
            log.append(f"lemma-file: Houdini kept {len(alive)} of {len(candidates)} lemmas")
            if r.status == "proved":
                return result("proved", route="lemma-file+houdini+induction", proof=alive,
                              invariant=[lem.show(enc.bounds) for lem in alive], log=log,
                              proof_lemmas=[x for x in alive if x.name in names])  # the properties are added again
            not_proved("lemma-file", alive, candidates, hlog, r)
    order: list[tuple[str, Any]] = [("lemma-file", families)] if families is not None else []
    hand = [("shipped-lemmas", None), ("weakened", None)] if shipped and not misfit else []
    if misfit:
        why("shipped-lemmas+houdini+induction", f"not tried: {misfit}")  # they name what this protocol lacks
    # learned and proved for every N, V, F (its cost does not grow with N, V, F) and the bounded
    # learned route at the requested bounds: the cheaper first (the bounded one at the smallest
    # instance, where it learns in seconds), the other as the fallback; the bmc at the smallest
    # instance goes on between them where it has not finished (bmc-slice: a bug there is refuted
    # at its shortest length, and the learning routes are not starved by one long bmc first)
    both = [("inferred+parametric", None), ("inferred", None)]
    # (at more than one address space the bounded route has not proved any example in 120 s, the
    # parametric one has: ipi_unlock_after_flush at 2,1,1,1,S=2, PROVE.md; so it goes first there)
    bounded_first = smallest(protocol, bounds) and ("spaces" not in bounds or bounds["spaces"] == 1)
    # the enumerated families first (checks/symbolic/clauses.py: seconds at the bounds the learning routes
    # reached, where those took minutes or ended unknown; benchmarks/PROVE.md, 4 Dec, night)
    # (after the learned ones with --infer-first, which asks for those first)
    learned_routes = (both[::-1] if bounded_first else both)
    learned_routes = learned_routes + [("enumerated", None)] if infer_first else [("enumerated", None)] + learned_routes
    learning = (learned_routes + [("ic3po", None)]) if learn else []
    found_by_learning = [x for pair in zip(learning, [("bmc-slice", None)] * len(learning)) for x in pair] + [
        ("pdr-generalized", None)]
    # the shipped lemmas over uninterpreted sorts (one proof for every N, V, F): slower, after the bmc
    parametric = [("parametric", None)] if hand else []
    # the bmc at the smallest instance (it finds a bug in seconds where the bmc at large bounds takes
    # a minute), then a quick look at the requested bounds; the rest of that after the learning routes
    # (first the explicit search where it is cheap: the exact refuter, and what it exhausts needs no bmc)
    # (the ladder before the search at the smallest instance and the requested bounds: at 6,3,3,3,S=3 that search
    # took its whole box, and the ladder had 3 s left for overflow-drop, unknown; PROVE.md, 7 Dec, evening)
    looks = [("explicit-small", None), ("explicit-ladder", None), ("explicit", None), ("bmc-small", None)] + (
        [] if small_at == bounds else [("bmc-quick", None)])
    if infer_first:  # a quick bmc first (a bug is settled in seconds), then the learning routes
        order += [("explicit-small", None), ("explicit-ladder", None), ("explicit", None), ("bmc-small", None)] + \
            found_by_learning + hand + [
            ("bmc", None)] + parametric
    else:
        # what can prove cheaply first (a lemma file, the shipped lemmas: a bug is never proved by
        # them); where they fail a bug is likely: the bmc, before the parametric and learning
        # routes, which would otherwise take all the time left. Without the shipped lemmas, the
        # enumerated families are that cheap route, tried once the explicit search has found the
        # smallest instance safe (a bug almost always shows there, and is then refuted as before)
        early = [] if hand or not learn else [("explicit-small", None), ("explicit-ladder", None),
                                              ("enumerated-early", None)]
        order += early + hand + looks + parametric + found_by_learning
    weak_at_bounds = False  # the shipped lemmas' bounded Houdini fixpoint decided too weak
    shipped_houdini: list[str] | None = None  # the shipped lemmas' Houdini log (what it dropped)

    # the routes of ``order``, each a function of (name, families) giving a result or None (its
    # reason is recorded by ``why``); a name not in the table is a lemma route (Houdini + induction)
    def weakened_step(name: str, what: Any) -> ProveResult | None:
        if shipped_houdini is None or not weak_at_bounds:
            return None  # not tried, or not because the lemmas left were too weak
        return weakened_route(shipped_houdini)

    def small_bmc_slice(name: str, what: Any) -> ProveResult | None:
        """A slice of the bmc at the smallest instance: at least the quick look, else a quarter of
        what is left first; between the learning routes what is left of its reserve (reserve())."""
        if small_safe() or settled(small_at) or (name == "bmc-slice" and timeout is None):
            return None  # the explicit search exhausted it (no violation at any depth), or done
        first = name == "bmc-small"
        budget = None if timeout is None else min(left() or 0.0, max(
            quick_s, SMALL_BMC_SHARE * (left() or 0.0) if first else reserve()))
        # whole=False: a slice stops before a depth it would not finish (a cut query's work is lost)
        return small_look(quick_s if infer_first and first else budget, whole=False)

    def bmc_at_bounds(name: str, what: Any) -> ProveResult | None:
        """A quick look at the requested bounds, or (--infer-first) half the time left; never past the limit
        (the quick look's 6 s once started with 4 s left: 62.8 and 63.9 s for --timeout 60, PROVE.md, 6 Dec)."""
        if holds_at(bounds) or settled(bounds) or small_bug():
            return None
        budget = None if timeout is None else min(left() or 0.0, quick_s if name == "bmc-quick" else max(
            quick_s, FINISH_BMC_SHARE * (left() or 0.0)))
        return bounded_look(quick_s if budget is None and name == "bmc-quick" else budget)

    def parametric_step(name: str, what: Any) -> ProveResult | None:
        if weak_at_bounds and families is None:  # Houdini's fixpoint over uninterpreted sorts holds at these bounds too, so
            # it is within the bounded fixpoint, which does not imply the property: nothing to gain
            why("shipped-lemmas+parametric-houdini", "not tried (the shipped lemmas Houdini keeps at these "
                "bounds are too weak; those kept for every N, V, F are among them)")
            return None
        return parametric_route()

    def ic3po_step(name: str, what: Any) -> ProveResult | None:
        budget = None if timeout is None else learning_budget(IC3PO_SHARE)
        if budget is not None and budget < LEARN_PARAMETRIC_MIN_S:
            why("ic3po", f"not tried ({budget:.1f} s left for it, under {LEARN_PARAMETRIC_MIN_S:.0f} s)")
            return None
        began = time.monotonic()
        done = ic3po_route(protocol, bounds, enc, budget, say, result, log, stages)
        if done is not None and done.status == "proved":
            return done
        why("ic3po", f"unknown after {time.monotonic() - began:.1f} s ({done.reason or 'no reason given'})"
            if done is not None else log[-1].removeprefix("ic3po: "), logged=True)
        return None

    def lemma_route(name: str, what: Any) -> ProveResult | None:
        """Houdini + induction over the shipped lemmas or (``what``) learned families, which were
        proved together with the properties: those are offered too."""
        nonlocal shipped_houdini, weak_at_bounds
        candidates = list(lemmas) if what is None else [f.lemma() for f in what] + property_lemmas(protocol)
        tried_now = houdini_induction(name, candidates)
        if tried_now is None:
            return None
        alive, hlog, r = tried_now
        if name == "shipped-lemmas":
            shipped_houdini = hlog
        log.extend(hlog if name == "shipped-lemmas" else [f"{name}: Houdini kept {len(alive)} of {len(candidates)} families"])
        if r.status == "proved":
            kept = None if what is None else [f for f in what if f.show() in {a.name for a in alive}]
            return result("proved", route=f"{name}+houdini+induction", proof=alive, invariant=[lem.show(enc.bounds) for lem in alive],
                          log=log, families=kept, proof_lemmas=alive if what is None else None)
        not_proved(name, alive, candidates, hlog, r)
        weak_at_bounds = weak_at_bounds or (name == "shipped-lemmas" and r.status == "too-weak")
        return None

    routes: dict[str, Callable[[str, Any], ProveResult | None]] = {
        "weakened": weakened_step,
        "explicit": lambda name, what: explicit_route(),
        "bmc-small": small_bmc_slice, "bmc-slice": small_bmc_slice,
        "bmc-quick": bmc_at_bounds, "bmc": bmc_at_bounds,
        "parametric": parametric_step,
        "inferred+parametric": lambda name, what: learned_parametric(),
        "ic3po": ic3po_step,
        "inferred": lambda name, what: learned(),
        "enumerated": lambda name, what: enumerated(),
        "explicit-small": lambda name, what: explicit_route(small_only=True),
        "explicit-ladder": lambda name, what: ladder_route(),
        "enumerated-early": lambda name, what: enumerated() if first_safe() else None,
        "pdr-generalized": lambda name, what: by_templates(name, inferred()),
    }
    def over() -> bool:
        """The limit has passed: no route starts (each got at least half a second from ``left()``,
        and the command's hard limit, a few seconds later, would end it with no reasons at all)."""
        return timeout is not None and time.monotonic() - start >= timeout

    for name, what in order:
        if over():
            why("auto", f"the time limit of {timeout:.3g} s passed before {name} and the routes after it", logged=False)
            break
        done = routes.get(name, lemma_route)(name, what)
        if done is not None:
            return done
    if holds_at(bounds):  # no lemma route proved it: the explicit search's bounded proof, said as such
        ex = explored[bounds]
        log.append(f"explicit at {bounds.short()}: {ex.verdict()}")
        return result("proved", route="explicit-search", log=log, reason=ex.verdict(),
                      routes_tried=[{"route": route, "reason": clause} for route, clause in tried.items()],
                      exhaustive={"bounds": bounds.as_dict(), "states": ex.states, "levels": ex.depth,
                                  "verdict": ex.verdict()})
    if not over() and not settled(small_at) and small_at != bounds and timeout is not None \
            and not small_safe():
        done = small_look(FINISH_BMC_SHARE * (left() or 0.0))  # the smallest instance first: a bug shows there
        if done is not None:
            return done
    if not over() and not settled(bounds):  # the bmc at the requested bounds stopped early: finish it
        done = bounded_look(left())
        if done is not None:
            return done
    if not over():
        say("auto: Spacer (pdr)")
        r2 = pdr(enc, timeout=left())
        if r2.status == "proved":
            return result("proved", route="pdr", invariant=r2.clauses, smt2=r2.smt2, log=log,
                          proof=failures.formula_terms(r2.invariant, enc.state("x")))
        if r2.status == "violated" and r2.trace is not None and r2.trace.path is not None:
            return result("violated", route="pdr+bmc", depth=r2.trace.depth, path=r2.trace.path, prop=r2.trace.prop,
                          log=log)
        why(f"pdr at {bounds.short()}", f"Spacer: {r2.reason or 'no answer'} after {r2.elapsed_s:.1f} s")
    else:
        why(f"pdr at {bounds.short()}", f"not tried (the time limit of {timeout:.3g} s passed)")
    reason = "no route settled it: " + "; ".join(f"{route}: {clause}" for route, clause in tried.items())
    return result("unknown", route="auto", reason=reason, log=log,
                  routes_tried=[{"route": route, "reason": clause} for route, clause in tried.items()])
