"""``deferral prove``: Z3 proofs (induction, PDR) and bounded model checking.

Exit codes: 0 proved, 1 violated (with a counterexample trace), 2 bad input, 3 unknown
(no violation up to a bmc depth, an invariant that is not inductive, a time limit).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


from deferral.checks.symbolic import infer as inference
from deferral.checks.symbolic.generalize import GeneralizeError, load as load_lemmas, save as save_lemmas
from deferral.checks.symbolic.prove import METHODS, ProveResult, prove
from deferral.checks.terms.encoding import EncodingError
from deferral.cli.common import (UsageError, add_bounds, add_variant, bounds_from, check_outputs, console, positive,
                                 protocol_from, seconds, time_left)
from deferral.cli.limits import TimeLimitReached, deadline, grace_for
from deferral.cli.progress import route_notes
from deferral.model.concrete import Model
from deferral.model.protocol import Protocol
from deferral.traces.files import write_atomic
from deferral.traces.report.document import parametric_json, prove_json
from deferral.traces.report.junit import parametric_junit, prove_junit
from deferral.traces.report.terminal import print_parametric, print_prove
from deferral.traces.itf import to_itf
from deferral.traces.html import counterexample_view, trace_page
from deferral.traces.replay import path_to_trace


def register(sub: Any) -> None:
    p = sub.add_parser("prove", help="prove the invariant with Z3 (induction, PDR) or bounded model checking",
                       description="Prove no_stale_translation (the invariant properties) with Z3. "
                                   "Exit 0: proved; 1: violated; 2: bad input; 3: unknown or a limit. "
                                   "Liveness (shootdowns_can_complete) is not covered: use check.")
    add_bounds(p)
    add_variant(p)
    p.add_argument("--method", choices=METHODS, default="auto",
                   help="auto (default: Houdini + induction over --lemmas FILE and the shipped lemmas; where "
                        "they fail, the explicit search, time-boxed (a violation: the shortest counterexample; "
                        "an instance it exhausts and no lemma route proves: proved at exactly these bounds, route "
                        "explicit-search), bmc to depth 12 at the smallest instance (2,1,1 at your Q and S; a bug found "
                        "there is searched again at your bounds for its shortest counterexample) and a quick look "
                        "at your bounds; then lemmas learned from reachable states (bounded, and for every N, V, "
                        "F), Spacer's lemmas generalized; then the rest of the bmc at your bounds, and pdr), "
                        "bmc (bounded, needs --depth), induction (the shipped invariant), pdr (Spacer), "
                        "ic3po (IC3 with symmetric orbit clauses at small instances, no hand-written lemmas; "
                        "proved for every N, V, F where the parametric proof succeeds)")
    p.add_argument("--depth", type=positive(int), default=20, metavar="K", help="bmc depth (default 20)")
    p.add_argument("--timeout", type=seconds(), metavar="S",
                   help="give up after S seconds (exit 3; also when a step of the variant never returns)")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--trace-out", metavar="FILE", help="write a counterexample as deferral-trace/1")
    p.add_argument("--itf", metavar="FILE", help="write a counterexample in Apalache's Informal Trace Format")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report (the counterexample "
                                                  "as a timeline, or the invariant)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML (one testcase: a violation is a failure "
                                                   "with its counterexample, unknown is skipped)")
    p.add_argument("--invariant-out", metavar="FILE",
                   help="write the proved invariant (JSON; learned or generalized lemma families, and shipped and "
                        "weakened lemmas (also with --parametric), are loadable by --lemmas)")
    p.add_argument("--lemmas", metavar="FILE",
                   help="auto: candidate lemma families from FILE (written by --invariant-out), tried first; "
                        "--parametric: learned lemma families from FILE beside the shipped lemmas, or a saved "
                        "proof's shipped and weakened lemmas instead of them")
    p.add_argument("--infer-first", action="store_true",
                   help="auto: learn lemma families from reachable states before trying the shipped lemmas")
    p.add_argument("--no-shipped-lemmas", action="store_true",
                   help="auto: leave the hand-written lemmas of model/invariant.py out (learned lemmas only)")
    p.add_argument("--learners", type=int, choices=range(0, 9), metavar="N",
                   help="auto and --parametric: the learned lemma families' learners at once, each a fresh process "
                        "with its own Z3 seed, the first proof taken (default: 2 where prove may use two CPUs, else 1; 0: in "
                        "prove's own process, whose course then depends on what ran before it)")
    p.add_argument("--parametric", action="store_true",
                   help="prove the invariants for ANY number of VCPUs, pages and frames: the protocol's (or the "
                        "variant's) own steps and the shipped lemmas over uninterpreted Z3 sorts; --queue and "
                        "--spaces stay concrete: exit 0 proved, 1 violated (a counterexample at a small instance, the "
                        "shortest there), 3 unknown (a lemma not inductive, or Z3 undecided)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.learners is not None and args.method != "auto":
        raise UsageError("--learners is used by --method auto and --parametric only")
    if args.parametric:
        return run_parametric(args)
    check_outputs(args, "trace_out", "invariant_out", "html", "itf", "junit")
    lemmas_text = None
    if args.infer_first and args.method != "auto":
        raise UsageError("--infer-first is used by --method auto only")
    if args.no_shipped_lemmas and args.method == "induction":
        raise UsageError("--method induction proves the shipped lemmas of model/invariant.py, which "
                         "--no-shipped-lemmas leaves out: use --method auto, ic3po or pdr")
    if args.lemmas:
        if args.method != "auto":
            raise UsageError("--lemmas is used by --method auto only")
        lemmas_text = read_lemmas(args.lemmas)
    with deadline(args.timeout, "prove", grace=grace_for(args.timeout or 0)):
        protocol = _with_invariants(protocol_from(args))
        bounds = bounds_from(args, protocol)
        templates, families, file_lemmas = (None, None, None) if lemmas_text is None else \
            parse_lemmas(args.lemmas, lemmas_text, protocol, bounds)
        res = _prove(args, protocol, bounds, templates, families, file_lemmas)
    if lemmas_text is not None and res.route.startswith("lemma-file") and not res.learned_at:
        res.learned_at = file_learned_at(lemmas_text, protocol)
    model = res.model
    assert model is not None
    trace = None
    if res.path is not None:
        expected = {"outcome": "violates", "property": res.prop} if res.prop else None
        trace = path_to_trace(model, res.path, res.prop, expected=expected,
                              note=f"counterexample found by deferral prove, route {res.route}")
    if trace is not None and args.trace_out:
        trace.save(args.trace_out)
    if trace is not None and args.itf:
        write_atomic(args.itf, json.dumps(to_itf(trace, protocol), indent=1) + "\n")
    if res.status == "proved" and args.invariant_out:
        write_atomic(args.invariant_out, json.dumps(invariant_json(res, protocol), indent=1) + "\n")
        if res.for_every is None:  # a bounded proof: what the file holds is known inductive here only
            print(f"deferral: {args.invariant_out}: inductive at {res.bounds.short()} (what this proof checked); "
                  f"--lemmas {args.invariant_out} offers it again at other bounds or with --parametric, where "
                  "Houdini keeps only what is inductive there", file=sys.stderr, flush=True)
    if args.html:
        write_atomic(args.html, prove_html(res, model))
    if args.junit:
        write_atomic(args.junit, prove_junit(res))
    if args.json:
        print(json.dumps(prove_json(res, trace)))
    else:
        print_prove(console(), res)
    return res.exit_code


#: The largest lemmas file read (they are a few kilobytes).
MAX_LEMMAS_BYTES = 16 * 2**20


def read_lemmas(path: str) -> str:
    """The text of a lemmas file (size-limited, UTF-8); any defect is a UsageError."""
    from deferral.traces.format import TraceError, read_limited

    try:
        return read_limited(path, MAX_LEMMAS_BYTES, "--lemmas")
    except TraceError as exc:
        raise UsageError(str(exc)) from None


def file_learned_at(text: str, protocol: Any) -> list[Any] | None:
    """The bounds a lemmas file says its families were learned at (``learned_at``, or Spacer's
    ``inferred_at``), if it says so readably."""
    from deferral.model.bounds import Bounds

    try:
        doc = json.loads(text)
        raw = doc.get("learned_at") or ([doc["inferred_at"]] if doc.get("inferred_at") else [])
        return [Bounds.from_dict(d, protocol.bound_decls) for d in raw] or None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None


def parse_lemmas(path: str, text: str, protocol: Any, bounds: Any) -> tuple[Any, Any, Any]:
    """(templates, families, lemmas) of a file written by --invariant-out (or by inference): Spacer's
    generalized templates, learned families, or shipped and weakened lemmas (one of the three, the others
    None); any defect is a one-line UsageError."""
    from deferral.checks.symbolic import weaken_files

    from deferral.traces.format import TraceError, parse_json

    try:
        doc = parse_json(text, f"--lemmas {path}")
    except TraceError as exc:
        raise UsageError(str(exc)) from None
    try:
        if isinstance(doc, dict) and doc.get("format") == inference.FORMAT:
            from deferral.checks.symbolic import ic3po

            if ic3po.is_ic3po_file(doc):  # orbit families over any signature (three VCPUs, ...)
                return None, ic3po.load(doc, protocol, bounds), None
            return None, inference.load(doc, protocol, bounds), None
        if weaken_files.is_weakened_file(doc):  # shipped and weakened lemmas (the weakened route)
            return None, None, weaken_files.load(doc, protocol, bounds)
        return load_lemmas(text), None, None
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError) as exc:
        # GeneralizeError and InferError are ValueErrors
        what = str(exc) if isinstance(exc, ValueError) else f"not a lemmas file ({type(exc).__name__}: {exc})"
        raise UsageError(f"--lemmas {path}: {what}{_other_bounds_hint(doc, protocol, bounds)}") from None


def _other_bounds_hint(doc: Any, protocol: Any, bounds: Any) -> str:
    """Where a lemmas file that does not load was written at other bounds than those asked for (a bound
    other than N, V, F changes the vocabulary: queue items name a space at S >= 2), a hint saying so."""
    from deferral.model.bounds import Bounds

    try:
        written = Bounds.from_dict(doc["bounds"], protocol.bound_decls)
    except (TypeError, KeyError, ValueError, AttributeError):
        return ""
    differ = [d.name for d in protocol.bound_decls if written[d.name] != bounds[d.name] and
              d.name not in ("vcpus", "pages", "frames")]
    if not differ:
        return ""
    return (f" (the file was written at {written.short() or 'the default bounds'}, not at {bounds.short()}: "
            f"its {', '.join(differ)} differ; learn one there with prove --invariant-out)")


def _prove(args: argparse.Namespace, protocol: Any, bounds: Any, templates: Any, families: Any,
           file_lemmas: Any = None) -> ProveResult:
    err = console(stderr=True)
    plain = args.json or not err.is_terminal  # no live status line: a plain one every 10 s instead
    label = f"prove {protocol.name} {bounds.short()}" + ("" if plain else f" ({args.method})")
    try:
        with route_notes(label, plain, err) as note:
            res = prove(protocol, bounds, args.method, depth=args.depth, timeout=time_left(args, args.timeout),
                        templates=templates, infer_first=args.infer_first, families=families,
                        shipped=not args.no_shipped_lemmas, file_lemmas=file_lemmas, note=note,
                        learners=args.learners)
    except EncodingError as exc:
        raise UsageError(str(exc)) from None
    except GeneralizeError as exc:
        raise UsageError(f"--lemmas {args.lemmas}: {exc}") from None
    return res


def prove_html(res: ProveResult, model: Model) -> str:
    """The proof's verdict as a page: the counterexample timeline, or the invariant."""
    summary = [f"{res.status}: {res.prop or 'no_stale_translation'}, {res.variant} at {res.bounds.short()}, "
               f"method {res.method}, route {res.route}, {res.elapsed_s:.2f} s"]
    if res.reason:
        summary.append(res.reason)
    if res.status == "proved" and res.invariant:
        summary.append(f"inductive invariant ({len(res.invariant)}):")
        summary += [f"  {line}" for line in res.invariant]
    views = []
    if res.path is not None and res.prop:
        views.append(counterexample_view("cex", model, res.path, res.prop,
                                         f"{res.prop} violated: {'shortest ' if res.shortest else ''}counterexample, "
                                         f"{res.depth} steps"))
    return trace_page(f"deferral prove: {res.variant} {res.bounds.short()}", summary, views)


