"""``deferral conform``: drive the engine along model paths, one atomic step at a time.

The model picks each step; the engine executes it with its own code; after each step
the engine's state must equal the model's, and at each state the steps the model
enables must be exactly the steps the engine can take. Paths: every path up to
``--depth``, ``--random-walks K --length L --seed X``, or ``--counterexamples`` (the
variant's shortest counterexample; the engine's own state must then break the property).
With ``--variant-file PATH`` the file must define ``ENGINE`` beside ``VARIANT`` (the same
change in the engine, a subclass of ``deferral.engine.Hypervisor``). Exit 0 conforms, 4
the engine departs from the model (a state or an enabled step differs, or the engine does not
reproduce a counterexample: a divergence, as ``replay`` and ``engine run`` say it), 2 bad
input (a variant file without ENGINE among it), 3 a work limit stopped it first.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from deferral.cli.common import (EXIT_DIVERGED, EXIT_OK, EXIT_UNKNOWN, UsageError, add_bounds, bounds_from,
                                 seconds)
from deferral.cli.engine import add_engine_variant, bounds_text, engine_from
from deferral.cli.limits import deadline, grace_for
from deferral.engine.bugs import bugs_for
from deferral.engine.conform import ConformReport, conform_counterexamples, conform_depth, conform_random
from deferral.engine.hypervisor import EngineSpec
from deferral.model.concrete import Model

MAX_DEPTH = 40

#: The flags that tune one kind of path, with their defaults; a flag given for another mode is
#: refused (it would be ignored, and a user reading the result would think it applied).
DEFAULTS: dict[str, Any] = {"length": 30, "seed": 0, "max_steps": 200_000, "max_states": 4_000_000, "no_prune": False}
APPLIES_TO = {"length": ("random_walks",), "seed": ("random_walks",), "max_steps": ("depth", "random_walks"),
              "max_states": ("counterexamples",), "no_prune": ("depth",)}


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("conform", help="check the engine against the model step by step",
                              description=__doc__)
    add_engine_variant(p)
    add_bounds(p)
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--depth", type=int, metavar="D", help=f"every path up to D steps (1..{MAX_DEPTH})")
    mode.add_argument("--random-walks", type=int, metavar="K", help="K seeded random walks")
    mode.add_argument("--counterexamples", action="store_true", help="the variant's shortest counterexample")
    p.add_argument("--length", type=int, default=None, metavar="L",
                   help=f"steps per random walk (--random-walks; default {DEFAULTS['length']})")
    p.add_argument("--seed", type=int, default=None,
                   help=f"seed of the random walks (--random-walks; default {DEFAULTS['seed']})")
    p.add_argument("--max-steps", type=int, default=None,
                   help=f"engine steps at most (--depth, --random-walks; default {DEFAULTS['max_steps']})")
    p.add_argument("--max-states", type=int, default=None,
                   help="model states at most when searching a counterexample "
                        f"(--counterexamples; default {DEFAULTS['max_states']})")
    p.add_argument("--time-limit", type=seconds(), default=None, help="seconds at most (every mode)")
    p.add_argument("--no-prune", action="store_true", default=None,
                   help="--depth: follow every path, even to explored states")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=run)


def _validate(args: argparse.Namespace) -> None:
    if args.depth is None and args.random_walks is None and not args.counterexamples:
        raise UsageError("say which paths: --depth D, --random-walks K or --counterexamples")
    mode = "depth" if args.depth is not None else "random_walks" if args.random_walks is not None else "counterexamples"
    for name, modes in APPLIES_TO.items():
        if getattr(args, name) is not None and mode not in modes:
            flag, wanted = "--" + name.replace("_", "-"), " or ".join("--" + m.replace("_", "-") for m in modes)
            raise UsageError(f"{flag} applies to {wanted}, not to --{mode.replace('_', '-')}")
        if getattr(args, name) is None:
            setattr(args, name, DEFAULTS[name])
    if args.depth is not None and not 1 <= args.depth <= MAX_DEPTH:
        raise UsageError(f"--depth must be from 1 to {MAX_DEPTH}, got {args.depth}")
    if args.random_walks is not None and not 1 <= args.random_walks <= 1_000_000:
        raise UsageError(f"--random-walks must be from 1 to 1000000, got {args.random_walks}")
    if not 1 <= args.length <= 100_000:
        raise UsageError(f"--length must be from 1 to 100000, got {args.length}")
    if args.seed < 0:
        raise UsageError(f"--seed must be non-negative, got {args.seed}")
    if args.max_steps < 1 or args.max_states < 1:
        raise UsageError("--max-steps and --max-states must be positive")
    if args.time_limit is not None and args.time_limit <= 0:
        raise UsageError(f"--time-limit must be positive, got {args.time_limit:g}")


def run(args: argparse.Namespace) -> int:
    _validate(args)
    bounds = bounds_from(args)
    protocol, engine = engine_from(args)
    spec: EngineSpec = engine if engine is not None else bugs_for(protocol.name)
    model = Model(protocol, bounds)
    # the modes check the limit between steps; the hard deadline (a second alarm after it) ends a
    # step of a user's ENGINE that never returns, naming its line (exit 3)
    with deadline(args.time_limit, "conform", grace=grace_for(args.time_limit or 0.0)):
        report = _conform(args, model, spec)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(_human(report))
    if not report.ok:
        return EXIT_DIVERGED
    return EXIT_OK if report.stopped_by is None else EXIT_UNKNOWN


def _conform(args: argparse.Namespace, model: Model, spec: EngineSpec) -> ConformReport:
    """The report of the mode the flags chose."""
    if args.depth is not None:
        return conform_depth(model, spec, args.depth, max_steps=args.max_steps, time_limit=args.time_limit,
                             prune=not args.no_prune)
    if args.random_walks is not None:
        return conform_random(model, spec, args.random_walks, args.length, args.seed, max_steps=args.max_steps,
                              time_limit=args.time_limit)
    return conform_counterexamples(model, spec, max_states=args.max_states, time_limit=args.time_limit)


def _human(r: ConformReport) -> str:
    head = (f"conform ({r.mode}): engine variant {r.variant} at {bounds_text(r.bounds)}: {r.paths} paths, {r.steps} engine steps, {r.states_checked} states compared, "
            f"{r.enabled_checks} enabledness checks, {r.elapsed_s:.2f} s")
    lines = [head]
    m = r.mismatch
    if m is not None:
        lines.append(f"  MISMATCH ({m.kind}) at step {m.step_number}: {m.step}: {m.reason}")
        lines.append(f"  path: {' ; '.join(m.path) or '(initial state)'}")
        for key in m.expected:
            lines.append(f"    {key}: model {json.dumps(m.expected[key])}, engine {json.dumps(m.actual.get(key))}")
    elif r.states_checked:
        lines.append("  the engine conforms: every state equal, enabledness equal both ways")
    for c in r.counterexamples:
        verdict = "the engine's own state breaks it" if c["engine_violates"] else "the engine does NOT reproduce it"
        extra = ""
        if c["kind"] == "liveness":
            extra = f" (engine stuck VCPUs {c['engine_stuck']}, can leave SdWait: {c['engine_can_leave_wait']})"
        lines.append(f"  counterexample of {c['property']} ({c['length']} steps): {verdict}{extra}")
        lines.append(f"    {' ; '.join(c['path'])}")
    if r.mode == "counterexamples" and not r.counterexamples and r.stopped_by is None:
        lines.append("  no counterexample: the variant's properties hold at these bounds")
    if r.stopped_by and r.mode == "counterexamples":
        how = {"max-states": "its --max-states", "time-limit": "its --time-limit"}.get(r.stopped_by, r.stopped_by)
        covered = (f" ({r.model_search['states']:,} states, depth {r.model_search['depth']})"
                   if r.model_search else "")
        lines.append(f"  the model's search stopped at {how}{covered} before deciding "
                     f"{', '.join(r.undecided) or 'every property'}: "
                     "a counterexample of it, if any, was not driven (raise --max-states or --time-limit)")
    elif r.stopped_by:
        lines.append(f"  stopped by {r.stopped_by}: not every path was checked")
    return "\n".join(lines)
