"""``prove --parametric``'s routes in order: a counterexample at the smallest instances, a saved lemma file, the weakened shipped lemmas, the shipped lemmas (with learned families), then families learned for every N, V, F, then a counterexample at larger small instances.

Each route ends in Houdini over uninterpreted sorts (:mod:`deferral.checks.symbolic.parametric`),
so whatever proves it is a proof for every number of VCPUs, pages and frames at the requested
queue capacity and spaces. The command line (``deferral.cli.prove``) reads the flags and the
lemma file, and prints; this module decides which routes run and with how much time. A
counterexample found by explicit search at any N, V, F (checks/symbolic/parametric_refute.py)
refutes the claim: the result is then violated, with that shortest path.
"""

from __future__ import annotations

import time
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Callable, Sequence

from deferral.model.bounds import Bounds
from deferral.model.invariant import Lemma, invariant_for
from deferral.model.protocol import Protocol

#: Without a time limit: the whole proof, and each solver query at most.
PARAMETRIC_TIMEOUT_S, PARAMETRIC_QUERY_S = 300.0, 60.0
#: Without a lemma file, where the shipped lemmas fail: learning families takes at most LEARN_S
#: (and what is left of the limit, if at least LEARN_MIN_S); the shipped lemmas' Houdini then
#: gets SHIPPED_SHARE of the limit (with a lemma file, 0.8: nothing follows it).
LEARN_S, LEARN_MIN_S, SHIPPED_SHARE = 120.0, 10.0, 0.5
#: The learning leaves this share of the limit (at least a second) for its own overrun: its last
#: query or Houdini pass ends after its budget (invlpg_sync_one at S=3, --timeout 60, load 11:
#: the hard limit at 66.9 s).
LEARN_MARGIN_SHARE = 0.1
#: The weakening of the shipped lemmas gets at most this share of the time it is given.
WEAKEN_SHARE = 0.7

#: ``hard_limit(seconds, grace)``: a context in which work past ``seconds`` (+ ``grace``) is cut
#: by an exception of ``limit_error`` (the command line's SIGALRM deadline).
HardLimit = Callable[[float, float], AbstractContextManager[None]]


def query_s(limit: float | None) -> float:
    """The time for one solver query: PARAMETRIC_QUERY_S, and with a limit at most a sixth of it
    (as auto's parametric route), so that one undecided query cannot use up the limit."""
    return PARAMETRIC_QUERY_S if limit is None else min(PARAMETRIC_QUERY_S, max(1.0, limit / 6))


def shrink_bounds(bounds: Bounds) -> Bounds | None:
    """Where learned or weakened lemmas are first kept by a bounded Houdini: 3 VCPUs, 2 pages,
    2 frames at the requested Q and S; None if the protocol has other bounds."""
    try:
        return bounds.replace(vcpus=3, pages=2, frames=2)
    except (KeyError, ValueError):
        return None


def too_weak_at(protocol: Protocol, bounds: Bounds) -> list[str]:
    """The shipped lemmas bounded Houdini drops at :func:`shrink_bounds` where what it keeps does
    not prove the property there; [] where it does (or cannot tell)."""
    from deferral.checks.symbolic import weaken
    from deferral.checks.terms.encoding import encode
    from deferral.checks.symbolic.induction import check_inductive, houdini

    at = shrink_bounds(bounds)
    if at is None:
        return []
    enc = encode(protocol, at)
    try:
        alive, hlog = houdini(enc, invariant_for(at), timeout=30)
        r = check_inductive(enc, alive, timeout=30, inductive=True)
    except TimeoutError:
        return []
    return weaken.dropped_names(hlog) if r.status == "too-weak" else []


