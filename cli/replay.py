"""``deferral replay FILE``: re-execute a trace against the model and say where it differs.

A trace is data: replay never imports or runs anything the trace names. A trace of a
published variant is judged by that variant; one taken with a variant file is judged only
with ``--variant-file PATH`` given on the command line.

Exit codes: 0 the trace replays and breaks no property (or has exactly the outcome it
declares under ``expected``); 1 it replays and breaks a property it was not expected to
(or a declared outcome does not happen); 2 bad input (unreadable, malformed or foreign
file, malformed state contents); 3 --time-limit reached; 4 the trace does not replay: a step is unknown, not enabled, or leads elsewhere.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import Any

from rich.text import Text

from deferral.cli.common import EXIT_DIVERGED, UsageError, check_outputs, console, protocol_from, seconds
from deferral.cli.limits import TimeLimitReached, deadline
from deferral.model.bounds import BoundsError
from deferral.model.concrete import Model
from deferral.model.protocol import Protocol
from deferral.model.variants import PUBLISHED
from deferral.traces.format import Trace, TraceError, load
from deferral.traces.files import write_atomic
from deferral.traces.html import replay_view, trace_page
from deferral.traces.report.terminal import path_table
from deferral.traces.replay import ReplayReport, replay

#: Default --time-limit of replay: a trace replays in well under a second.
DEFAULT_LIMIT_S = 60.0
#: Traces longer than this are summarized unless --full is given; the summary shows the last TAIL steps.
SUMMARY_AFTER = 40
TAIL = 10


def register(sub: Any) -> None:
    p = sub.add_parser("replay", help="re-execute a trace (deferral-trace/1 or JSON Lines) against the model",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", help="the trace file")
    group = p.add_mutually_exclusive_group()
    group.add_argument("--variant", metavar="NAME", help="judge with this published variant instead of the "
                                                         "one the trace names")
    group.add_argument("--variant-file", metavar="PATH", help="judge with the variant a Python file defines")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--html", metavar="FILE", help="write the replayed trace as a self-contained HTML timeline")
    p.add_argument("--full", action="store_true",
                   help=f"print every step (default: a summary and the last {TAIL} steps when the trace "
                        f"has more than {SUMMARY_AFTER})")
    p.add_argument("--quiet", action="store_true", help="print only the verdict line")
    p.add_argument("--time-limit", type=seconds(), default=DEFAULT_LIMIT_S, metavar="S",
                   help=f"give up after S seconds, exit 3 (default {DEFAULT_LIMIT_S:g}; a step that never "
                        "returns)")
    p.set_defaults(func=run)


def protocol_for(trace: Trace, args: argparse.Namespace) -> Protocol:
    """The protocol that judges ``trace``: the flags' choice, else the published variant it names.

    Nothing the trace says is ever loaded: a variant file it names (``variant_source``) is
    only mentioned, for the user to pass with --variant-file.
    """
    if args.variant or args.variant_file:
        return protocol_from(argparse.Namespace(variant=args.variant or "reference", variant_file=args.variant_file,
                                                loaded_variant=getattr(args, "loaded_variant", None)))
    source = trace.variant_source
    if source not in ("", "built-in"):
        raise UsageError(f"the trace was taken with variant {trace.variant!r} from the file {source!r}; "
                         "a trace never loads code: give --variant-file PATH (or --variant NAME)")
    if trace.variant in PUBLISHED:
        return PUBLISHED[trace.variant]
    raise UsageError(f"the trace names variant {trace.variant!r}, which is not a published one; "
                     "give --variant-file PATH")


def verdict(report: ReplayReport) -> tuple[int, str]:
    """The exit code and a one-line verdict."""
    if report.divergence is not None:
        return EXIT_DIVERGED, f"REJECTED at {report.divergence.describe()}"
    violated = report.violated_properties
    expected = report.trace.expected
    outcome = report.outcome()
    summary = (f"replays: {report.steps_replayed} steps; " +
               (f"violates {', '.join(violated)}" if violated else "no property violated"))
    unknown = [name for name, reachable in report.liveness.items() if reachable is None]
    if unknown:
        summary += f"; {', '.join(unknown)} undecided (too many states from the last one)"
    if expected is None:
        return (1 if violated else 0), summary
    matches = outcome == expected["outcome"] and (outcome == "passes" or expected.get("property") in violated)
    want = expected["outcome"] + (f" {expected['property']}" if expected.get("property") else "")
    return (0 if matches else 1), f"{summary}; expected: {want} ({'as expected' if matches else 'NOT as expected'})"


def run(args: argparse.Namespace) -> int:
    check_outputs(args, "html")
    try:
        trace = load(args.file)
    except TraceError as exc:
        raise UsageError(str(exc)) from None
    reached: list[Any] = [0, []]  # steps replayed, violations: what a time limit reports

    def progress(steps: int, violations: list[Any]) -> None:
        reached[:] = [steps, violations]

    try:
        with deadline(args.time_limit, "replay"):
            protocol = protocol_for(trace, args)
            try:
                report = replay(trace, protocol, progress=progress)
            except BoundsError as exc:  # a bound the protocol does not declare, or outside its range
                raise UsageError(f"{args.file}: bad bounds for {protocol.name}: {exc}") from None
            except TraceError as exc:  # what the trace claims does not fit the protocol (a property it lacks)
                raise UsageError(f"{args.file}: {exc}") from None
    except TimeLimitReached as exc:
        steps, violations = reached
        broke = (f"first violation after step {violations[0][0]}: {violations[0][1].describe()}" if violations
                 else "no property violated up to there")
        exc.args = (f"{exc.args[0]} after {steps:,} of {len(trace.steps):,} steps replayed ({broke})",)
        raise
    if report.divergence is not None and report.divergence.malformed:
        raise UsageError(f"{args.file}: {report.divergence.describe()}")
    code, line = verdict(report)
    if args.html:
        view = replay_view(report, Model(protocol, trace.bounds), line)
        write_atomic(args.html, trace_page(f"deferral replay: {args.file}",
                                           [f"judged by {protocol.name} ({protocol.source})"], [view]))
    if args.json:
        print(json.dumps(report_json(report, code, line)))
        return code
    out = console()
    model = Model(protocol, trace.bounds)
    judge = "" if protocol.name == trace.variant else f", judged by {protocol.name}"  # not the trace's own
    title = f"{trace.variant} at {model.bounds.short()}{judge}: {report.steps_replayed} steps replayed"
    if not args.quiet and len(report.path) - 1 > SUMMARY_AFTER and not args.full:
        out.print(summary(report, title))
        out.print(path_table(model, report.path[-TAIL - 1:], f"the last {TAIL} steps (--full for all)",
                             first=len(report.path) - TAIL))
    elif not args.quiet and len(report.path) > 1:
        out.print(path_table(model, report.path, title))
    if report.divergence is not None and not args.quiet:
        d = report.divergence
        if d.expected and not d.actual:  # a step not enabled: the fields its guard read
            for field in sorted(d.expected):
                out.print(f"  {field} = {d.expected[field]!r} (read by the guard)", highlight=False)
        for field in sorted(set(d.expected) | set(d.actual)) if d.actual else ():
            out.print(f"  {field}: model {d.expected.get(field)!r}, trace {d.actual.get(field)!r}")
    if not args.quiet:
        for number, violation in report.violations[:5]:
            out.print(Text(f"  after step {number}: {violation.describe()}", style="red"))
    style = "green" if code == 0 else "bold red"
    out.print(Text(line, style=style))
    return code


def summary(report: ReplayReport, title: str) -> Text:
    """A long trace in a few lines: how often each step ran, and where properties broke."""
    counts = Counter(action.step.name for action, _ in report.path[1:] if action is not None)
    text = Text(title + "\n", style="bold")
    text.append("steps: " + ", ".join(f"{name} ×{n:,}" for name, n in counts.most_common()) + "\n")
    if report.violations:
        first = report.violations[0]
        text.append(f"{len(report.violations)} property violation(s), the first after step {first[0]}: "
                    f"{first[1].describe()}\n", style="red")
    return text


def report_json(report: ReplayReport, code: int, line: str) -> dict[str, Any]:
    d = report.divergence
    return {
        "file_variant": report.trace.variant,
        "judged_by": report.protocol.name,
        "bounds": report.trace.bounds.as_dict(),
        "steps": len(report.trace.steps),
        "steps_replayed": report.steps_replayed,
        "replays": d is None,
        "divergence": None if d is None else {
            "step_number": d.step_number, "step": d.step, "reason": d.reason,
            "expected": d.expected, "actual": d.actual,
        },
        "violations": [{"after_step": n, "property": v.prop, "args": list(v.args), "values": v.values}
                       for n, v in report.violations],
        "liveness_goal_reachable": report.liveness,
        "outcome": report.outcome(),
        "expected": report.trace.expected,
        "exit_code": code,
        "verdict": line,
    }
