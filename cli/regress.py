"""``deferral regress``: what a protocol change breaks, side by side with its baseline.

Checks baseline and candidate at each set of bounds, replays the trace corpus against
both, and compares their reachable behaviours (states seen through the protocol
variables both have); with --prove, also proves both for every number of VCPUs, pages
and frames at each queue capacity and number of spaces of the bounds (prove --parametric).
Exit codes: 0 the candidate keeps every property the baseline has; 1 it loses one (a
verdict, a corpus trace that now violates a property, or a proof the baseline has refuted
for the candidate); 2 bad input (an unknown variant, a broken variant file, bad bounds); 3
--time-limit reached, or (--prove) a proof the baseline has that the candidate does not
reach, nothing else lost.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from deferral.traces.html import regress_page
from deferral.checks.compare.regress import DEFAULT_BOUNDS, RegressReport, regress
from deferral.cli.common import UsageError, check_outputs, console, load_variant, naming_source, seconds
from deferral.cli.errors import classify
from deferral.cli.limits import TimeLimitReached, deadline, grace_for
from deferral.model.bounds import Bounds, BoundsError
from deferral.model.protocol import Protocol
from deferral.traces.corpus import load_corpus
from deferral.traces.files import write_atomic
from deferral.traces.format import TraceError
from deferral.traces.report.document import regress_json
from deferral.traces.report.junit import regress_junit
from deferral.traces.report.terminal import print_regress

#: Default --time-limit: the default bound matrix takes a few seconds.
DEFAULT_LIMIT_S = 600.0
#: Default --prove-timeout: each side's proof at each Q, S (a safe change's: seconds; an unknown's: all of it).
DEFAULT_PROVE_S = 60.0


def register(sub: Any) -> None:
    p = sub.add_parser("regress", help="compare a candidate protocol with a baseline (for CI)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--baseline", default="reference", metavar="VARIANT|FILE",
                   help="published variant name or variant file (default reference)")
    p.add_argument("--candidate", required=True, metavar="VARIANT|FILE",
                   help="published variant name or variant file")
    p.add_argument("--bounds", nargs="+", action="extend", metavar="N,V,F,Q",
                   help="bound sets to check: values in the order the candidate declares its bounds "
                        "(N,V,F,Q, then any others, e.g. S), or NAME=VALUE pairs (N=2,S=2; others at "
                        "their default) (default: " + " ".join(
                       ",".join(map(str, b.as_dict().values())) for b in DEFAULT_BOUNDS) + ")")
    p.add_argument("--corpus", metavar="DIR", help="trace corpus folder (default: the shipped corpus)")
    p.add_argument("--no-corpus", action="store_true", help="do not replay the corpus")
    p.add_argument("--no-behaviours", action="store_true", help="do not compare reachable behaviours")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML report: the tables side "
                                                  "by side, every counterexample and corpus trace linked")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML (one testcase per property and "
                                                   "bounds, and per corpus trace)")
    p.add_argument("--prove", action="store_true",
                   help="also prove both sides for every N, V, F (prove --parametric) at each Q, S of the bounds: "
                        "a proof the candidate loses to a counterexample is a regression")
    p.add_argument("--prove-timeout", type=seconds(), default=DEFAULT_PROVE_S, metavar="S",
                   help=f"--prove: at most S seconds for each side's proof at each Q, S (default {DEFAULT_PROVE_S:g})")
    p.add_argument("--time-limit", type=seconds(), default=DEFAULT_LIMIT_S, metavar="S",
                   help=f"give up after S seconds, exit 3 (default {DEFAULT_LIMIT_S:g})")
    p.set_defaults(func=run)


def resolve(spec: str) -> Protocol:
    """A published variant name, or the path of a variant file."""
    return load_variant(spec, is_file=spec.endswith(".py") or Path(spec).is_file() or "/" in spec)


def parse_bounds(texts: list[str] | None, protocol: Protocol | None = None) -> list[Bounds]:
    """The ``--bounds`` sets, read with ``protocol``'s bound declarations (default: the reference's)."""
    if not texts:
        return list(DEFAULT_BOUNDS)
    decls = protocol.bound_decls if protocol is not None else DEFAULT_BOUNDS[0].decls
    out = []
    for text in texts:
        try:
            b = Bounds.parse(text, decls)
        except BoundsError as exc:
            raise UsageError(f"--bounds {text}: {exc}") from None
        if b not in out:
            out.append(b)
    return out


def run(args: argparse.Namespace) -> int:
    check_outputs(args, "junit", "html")
    reached: list[Any] = []  # the report and corpus as far as the work got
    try:
        with deadline(args.time_limit, "regress", grace=grace_for(args.time_limit)):
            report, corpus = _run(args, reached)
    except TimeLimitReached as exc:
        if not reached or not reached[0].verdicts:  # no bounds checked: nothing to report but the limit
            raise
        report, corpus = reached
        report.stopped_by = "time-limit"
        left = [f"at {b.short()}" for b in report.not_checked]
        if len(report.corpus) < len(corpus):
            left.append(f"{len(corpus) - len(report.corpus)} of {len(corpus)} corpus traces")
        if args.prove and not report.proofs:
            left.append("the proofs (--prove)")
        report.not_done = left
        print(f"deferral: {classify(exc).message}; not checked: {', '.join(left)}", file=sys.stderr)
    return _output(args, report, corpus)


def _run(args: argparse.Namespace, reached: list[Any]) -> tuple[Any, list[Any]]:
    baseline = resolve(args.baseline)
    candidate = resolve(args.candidate)
    bounds = parse_bounds(args.bounds, candidate)
    corpus = []
    if not args.no_corpus:
        try:
            corpus = load_corpus(args.corpus)
        except TraceError as exc:
            raise UsageError(str(exc)) from None
        if args.corpus and not corpus:
            raise UsageError(f"--corpus {args.corpus}: no *.json traces there")
    if not args.prove and args.prove_timeout != DEFAULT_PROVE_S:
        raise UsageError("--prove-timeout needs --prove")
    with naming_source(baseline, candidate):
        report = RegressReport(baseline, candidate, list(bounds))
        reached[:] = [report, corpus]
        try:
            regress(baseline, candidate, bounds, corpus, behaviours=not args.no_behaviours, into=report)
        except BoundsError as exc:  # a bound one side declares and the other does not
            raise UsageError(f"--bounds {' '.join(args.bounds or [])}: {exc} (give bounds both {baseline.name} "
                             f"and {candidate.name} declare)") from None
        if args.prove:
            from deferral.checks.compare.proofs import prove_both

            searched = [b for b in report.bounds if b not in {s for s, _ in report.skipped}]
            report.proofs = prove_both(baseline, candidate, searched, args.prove_timeout,
                                       hard_limit=lambda s, grace: deadline(s, "learning", grace=grace),
                                       limit_error=TimeLimitReached)
    return report, corpus


def _output(args: argparse.Namespace, report: Any, corpus: list[Any]) -> int:
    """Write the files and print the report (after the time limit's alarm is off)."""
    if args.junit:
        write_atomic(args.junit, regress_junit(report))
    if args.html:
        write_atomic(args.html, regress_page(report, corpus))
    if args.json:
        print(json.dumps(regress_json(report)))
    else:
        out = Console()
        if not out.is_terminal:
            out = console(width=120)  # CI logs: wide enough for the side-by-side tables
        print_regress(out, report)
    return report.exit_code
