"""``deferral regress``: what a protocol change breaks, side by side with its baseline.

Checks baseline and candidate at each set of bounds, replays the trace corpus against
both, and compares their reachable behaviours (states seen through the protocol
variables both have). Exit codes: 0 the candidate keeps every property the baseline has;
1 it loses one (a verdict, or a corpus trace that now violates a property); 2 bad input
(an unknown variant, a broken variant file, bad bounds); 3 --time-limit reached.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from deferral.traces.html import regress_page
from deferral.checks.compare.regress import DEFAULT_BOUNDS, RegressReport, junit_xml, regress
from deferral.cli.common import UsageError, check_outputs, console, load_variant, naming_source, seconds
from deferral.cli.limits import deadline, grace_for
from deferral.model.bounds import Bounds, BoundsError
from deferral.model.concrete import Model
from deferral.model.protocol import Protocol
from deferral.traces.corpus import load_corpus
from deferral.traces.files import write_atomic
from deferral.traces.format import TraceError
from deferral.traces.render import path_table

#: Default --time-limit: the default bound matrix takes a few seconds.
DEFAULT_LIMIT_S = 600.0

STYLE = {"holds": "green", "violated": "red", "unknown": "yellow", "absent": "dim",
         "passes": "green", "violates": "red", "cannot-replay": "yellow"}


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
    with deadline(args.time_limit, "regress", grace=grace_for(args.time_limit)):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
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
    with naming_source(baseline, candidate):
        report = regress(baseline, candidate, bounds, corpus, behaviours=not args.no_behaviours)
    if args.junit:
        write_atomic(args.junit, junit_xml(report))
    if args.html:
        write_atomic(args.html, regress_page(report, corpus))
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        out = Console()
        if not out.is_terminal:
            out = console(width=120)  # CI logs: wide enough for the side-by-side tables
        print_report(out, report)
    return report.exit_code


def _cell(status: str) -> Text:
    return Text(status, style=STYLE.get(status, "default"))


def print_report(console: Console, report: RegressReport) -> None:
    b, c = report.baseline, report.candidate
    console.print(f"[bold]baseline[/]  {b.name} ({b.source})")
    console.print(f"[bold]candidate[/] {c.name} ({c.source})"
                  + (": " + ", ".join(f"{x.kind} {x.what} {x.name}" for x in c.changes) if c.changes else ""))
    table = Table(title="Properties", title_justify="left")
    for col in ("property", "bounds", "baseline", "candidate", "change"):
        table.add_column(col, no_wrap=col != "property")
    for row in report.verdicts:
        cand = _cell(row.candidate)
        if row.candidate_length is not None:
            cand.append(f" ({row.candidate_length} steps)", style="dim")
        change = Text(row.change, style="bold red" if row.lost else ("green" if row.change == "fixed" else "dim"))
        table.add_row(row.prop, row.bounds.short(), _cell(row.baseline), cand, change)
    console.print(table)
    for bounds, why in report.skipped:
        console.print(f"[yellow]skipped {bounds.short()}:[/] {why}")
    if report.corpus:
        table = Table(title=f"Corpus ({len(report.corpus)} traces, steps replayed on each side)",
                      title_justify="left")
        for col in ("trace", "expected", "baseline", "candidate", "change"):
            table.add_column(col)
        for crow in report.corpus:
            exp = crow.expected or {}
            want = exp.get("outcome", "-") + (f" {exp['property']}" if exp.get("property") else "")
            style = "bold red" if crow.lost else ("yellow" if crow.changed else "dim")
            table.add_row(crow.name, want, _judged(crow.baseline), _judged(crow.candidate),
                          Text(crow.change, style=style))
        console.print(table)
    if report.behaviours:
        table = Table(title="Behaviours (reachable states on the shared protocol variables, "
                            "up to VCPU symmetry)", title_justify="left")
        for col in ("bounds", "states base/cand", "behaviours base/cand", "added", "lost"):
            table.add_column(col, justify="right" if col != "bounds" else "left")
        for brow in report.behaviours:
            d = brow.diff
            if d is None:
                table.add_row(brow.bounds.short(), brow.skipped, "", "", "")
                continue
            table.add_row(d.bounds.short(), f"{d.baseline_states:,}/{d.candidate_states:,}",
                          f"{d.baseline_behaviours:,}/{d.candidate_behaviours:,}",
                          Text(str(d.added), style="yellow" if d.added else "dim"),
                          Text(str(d.lost), style="yellow" if d.lost else "dim"))
        console.print(table)
        diffs = [r.diff for r in report.behaviours if r.diff is not None]
        added = [d for d in diffs if d.added_example]
        lost = [d for d in diffs if d.lost_example]
        if added:
            d = added[0]
            console.print(path_table(Model(c, d.bounds), d.added_example,  # type: ignore[arg-type]
                                     f"A behaviour {c.name} adds at {d.bounds.short()}: shortest trace "
                                     f"({len(d.added_example) - 1} steps)"))  # type: ignore[arg-type]
        elif diffs:
            console.print("[dim]The candidate adds no behaviour at these bounds.[/]")
        if lost:
            d = lost[0]
            console.print(path_table(Model(b, d.bounds), d.lost_example,  # type: ignore[arg-type]
                                     f"A behaviour {c.name} loses at {d.bounds.short()}: shortest trace in "
                                     f"{b.name} ({len(d.lost_example) - 1} steps)"))  # type: ignore[arg-type]
    for row in report.lost[:1]:
        if row.candidate_path is not None:
            console.print(path_table(Model(c, row.bounds), row.candidate_path,
                                     f"{row.prop} lost at {row.bounds.short()}: shortest counterexample "
                                     f"in {c.name} ({row.candidate_length} steps)"))
    lost = [f"{r.prop} at {r.bounds.short()}" for r in report.lost]
    lost += [f"corpus {r.name} ({r.candidate.describe()})" for r in report.corpus_lost]
    if lost:
        console.print(Text(f"✗ REGRESSION: {c.name} loses " + "; ".join(lost), style="bold red"))
    else:
        console.print(Text(f"✓ no regression: {c.name} keeps every property {b.name} has at these bounds "
                           "and on the corpus", style="green"))


def _judged(j: Any) -> Text:
    text = _cell(j.outcome)
    if j.properties:
        text.append(" " + ", ".join(j.properties), style="dim")
    if j.outcome == "cannot-replay":
        text.append(f" ({j.brief_reason.replace(' in the model here', '')})", style="dim")
    return text