def weakened(protocol: Protocol, bounds: Bounds, dropped: list[str], limit: float | None,
             left_s: float) -> tuple[Any, str]:
    """The ``dropped`` shipped lemmas weakened (checks/symbolic/weaken.py: "L or D", D from reachable
    states, kept by a bounded proof at 3 VCPUs, 2 pages, 2 frames), with the shipped lemmas that proof
    keeps, proved over uninterpreted sorts: (the result if proved, else None; why not)."""
    from deferral.checks.symbolic import parametric, weaken
    from deferral.checks.symbolic.strengthen import is_new

    budget = WEAKEN_SHARE * left_s
    began = time.monotonic()
    at = shrink_bounds(bounds) or bounds
    extra, why_not = weaken.bounded_proof(protocol, at, dropped, timeout=0.6 * budget)
    if not any(weaken.is_offered(x) for x in extra):
        return None, f"weakened lemmas: {why_not or 'none needed at ' + at.short()}"
    left = budget - (time.monotonic() - began)
    again = parametric.prove_candidates(protocol, dict(bounds), shipped=False, extra=extra,
                                        timeout=query_s(limit), houdini_s=max(1.0, left))
    if again.status != "proved":
        return None, f"weakened lemmas ({len(extra)}): {again.reason}"
    again.lemma_source = ("model/invariant.py, the lemmas Houdini dropped weakened from reachable states "
                          + ("and new families true in them (checks/symbolic/weaken.py, strengthen.py"
                             if any(is_new(x) for x in extra) else "(checks/symbolic/weaken.py")
                          + f", kept by a proof at {at.short()})" + (", then Houdini" if again.dropped else ""))
    return again, ""


def prove_for_every(protocol: Protocol, bounds: Bounds, *, limit: float | None, lemma_file: str | None = None,
                    learned: Sequence[Lemma] = (), file_lemmas: Sequence[Lemma] | None = None,
                    shipped: bool = True, hard_limit: HardLimit | None = None,
                    limit_error: type[BaseException] = TimeoutError,
                    note: Callable[[str], None] | None = None, learners: int | None = None) -> tuple[Any, str]:
    """Prove ``protocol``'s invariants for every N, V, F at ``bounds``' Q and S: (the parametric
    result, the reasons of the routes that did not prove it, "" when one did).

    ``limit``: the user's time limit (None: :data:`PARAMETRIC_TIMEOUT_S`); ``lemma_file``: the
    name of the file ``learned`` families or ``file_lemmas`` (shipped and weakened lemmas) came from
    (None: no file; then, where nothing else proves it, families are learned, under ``hard_limit``).
    ``note``: what the routes are doing, as they go (for a progress line); ``learners``: the learning's
    learners at once (checks/symbolic/clauses_process.py; None: one per CPU, at most two; 0: in this process)."""
    from deferral.checks.symbolic import parametric

    from deferral.checks.symbolic import parametric_refute as refute

    timeout = limit or PARAMETRIC_TIMEOUT_S
    began = time.monotonic()
    reasons: list[str] = []
    # a counterexample at a small instance refutes the claim: the smallest instances first, in
    # well under a second; after a proof that fails, larger ones in a share kept from the routes
    first = refute.search_small(protocol, bounds, min(refute.FIRST_S, 0.05 * timeout), refute.FIRST_STATES, note=note)
    if first.refutation is not None:
        return refuted(protocol, bounds, first.refutation, began), ""
    reserve = min(refute.LAST_S, 0.1 * timeout)
    timeout -= reserve
    # the shipped lemmas too weak at 3,2,2 (bounded Houdini, a second): their parametric
    # fixpoint is within that one, so the weakened ones go first (checks/symbolic/weaken.py)
    weak = [] if lemma_file is not None or not shipped else too_weak_at(protocol, bounds)
    res = None
    if file_lemmas is not None:  # the saved proof's lemmas: no weakening search
        from deferral.checks.symbolic import weaken_files

        props = {p.name for p in protocol.properties if p.kind == "invariant"}
        res = parametric.prove_candidates(protocol, dict(bounds), shipped=False,
                                          extra=[x for x in file_lemmas if x.name not in props],
                                          timeout=query_s(limit), houdini_s=0.8 * timeout,
                                          shrink_at=shrink_bounds(bounds), note=note)
        res.lemma_source = (f"--lemmas {lemma_file} (shipped and weakened lemmas, {weaken_files.FORMAT})"
                            + (", then Houdini" if res.dropped else ""))
    if weak:
        proved, why_not = weakened(protocol, bounds, weak, limit, 0.8 * timeout)
        res = proved or res
        reasons.append(why_not)
    if res is None:
        res = parametric.prove_candidates(protocol, dict(bounds), shipped=shipped, extra=list(learned),
                                          timeout=query_s(limit),
                                          houdini_s=min((0.8 if lemma_file is not None else SHIPPED_SHARE) * timeout,
                                                        max(1.0, 0.5 * (timeout - (time.monotonic() - began)))),
                                          shrink_at=shrink_bounds(bounds), note=note)
        sources = (["model/invariant.py"] if shipped else []) + ([f"--lemmas {lemma_file}"] if lemma_file else [])
        res.lemma_source = " and ".join(sources) + (", then Houdini" if res.dropped else "")
    res.elapsed_s = time.monotonic() - began
    if res.status != "proved" and lemma_file is None:  # learn families and prove them for every N, V, F
        # spawned learners start learning now, while this process searches (seconds, counted) the instances the
        # first search left unfinished, further: a counterexample there stops them
        with Asked(protocol, bounds, shipped, timeout, began, learners) as asked:
            second = refute.search_small(protocol, bounds, min(refute.SECOND_S, refute.SECOND_SHARE * timeout),
                                         refute.SECOND_STATES, start=first.next_index(), note=note,
                                         total_states=refute.SECOND_TOTAL)
            if second.refutation is not None:
                return refuted(protocol, bounds, second.refutation, began), ""
            first = first.then(second)
            res, why_not = _learned(protocol, bounds, res, shipped, timeout, began, hard_limit, limit_error, note,
                                    asked)
        reasons.append(why_not)
        res.elapsed_s = time.monotonic() - began  # the shipped lemmas' try and the learning
    if res.status != "proved":
        start = first.next_index()
        # what is kept for it, never past the limit (a route that overran its share leaves less)
        budget = min(reserve, timeout + reserve - (time.monotonic() - began) - 1.0)
        more = refute.search_small(protocol, bounds, budget, refute.LAST_STATES, start=start, note=note)
        if more.refutation is not None:
            return refuted(protocol, bounds, more.refutation, began), ""
        searched = [x for x in first.searched if x.index < start] + more.searched
        reasons.append(refute.SmallSearch(searched=searched).summary())
        res.elapsed_s = time.monotonic() - began  # the routes and both searches
    return res, "; ".join(x for x in reasons if x) if res.status != "proved" else ""


