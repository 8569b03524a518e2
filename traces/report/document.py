"""Results as JSON documents: the objects ``check``, ``prove`` and ``regress`` print with ``--json``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from deferral.checks.results import SearchResult
from deferral.traces.format import Trace

if TYPE_CHECKING:  # the prover (Z3) is imported only by those who prove
    from deferral.checks.symbolic.parametric import ParametricResult
    from deferral.checks.symbolic.prove import ProveResult


def check_json(result: SearchResult) -> dict[str, Any]:
    """``check --json``: figures, each property's verdict, engine, stats and coverage."""
    return {
        "variant": result.variant,
        "bounds": result.bounds.as_dict(),
        "symmetry": result.symmetry,
        "symmetry_basis": result.symmetry_basis,
        "states": result.states,
        "transitions": result.transitions,
        "depth": result.depth,
        "elapsed_s": round(result.elapsed_s, 4),
        "complete": result.complete,
        "stopped_by": result.stopped_by,
        "properties": [
            {"name": o.name, "kind": o.kind, "status": o.status, "length": o.length, "trace": o.trace_file}
            for o in result.outcomes
        ],
        "engine": result.engine,
        "workers": result.workers,
        "stats": plain(result.stats),
        "coverage": result.coverage.to_json() if result.coverage is not None else None,
    }


def prove_json(res: "ProveResult", trace: Trace | None) -> dict[str, Any]:
    """``prove --json``: the verdict, the route that settled it, the invariant or the
    counterexample (``trace``, the result's path as a trace), and auto's log."""
    return {
        "variant": res.variant,
        "bounds": res.bounds.as_dict(),
        "method": res.method,
        "status": res.status,
        # the invariant properties the verdict is about (liveness is check's)
        "properties": [p.name for p in res.model.invariants] if res.model is not None else None,
        "elapsed_s": round(res.elapsed_s, 3),
        "depth": res.depth,
        # a violation: whether its trace is known to be a shortest one at these bounds (``reason`` says why not)
        "shortest": res.shortest if res.status == "violated" else None,
        "invariant": res.invariant,
        "trace": trace.to_json() if trace is not None else None,
        "route": res.route,
        "lemmas_learned_at": _learned_at(res),
        "lemma_source": _lemma_source(res),
        "proved_for_every": res.for_every,  # a parametric route: for every N, V, F at concrete Q, S
        # auto's explicit route: what the breadth-first search showed ("holds at exactly ..." for route explicit-search)
        "exhaustive": res.exhaustive,
        "property": res.prop,
        "reason": res.reason or None,
        "routes_tried": res.routes_tried or None,  # auto's unknown: [{"route", "reason"}], one clause per route
        "counterexample_to_induction": res.cti,
        "stages": res.stages,  # auto: each route tried (lemma routes, bmc): bounds, method, families in and kept, seconds
        "log": res.log,  # auto: what each route tried and why it did not settle it
    }


def _learned_at(res: "ProveResult") -> list[dict[str, Any]] | None:
    """Where the proof's lemmas were learned: the reachable states sampled (learned route), Spacer's
    bounds (pdr-generalized), what a lemmas file records; None where nothing was learned."""
    if res.learned_at:
        return [b.as_dict() for b in res.learned_at]
    return [res.inferred_at.as_dict()] if res.inferred_at else None


#: route prefix -> where its lemmas come from
LEMMA_SOURCES = {"shipped-lemmas": "hand-written (model/invariant.py)",
                 "inferred": "learned from reachable states and counterexamples to induction",
                 "pdr-generalized": "Spacer's clauses at small bounds, generalized",
                 "lemma-file": "a lemmas file (--lemmas)", "induction": "hand-written (model/invariant.py)",
                 "pdr": "Spacer at the requested bounds"}


def _lemma_source(res: "ProveResult") -> str | None:
    """Where the invariant's lemmas come from (None without an invariant)."""
    if res.status != "proved":
        return None
    if "+weakened+strengthened" in res.route:
        return ("hand-written (model/invariant.py), the lemmas Houdini dropped weakened from reachable states, "
                "and new families true in them")
    if "+weakened" in res.route:
        return "hand-written (model/invariant.py), the lemmas Houdini dropped weakened from reachable states"
    return LEMMA_SOURCES.get(res.route.split("+")[0])


