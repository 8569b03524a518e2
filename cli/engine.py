"""``deferral engine run``: the threaded engine under random guests, judged online.

Runs one thread per VCPU for ``--seconds`` under seeded random guest programs, records
every atomic step (optionally with state snapshots) as a trace that ``deferral replay``
judges, and prints a summary: steps, shootdowns, drains, IPIs, the steps after which the
model's invariants failed on the engine's own state (ghost variables computed by the
model along the engine's steps), steps where the engine diverged from the model, and
shootdowns stuck waiting at the end (detected with a grace timeout; a run never hangs).
A published ``--variant`` runs as the bug a developer could write; ``--variant-file PATH``
runs a user's change, which the file must make in both places: ``VARIANT`` (the model,
which judges) and ``ENGINE`` (a subclass of ``deferral.engine.Hypervisor``); a file
without ``ENGINE`` is bad input, and so is an ``ENGINE`` that raises. Exit 0 clean, 1 violation or
stuck shootdown, 4 divergence from the model (and nothing else), 2 bad input, 3 a VCPU thread failed.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import math

from deferral.cli.common import (EXIT_DIVERGED, EXIT_OK, EXIT_UNKNOWN, EXIT_VIOLATED, UsageError, add_bounds, bounds_from,
                                 check_outputs, protocol_from)
from deferral.cli.limits import TimeLimitReached
from deferral.engine.bugs import VARIANT_BUGS, UnknownVariant, bugs_for
from deferral.engine.hypervisor import Hypervisor
from deferral.engine.runner import EngineStuck, RunConfig, run as run_engine
from deferral.engine.user import engine_of, load_engine_file
from deferral.model.context import StepError
from deferral.model.protocol import Protocol
from deferral.model.variants import VariantError

MAX_SECONDS = 3600.0


def add_engine_variant(parser: argparse.ArgumentParser) -> None:
    """--variant NAME (a published variant, as an engine bug) or --variant-file PATH (with ENGINE)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--variant", default="reference", metavar="NAME",
                       help=f"published variant, run as the engine bug: {', '.join(VARIANT_BUGS)} "
                            "(default reference)")
    group.add_argument("--variant-file", metavar="PATH",
                       help="a Python file defining VARIANT (the model's change) and ENGINE (the same change "
                            "in the engine: a subclass of deferral.engine.Hypervisor); without ENGINE: exit 2")


def engine_from(args: argparse.Namespace) -> tuple[Protocol, type[Hypervisor] | None]:
    """The user's (VARIANT, ENGINE) for --variant-file, or (the published variant, None)."""
    if getattr(args, "variant_file", None):
        loaded = getattr(args, "loaded_variant", None)
        try:
            if loaded is not None and loaded[0] == args.variant_file:  # main loaded it once already
                return loaded[1], engine_of(args.variant_file, loaded[2])
            return load_engine_file(args.variant_file)
        except VariantError as exc:
            raise UsageError(str(exc)) from None
    try:
        bugs_for(args.variant)
    except UnknownVariant as exc:
        raise UsageError(str(exc)) from None
    return protocol_from(args), None


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("engine", help="run the threaded engine", description=__doc__)
    sub = parser.add_subparsers(dest="engine_command", metavar="ACTION", parser_class=type(parser))
    p = sub.add_parser("run", help="run the engine under random guests", description=__doc__)
    add_engine_variant(p)
    add_bounds(p)
    p.add_argument("--seconds", type=float, default=1.0, help="how long the guests run (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the guest programs (default 0)")
    p.add_argument("--grace", type=float, default=0.5,
                   help="after the stop, how long to wait for shootdowns to complete (default 0.5 s)")
    p.add_argument("--max-steps", type=int, default=None, help="stop the guests after about this many steps")
    p.add_argument("--trace-out", metavar="FILE", help="record every step to FILE")
    p.add_argument("--jsonl", action="store_true", help="write the trace as JSON Lines while running")
    p.add_argument("--snapshots", action="store_true", help="record the state after each step")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run)
    parser.set_defaults(func=lambda args: (_ for _ in ()).throw(UsageError("engine: say which action: run")))


