"""``deferral simulate``: seeded random walks at bounds too big to explore exhaustively.

Every state of every walk is checked against the invariants; a violation is shrunk to a
short counterexample and can be written as a trace that ``deferral replay`` accepts.
Liveness (AG EF) is not checked: it needs the whole state graph (``deferral check``).

Exit codes: 1 a violation was found; 3 none was found, which is "unknown", never "holds"
(a simulation visits some states, not all); 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import shlex
from typing import Any

from rich.console import Console
from rich.text import Text

from deferral.checks.explicit.numpy_ops import NotVectorizable
from deferral.checks.explicit.simulate import SimProgress, SimResult, simulate
from deferral.cli.common import UsageError, add_bounds, check_outputs, console, add_variant, bounds_from, positive, protocol_from
from deferral.cli.terminate import Terminated
from deferral.model.concrete import Model
from deferral.traces.files import write_atomic
from deferral.traces.itf import to_itf
from deferral.traces.report.terminal import path_table
from deferral.traces.replay import path_to_trace


def register(sub: Any) -> None:
    p = sub.add_parser("simulate", help="random walks at any bounds, the invariants checked in every state",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_bounds(p)
    add_variant(p)
    p.add_argument("--seed", type=int, default=0, metavar="S", help="random seed, a non-negative integer (default 0)")
    p.add_argument("--depth", type=positive(int), default=100, metavar="D", help="steps per walk (default 100)")
    p.add_argument("--walks", type=positive(int), metavar="K",
                   help="stop after about K walks (rounded up to whole batches: 4,096 walks, 4,096 per 64 "
                        "step instances for models of 128 or more)")
    p.add_argument("--time-limit", type=positive(float), default=10.0, metavar="S",
                   help="stop after S seconds (default 10)")
    p.add_argument("--workers", type=positive(int), metavar="W", help="worker processes (default: every CPU this process may use)")
    p.add_argument("--trace-out", metavar="FILE", help="write the shrunk counterexample as deferral-trace/1")
    p.add_argument("--itf", metavar="FILE", help="write the shrunk counterexample as ITF")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.seed < 0:
        raise UsageError(f"--seed must be non-negative, got {args.seed}")
    protocol = protocol_from(args)
    bounds = bounds_from(args, protocol)
    check_outputs(args, "trace_out", "itf")  # before the walks, as check does
    model = Model(protocol, bounds)
    err = console(stderr=True)
    label = f"simulate {protocol.name} {bounds.short()}"

    def show(p: SimProgress) -> None:
        if not args.json:
            rate = p.states / p.elapsed_s if p.elapsed_s else 0.0
            err.print(f"{label}: {p.walks:,} walks, {p.states:,} states, {rate:,.0f} states/s, "
                      f"{p.elapsed_s:.0f} s", style="cyan", highlight=False)

    try:
        result = simulate(model, seed=args.seed, depth=args.depth, walks=args.walks, time_limit=args.time_limit,
                          workers=args.workers, progress=show)
    except NotVectorizable as exc:
        raise UsageError(f"simulate runs the steps on arrays, and this protocol cannot: {exc}") from None
    if isinstance(result.interrupted, Terminated):
        raise result.interrupted  # SIGTERM ends the command as it says (143); Ctrl-C keeps the violation found
    if result.path is not None:
        trace = path_to_trace(model, result.path, result.prop,
                              expected={"outcome": "violates", "property": result.prop},
                              note=f"deferral simulate --seed {args.seed}, shrunk from {result.found_length} steps")
        if args.trace_out:
            trace.save(args.trace_out)
        if args.itf:
            write_atomic(args.itf, json.dumps(to_itf(trace, protocol), indent=1) + "\n")
    if args.json:
        print(json.dumps(result_json(result, args)))
    else:
        print_sim(console(), model, result, args)
    return result.exit_code


def _rate(result: SimResult) -> float:
    return result.states / result.elapsed_s if result.elapsed_s > 0 else 0.0


def result_json(result: SimResult, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "variant": result.variant,
        "bounds": result.bounds.as_dict(),
        "seed": result.seed,
        "depth": result.depth,
        "workers": result.workers,
        "walks": result.walks,
        "states": result.states,
        "states_per_s": round(_rate(result)),
        "deadlocked_walks": result.deadlocks,
        "elapsed_s": round(result.elapsed_s, 3),
        "status": "violated" if result.violated else "unknown",
        "property": result.prop,
        "found_length": result.found_length,
        "length": None if result.path is None else len(result.path) - 1,
        "shrink": result.shrink_log,
        "shrink_interrupted": result.interrupted is not None,
        "trace": args.trace_out if result.violated else None,
    }


def print_sim(console: Console, model: Model, result: SimResult, args: argparse.Namespace) -> None:
    console.print(f"[bold]{result.variant}[/] at {result.bounds.short()}, seed {result.seed}: {result.walks:,} "
                  f"walks of up to {result.depth} steps, {result.states:,} states visited, "
                  f"{_rate(result):,.0f} states/s, {result.workers} worker(s), {result.elapsed_s:.1f} s",
                  highlight=False)
    if result.path is None:
        console.print(Text("no invariant violation found; that is unknown, not holds (exit 3): a simulation "
                           "visits some states, not all", style="yellow"))
        return
    console.print(path_table(model, result.path, f"{result.prop} violated: counterexample, "
                                                 f"{len(result.path) - 1} steps (shrunk from {result.found_length})"))
    for v in model.failing(model.protocol.prop(result.prop or ""), result.path[-1][1]):
        console.print(Text.assemble(("✗ ", "bold red"), (v.describe(), "red")))
    console.print("shrinking: " + "; ".join(result.shrink_log), style="dim", highlight=False)
    if result.interrupted is not None:
        console.print(Text("shrinking interrupted (Ctrl-C): the shortest counterexample found until then, "
                           "maybe not the shortest there is", style="yellow"))
    if args.trace_out:
        console.print(f"trace: {args.trace_out} ({replay_command(args)})", highlight=False)


def replay_command(args: argparse.Namespace) -> str:
    """The command that replays the written trace, quoted for a shell: a trace taken with a
    variant file replays only with that file given (a trace never loads code)."""
    argv = ["deferral", "replay", args.trace_out]
    if getattr(args, "variant_file", None):
        argv += ["--variant-file", args.variant_file]
    return shlex.join(argv)