def parametric_json(res: "ParametricResult", trace: Trace | None = None) -> dict[str, Any]:
    """``prove --parametric --json``: the verdict, what was assumed concrete, lemmas, obligations;
    when a small instance refutes it, where and its shortest counterexample (``trace``)."""
    r = res.refutation
    refuted = {} if r is None else {"refuted_at": r.bounds.as_dict(), "property": r.outcome.name, "depth": r.length,
                                    "trace": trace.to_json() if trace is not None else None}
    return {"variant": res.variant, "method": "parametric", "status": res.status, "verdict": res.verdict, **refuted,
            "elapsed_s": round(res.elapsed_s, 3), "for_every": res.open_bounds,
            "assumed_concrete": res.concrete, "lemma_source": res.lemma_source,
            "properties": [p.name for p in res.protocol.properties if p.kind == "invariant"],
            "reason": res.reason or None,
            "lemmas": [{"name": lem.name, "shown": lem.show(res.concrete),
                        "doc": (lem.fn.__doc__ or "").strip() or None} for lem in res.lemmas],
            "dropped_by_houdini": [{"name": n, "why": why} for n, why in res.dropped],
            "obligations": [o.to_json() for o in res.obligations]}


def regress_json(report: Any) -> dict[str, Any]:
    """``regress --json``: a regress report (checks/compare/regress.py) side by side."""
    return {
        "baseline": _describe(report.baseline),
        "candidate": _describe(report.candidate),
        "bounds": [b.as_dict() for b in report.bounds],
        "regressed": report.regressed,
        "exit_code": report.exit_code,
        "complete": report.stopped_by is None,
        "stopped_by": report.stopped_by,
        **({"not_checked": [b.as_dict() for b in report.not_checked], "not_done": report.not_done}
           if report.stopped_by else {}),
        **({"skipped": [{"bounds": b.as_dict(), "reason": why} for b, why in report.skipped]}
           if report.skipped else {}),
        "verdicts": [
            {"property": r.prop, "kind": r.kind, "bounds": r.bounds.as_dict(), "baseline": r.baseline,
             "candidate": r.candidate, "change": r.change, "candidate_length": r.candidate_length}
            for r in report.verdicts],
        "corpus": [
            {"trace": r.name, "bounds": r.bounds.as_dict(), "expected": r.expected,
             "baseline": _judgement_json(r.baseline), "candidate": _judgement_json(r.candidate),
             "change": r.change}
            for r in report.corpus],
        "behaviours": [_behaviour_json(r) for r in report.behaviours],
        **({"proofs": [_proof_json(r) for r in report.proofs]} if report.proofs else {}),
    }


def _proof_json(row: Any) -> dict[str, Any]:
    """``regress --prove``: one Q, S's proofs for every N, V, F, both sides."""
    def side(x: Any) -> dict[str, Any]:
        return {"status": x.status, "verdict": x.verdict, "elapsed_s": round(x.elapsed_s, 3),
                "lemma_source": x.route or None,
                "refuted_at": x.refuted_at.as_dict() if x.refuted_at is not None else None, "depth": x.depth}
    return {"assumed_concrete": row.concrete, "baseline": side(row.baseline), "candidate": side(row.candidate),
            "change": row.change, "lost": row.lost}


def _describe(p: Any) -> dict[str, Any]:
    return {"name": p.name, "source": p.source,
            "changes": [f"{c.kind} {c.what} {c.name}" for c in p.changes]}


def _judgement_json(j: Any) -> dict[str, Any]:
    return {"outcome": j.outcome, "properties": j.properties, "reason": j.reason, "steps": j.steps}


def _behaviour_json(row: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"bounds": row.bounds.as_dict(), "skipped": row.skipped or None}
    d = row.diff
    if d is not None:
        out.update({
            "variables": list(d.variables),
            "baseline_states": d.baseline_states, "candidate_states": d.candidate_states,
            # False: that side treats VCPUs differently and was enumerated without symmetry (states, not orbits)
            "baseline_symmetric": d.baseline_symmetric, "candidate_symmetric": d.candidate_symmetric,
            "baseline_behaviours": d.baseline_behaviours, "candidate_behaviours": d.candidate_behaviours,
            "added": d.added, "lost": d.lost,
            "added_example": None if d.added_example is None else {
                "steps": [a.label() for a, _ in d.added_example[1:] if a is not None],
                "behaviour": d.added_shown},
            "lost_example": None if d.lost_example is None else {
                "steps": [a.label() for a, _ in d.lost_example[1:] if a is not None],
                "behaviour": d.lost_shown},
        })
    return out


def plain(value: Any) -> Any:
    """``value`` with numpy scalars turned into Python numbers, for json.dumps."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value.item() if hasattr(value, "item") else value


def states_shown(d: Any) -> str:
    """A :class:`~deferral.checks.compare.behaviours.BehaviourDiff`'s ``base/cand`` state counts, a side
    enumerated without symmetry marked ``*`` (see :data:`UNREDUCED_NOTE`)."""
    return (f"{d.baseline_states:,}{'' if d.baseline_symmetric else '*'}/"
            f"{d.candidate_states:,}{'' if d.candidate_symmetric else '*'}")


#: The footnote of a count marked ``*`` by :func:`states_shown`.
UNREDUCED_NOTE = ("* its steps treat some VCPU differently, so it was enumerated without symmetry: "
                  "states, not orbits (its behaviours are still counted up to symmetry)")