def refuted(protocol: Protocol, bounds: Bounds, refutation: Any, began: float) -> Any:
    """The parametric result of a claim refuted at a small instance (no lemmas, no obligations)."""
    from deferral.checks.symbolic import parametric

    concrete = parametric.concrete_bounds(protocol, dict(bounds))
    open_bounds = [d.name for d in protocol.bound_decls if d.name not in concrete]
    return parametric.ParametricResult(protocol, concrete, open_bounds, [], [], time.monotonic() - began,
                                       lemma_source="-", refutation=refutation)


class Asked:
    """The learning of families for every N, V, F, asked of spawned learners at once (a context: they are stopped
    at its end), with what is left of the limit; where none can be spawned (or the time is too short), nothing
    yet: :func:`_learned` learns in this process."""

    def __init__(self, protocol: Protocol, bounds: Bounds, shipped: bool, timeout: float, began: float,
                 learners: int | None) -> None:
        from deferral.checks.symbolic import clauses_process

        self.t0 = time.monotonic()
        # a learner past its deadline is stopped (LATE_S later): no margin for an overrun as in this process
        self.learn_s = learn_budget(timeout, began, LEARNERS_MARGIN_S)
        self.deadline = self.t0 + self.learn_s
        self.team = clauses_process.Team(protocol, learners if self.learn_s >= LEARN_MIN_S else 0)
        if self.team.members:
            self.team.ask("for_every", {"bounds": bounds, "shipped": shipped, "deadline": self.deadline})

    def __enter__(self) -> "Asked":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.team.close()


def learn_budget(timeout: float, began: float, margin_s: float | None = None) -> float:
    """The learning's seconds: what is left of the limit, less ``margin_s`` (default: the margin for the
    overrun of a learning in this process, :data:`LEARN_MARGIN_SHARE`), at most :data:`LEARN_S`."""
    margin = max(1.0, LEARN_MARGIN_SHARE * timeout) if margin_s is None else margin_s
    return min(LEARN_S, timeout - (time.monotonic() - began) - margin)