def _with_invariants(protocol: Protocol) -> Protocol:
    """The protocol, if it has an invariant property to prove; else bad input (a proof of
    nothing would read "proved")."""
    why = protocol.without_invariants()
    if why is not None:
        raise UsageError(why)
    return protocol


def run_parametric(args: argparse.Namespace) -> int:
    """``--parametric``: the protocol's own functions over uninterpreted sorts; the routes are
    checks/symbolic/parametric_routes.py's, this reads the flags and the lemma file and prints."""
    from deferral.checks.symbolic import parametric, parametric_routes, weaken_files

    for flag in ("method", "infer_first", "html"):
        default = "auto" if flag == "method" else False if flag == "infer_first" else None
        if getattr(args, flag) != default:
            raise UsageError(f"--parametric does not take --{flag.replace('_', '-')}")
    check_outputs(args, "junit", "invariant_out", "trace_out", "itf")
    text = read_lemmas(args.lemmas) if args.lemmas else None
    timeout = args.timeout or parametric_routes.PARAMETRIC_TIMEOUT_S
    with deadline(timeout, "prove --parametric", grace=grace_for(timeout)):
        protocol = _with_invariants(protocol_from(args))
        bounds = bounds_from(args, protocol)
        learned: list[Any] = []
        file_lemmas = None  # shipped and weakened lemmas (a deferral-weakened/1 file)
        if text is not None:  # learned lemma families (checks/symbolic/infer.py), candidates too
            _, families, file_lemmas = parse_lemmas(args.lemmas, text, protocol, bounds)
            if families is None and file_lemmas is None:
                raise UsageError(f"--lemmas {args.lemmas}: --parametric reads learned lemma families "
                                 f"({inference.FORMAT}, written by --invariant-out after a learned route) or "
                                 f"shipped and weakened lemmas ({weaken_files.FORMAT}, written by --invariant-out "
                                 "after a proof by them)")
            if families is not None:
                learned = parametric.learned_lemmas(families, protocol)[:len(families)]
        err = console(stderr=True)
        label = f"prove --parametric {protocol.name} {bounds.short()}"
        plain = args.json or not err.is_terminal  # no live status line: a plain one every 10 s instead
        try:
            with route_notes(label, plain, err) as note:
                res, also = parametric_routes.prove_for_every(
                    protocol, bounds, limit=args.timeout, lemma_file=args.lemmas if text is not None else None,
                    learned=learned, file_lemmas=file_lemmas, shipped=not args.no_shipped_lemmas,
                    hard_limit=lambda seconds, grace: deadline(seconds, "learning", grace=grace),
                    limit_error=TimeLimitReached, note=note, learners=args.learners)
        except EncodingError as exc:
            raise UsageError(str(exc)) from None
    no_failing_step(res)
    trace = None
    if res.refutation is not None:  # a small instance's shortest counterexample
        r = res.refutation
        trace = path_to_trace(r.model, r.outcome.path, r.outcome.name,
                              expected={"outcome": "violates", "property": r.outcome.name},
                              note=f"counterexample at {r.bounds.short()} found by deferral prove --parametric")
        if args.trace_out:
            trace.save(args.trace_out)
        if args.itf:
            write_atomic(args.itf, json.dumps(to_itf(trace, protocol), indent=1) + "\n")
    if args.junit:
        write_atomic(args.junit, parametric_junit(res))
    if args.invariant_out and res.status == "proved":
        write_atomic(args.invariant_out, json.dumps(parametric_invariant_json(res, bounds), indent=1) + "\n")
    doc = parametric_json(res, trace)
    if also:
        doc["reason"], doc["verdict"] = f"{doc['reason']}; {also}", f"{doc['verdict']}; {also}"
    if args.json:
        print(json.dumps(doc))
    else:
        print_parametric(console(), res)
        if also:
            console().print(also, markup=False, highlight=False)
    return res.exit_code