def config_from(args: argparse.Namespace) -> RunConfig:
    bounds = bounds_from(args)
    protocol, engine = engine_from(args)
    if not math.isfinite(args.seconds) or not 0 < args.seconds <= MAX_SECONDS:
        raise UsageError(f"--seconds must be more than 0 and at most {MAX_SECONDS:g}, got {args.seconds:g}")
    if not math.isfinite(args.grace) or not 0 < args.grace <= 60:
        raise UsageError(f"--grace must be more than 0 and at most 60, got {args.grace:g}")
    if args.seed < 0:
        raise UsageError(f"--seed must be non-negative, got {args.seed}")
    if args.max_steps is not None and args.max_steps < 1:
        raise UsageError(f"--max-steps must be positive, got {args.max_steps}")
    if args.jsonl and not args.trace_out:
        raise UsageError("--jsonl needs --trace-out FILE")
    check_outputs(args, "trace_out")
    return RunConfig(bounds, protocol.name, args.seconds, args.seed,
                     args.snapshots, args.trace_out, args.jsonl, args.grace, max_steps=args.max_steps,
                     protocol=protocol, engine=engine)


def run(args: argparse.Namespace) -> int:
    cfg = config_from(args)
    try:
        result = run_engine(cfg)
    except EngineStuck as exc:  # a limit, as a step of a variant that never returns: exit 3, its line
        stuck = TimeLimitReached("engine run", cfg.seconds + cfg.grace)
        stuck.args, stuck.where = (exc.args[0],), exc.where
        raise stuck from None
    if result.user_errors:  # the user's ENGINE raised: a broken variant file, named by file and line
        raise StepError(result.user_errors[0])
    s = result.summary
    if args.json:
        print(json.dumps(s))
    else:
        print(_human(s))
    if s["errors"] or s["threads_alive"]:
        return EXIT_UNKNOWN
    if result.violated:
        return EXIT_VIOLATED
    return EXIT_DIVERGED if s["divergence"]["steps"] else EXIT_OK


LETTERS = {"vcpus": "N", "pages": "V", "frames": "F", "queue": "Q", "spaces": "S"}


def bounds_text(bounds: dict[str, int]) -> str:
    """``N=2,V=1,F=1,Q=1`` (and ``S=2`` where shown) from a JSON bounds object."""
    return ",".join(f"{LETTERS.get(name, name)}={value}" for name, value in bounds.items())


def _human(s: dict[str, Any]) -> str:
    v = s["violations"]
    lines = [
        f"engine run: variant {s['variant']} (engine {s['engine']}) at {bounds_text(s['bounds'])}, "
        f"seed {s['seed']}, {s['elapsed_s']:.2f} s ({s['locking']})",
        f"  steps {s['steps']}: " + ", ".join(f"{k} {n}" for k, n in s["by_step"].items()),
        f"  shootdowns {s['shootdowns']['started']} started, {s['shootdowns']['completed']} completed; "
        f"drains {s['drains']} ({s['overflow_drains']} overflows); IPIs sent {s['ipis']['sent']}, "
        f"taken {s['ipis']['taken']}, acked {s['ipis']['acked']}",
    ]
    names = ", ".join(v["properties"])
    if v["steps"]:
        f = v["first"]
        lines.append(f"  {f['property']} VIOLATED after {v['steps']:,} of {s['steps']:,} steps; first at step {f['step_number']} "
                     f"{f['step']}: {f['describe']}")
    else:
        lines.append(f"  {names} held after every step (the model's invariants and ghost variables, "
                     "judged online on the engine's state)")
    d = s["divergence"]
    if d["steps"]:
        f = d["first"]
        lines.append(f"  DIVERGED from the model at {d['steps']:,} of {s['steps']:,} steps; first at step {f['step_number']} "
                     f"{f['step']}: {f['reason']}")
    if s["stuck"]:
        lines.append(f"  STUCK: VCPU(s) {', '.join(map(str, s['stuck']))} still waiting for shootdown acks "
                     f"after the grace timeout (final pc {s['final_pc']})")
    elif s["shootdowns"]["completed"] < s["shootdowns"]["started"]:  # a failed thread left its own unfinished
        lines.append(f"  {s['shootdowns']['completed']:,} of {s['shootdowns']['started']:,} shootdowns completed "
                     "(none waiting for acks at the end)")
    else:
        lines.append("  every shootdown completed")
    for err in s["errors"]:
        lines.append(f"  ERROR: {err}")
    if s["trace_out"]:
        lines.append(f"  trace: {s['trace_out']} ({s['trace_format']}"
                     f"{', with snapshots' if s['snapshots'] else ''})")
    return "\n".join(lines)