def _learned(protocol: Protocol, bounds: Bounds, res: Any, shipped: bool, timeout: float, began: float,
             hard_limit: HardLimit | None, limit_error: type[BaseException],
             note: Callable[[str], None] | None, asked: Asked) -> tuple[Any, str]:
    """Families learned and proved for every N, V, F (checks/symbolic/parametric_learning.py) in what is left
    of the limit: the answers of the spawned learners ``asked`` (the proof's lemmas rebuilt here), else
    learned here: (their proof, or ``res``; why not, with where the learning's time went)."""
    from deferral.checks.symbolic import clauses_process
    from deferral.checks.symbolic.parametric_learning import Learning, describe, learn

    got: Learning | None = None
    cut, where = "", []
    team = asked.team
    if team.members:
        try:
            got, where = team.collect(until=asked.deadline + clauses_process.LATE_S,
                                      decode=lambda one, body: Learning.from_data(body, protocol),
                                      won=lambda x: x.status == "proved", note=note, describe=describe,
                                      label="parametric learning")
        except clauses_process.LearnerGone as exc:
            cut = f"the learners gave no answer ({exc})"
    else:
        left_s = timeout - (time.monotonic() - began)
        learn_s = learn_budget(timeout, began)
        if learn_s < LEARN_MIN_S:  # learning in less would overrun the limit and prove nothing
            return res, (f"then learned families (checks/symbolic/paramlearn.py): not tried ({max(0.0, left_s):.0f} "
                         f"s of the {timeout:.0f} s limit left)")
        t0 = time.monotonic()
        guard = hard_limit(learn_s, 0.5 * (left_s - learn_s)) if hard_limit is not None else nullcontext()
        try:  # its own hard limit, before the command's: an overrun keeps the reasons
            with guard:
                got = learn(protocol, bounds=bounds, shipped=shipped, deadline=t0 + learn_s, note=note)
        except limit_error:
            cut = (f"stopped after {time.monotonic() - t0:.1f} s, past its {learn_s:.0f} s budget (a query or "
                   "Houdini pass that did not end in time)")
    proof, again = None, ""
    if got is not None and got.status == "proved":
        try:
            proof = got.proof_here(protocol, bounds)
        except ValueError as exc:  # a lemma that does not fit or prints otherwise here: the proof is not taken
            again = f"a learner's proof whose lemmas cannot be rebuilt here ({exc})"
        if proof is not None and proof.status != "proved":
            again, proof = f"a learner's proof that is not one here: {proof.reason}", None
    if proof is not None and got is not None:
        proof.lemma_source = ("learned: checks/symbolic/paramlearn.py (samples at "
                              + ", ".join(b.short() for b in got.samples_at) + ")"
                              + ("" if got.enumerated_why else ", with families enumerated over the declared sorts "
                                 "(checks/symbolic/clauses.py)")
                              + ("" if got.proof is not None else f"; {_learner_of(where)}"))
        return proof, ""
    parts = "" if got is None else ", ".join(f"{k} {v:.1f}" for k, v in got.seconds_by_part.items())
    ran = f"; {_learner_of(where)}" if team.members else ""
    head = (f"enumerated families (checks/symbolic/clauses.py): {got.enumerated_why}; "
            if got is not None and got.enumerated_why else "")
    said = cut or again or (
        f"unknown after {got.elapsed_s:.1f} s ({got.reason or 'no reason given'}"  # type: ignore[union-attr]
        + (f"; seconds by part: {parts}" if parts else "") + ")")
    return res, head + "then learned families (checks/symbolic/paramlearn.py): " + said + ran


#: Seconds of the limit kept, where spawned learners learn, past their deadline: the time they are waited for
#: (clauses_process.LATE_S) and the proof's rebuilding here (10 % of a 60-s limit until 6 Dec, s23, as for a
#: learning in this process, whose last query may overrun).
LEARNERS_MARGIN_S = 2.0


def _learner_of(where: list[str]) -> str:
    """Where the learning ran, from the race's log lines (the first says which learner's outcome is shown)."""
    return where[0].removeprefix("parametric learning: ") if where else "no learner"