def no_failing_step(res: Any) -> None:
    """Where Z3 did not decide the parametric obligation that the lemmas rule out every failing step
    (a read naming no element) for every N, V, F, and every other obligation is proved: check it at
    the bounded stages' bounds instead (checks/symbolic/failures.py), named so. A proof whose
    obligation is proved needs nothing more; a counterexample to it (the lemmas admit a failing state)
    stays unknown: a bounded check would say nothing of larger N, V, F."""
    import time

    from deferral.checks.symbolic import failures, parametric
    from deferral.checks.symbolic.paramlearn import plan_bounds

    if res.refutation is not None:
        return
    at_n = [n for n, o in enumerate(res.obligations) if o.name == parametric.NO_FAILING_STEP]
    if len(at_n) != 1 or res.obligations[at_n[0]].status != "unknown" or any(
            o.status != "proved" for n, o in enumerate(res.obligations) if n != at_n[0]):
        return
    undecided = res.obligations[at_n[0]]
    began = time.monotonic()
    at = plan_bounds(res.protocol, res.concrete)
    status, reason = failures.bounded_check(res.protocol, at, res.lemmas, timeout=60.0)
    where = " and ".join(b.short() for b in at)
    res.obligations[at_n[0]] = parametric.Obligation(
        f"no step or property fails (a read naming no element), at {where} only (for every N, V, F "
        f"Z3 did not decide it: {undecided.reason[:300]})", status,
        undecided.elapsed_s + time.monotonic() - began, reason)


def parametric_invariant_json(res: Any, bounds: Any) -> dict[str, Any]:
    """``--parametric --invariant-out``: the proved lemmas; where each is shipped, weakened or an invariant
    property, as a ``deferral-weakened/1`` file (loadable by --lemmas, bounded or --parametric)."""
    from deferral.checks.symbolic import weaken_files

    doc: dict[str, Any] = {"variant": res.variant, "bounds": bounds.as_dict(), "route": "parametric",
                           "for_every": res.open_bounds, "assumed_concrete": res.concrete,
                           "lemma_source": res.lemma_source,
                           "invariant": [lem.show(res.concrete) for lem in res.lemmas]}
    if weaken_files.savable(res.lemmas, res.protocol, bounds):
        doc.update(weaken_files.save(res.lemmas))
    return doc


def invariant_json(res: ProveResult, protocol: Any) -> dict[str, Any]:
    from deferral.checks.symbolic import weaken_files

    doc = {"variant": res.variant, "bounds": res.bounds.as_dict(), "route": res.route,
           "invariant": res.invariant, "smt2": res.smt2 or None}
    if res.families is not None:  # learned (or loaded) lemma families: loadable by --lemmas
        doc.update(inference.save(res.families, protocol, res.learned_at or [], res.inductive or ()))
        doc["variant"], doc["route"], doc["bounds"] = res.variant, res.route, res.bounds.as_dict()
    elif res.templates is not None:  # generalized lemma families: loadable by --lemmas
        doc.update(save_lemmas(res.templates, protocol, res.inferred_at))
        doc["variant"] = res.variant
    elif res.proof_lemmas and weaken_files.savable(res.proof_lemmas, protocol, res.bounds):
        doc.update(weaken_files.save(res.proof_lemmas, res.learned_at or []))  # loadable by --lemmas
    return doc
