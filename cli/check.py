"""``deferral check``: explore every interleaving; verdicts and shortest counterexamples."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from deferral.checks.results import Progress, ProgressFn, SearchResult, never_enabled_warnings
from deferral.checks.explicit import checkpoint
from deferral.checks.explicit.limits import default_memory_limit
from deferral.checks.explicit.spill import SpillError
from deferral.checks.explicit.graph import GRAPH_LIMIT, GraphTooLarge, state_graph, to_dot
from deferral.checks.explicit.graph import to_json as graph_json
from deferral.checks.explicit.search import search
from deferral.checks.explicit.symmetry_guard import check_symmetry
from deferral.cli.common import (EXIT_INTERNAL, UsageError, add_bounds, add_variant, bounds_from, check_outputs,
                                 console, naming_source, positive, protocol_from, seconds, time_left)
from deferral.cli.estimate import SizeNotes
from deferral.cli.limits import deadline, grace_for
from deferral.cli.progress import live_progress
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.protocol import Protocol
from deferral.traces.files import write_atomic
from deferral.traces.report.document import check_json



#: The most worker processes --workers takes.
MAX_WORKERS = 256


def register(sub: Any) -> None:
    p = sub.add_parser("check", help="explore every interleaving (breadth-first, exact VCPU symmetry)",
                       description="Explore every reachable state of a protocol variant at the given bounds "
                                   "and check its properties. Exit 0: all hold; 1: one is violated; "
                                   "2: bad input; 3: a limit stopped the search first.")
    add_bounds(p)
    add_variant(p)
    p.add_argument("--no-symmetry", action="store_true", help="do not reduce by VCPU symmetry")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.add_argument("--trace-out", metavar="FILE",
                   help="write the counterexample as deferral-trace/1 (FILE; with several violated "
                        "properties, FILE gets the first and FILE with the property name the others)")
    p.add_argument("--itf", metavar="FILE",
                   help="write each counterexample in Apalache's Informal Trace Format (ITF, JSON); "
                        "deferral replay reads it back")
    p.add_argument("--graph-out", metavar="FILE",
                   help=f"write the explored state graph: DOT for .dot/.gv, JSON for .json (at most "
                        f"{GRAPH_LIMIT:,} states; refused above)")
    p.add_argument("--html", metavar="FILE",
                   help="write a self-contained HTML report: verdicts, states per BFS level, "
                        "each counterexample as a timeline")
    p.add_argument("--junit", metavar="FILE",
                   help="write JUnit XML (one testcase per property; a violation is a failure with its "
                        "counterexample)")
    p.add_argument("--property", action="append", metavar="NAME", dest="properties",
                   help="check only this property (repeat for several; default: every property of the "
                        "variant); where every one checked is an invariant, the search stops once each is "
                        "violated (their shortest counterexamples found; see --explore-all)")
    p.add_argument("--explore-all", action="store_true",
                   help="go on to the last reachable state even when every property checked is already "
                        "violated (the full state count)")
    p.add_argument("--max-states", type=positive(int), metavar="K", help="stop after K stored states")
    p.add_argument("--time-limit", type=seconds(), metavar="S",
                   help="stop after S seconds (exit 3; also when a step of the variant never returns)")
    p.add_argument("--workers", type=positive(int, MAX_WORKERS), metavar="W",
                   help=f"worker threads of the vectorized search (1..{MAX_WORKERS}, default: every CPU this process may use)")
    p.add_argument("--memory-limit", type=memory_size, metavar="SIZE",
                   help="stop (exit 3, partial figures) when the search's resident memory passes SIZE "
                        "(bytes, or with K/M/G/T; 'none': no limit; default: 80%% of the memory "
                        "available when it starts)")
    p.add_argument("--checkpoint", metavar="DIR",
                   help="save the search into DIR at BFS level boundaries (atomically; see --resume)")
    p.add_argument("--checkpoint-every", type=positive(float), default=None, metavar="S",
                   help="seconds at least between checkpoints (default 60; also one at the end of the "
                        "search and one when a limit stops it)")
    p.add_argument("--resume", metavar="DIR",
                   help="go on from the checkpoint in DIR (same variant, bounds and symmetry, else exit 2); "
                        "further checkpoints go to DIR unless --checkpoint names another")
    p.add_argument("--work-dir", metavar="DIR",
                   help="spill to files in DIR (a fresh subfolder, removed at the end) instead of stopping "
                        "when the stored states outgrow memory: past a quarter of --memory-limit, or at "
                        "the limit; same results as in memory (disk full: exit 3)")
    p.add_argument("--spill-above", type=memory_size, metavar="SIZE",
                   help="advanced, with --work-dir: spill once the stored structures in memory pass SIZE "
                        "(default: a quarter of --memory-limit)")
    p.add_argument("--engine", choices=("auto", "vectorized", "plain"), default="auto",
                   help="explorer: vectorized (fast), plain (one state at a time), auto (default)")
    p.add_argument("--cluster", metavar="ADDRESS",
                   help="run the search on a Ray cluster: local:K (K workers on this machine) or a "
                        "running cluster's address (HOST:6379, auto); needs deferral[cluster]")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    check_outputs(args, "trace_out", "html", "itf", "graph_out", "junit")
    if args.cluster is not None and (args.engine == "plain" or args.workers):
        raise UsageError("--cluster runs its own workers: drop --engine plain / --workers")
    persist: dict[str, Any] = {}
    if args.checkpoint or args.resume:
        if args.engine == "plain" or args.cluster is not None:
            raise UsageError("--checkpoint/--resume need the vectorized search, not --engine plain or --cluster")
        if args.resume:
            if not (Path(args.resume) / checkpoint.FILE_NAME).is_file():
                raise UsageError(f"--resume {args.resume}: no checkpoint there")
            persist["resume_dir"] = args.resume
        if args.checkpoint:
            check_folder("--checkpoint", args.checkpoint)
            resumed_there = args.resume is not None and Path(args.resume).resolve() == Path(args.checkpoint).resolve()
            if (Path(args.checkpoint) / checkpoint.FILE_NAME).is_file() and not resumed_there:
                # a new search would overwrite it at its first save: hours of a long run lost
                raise UsageError(f"--checkpoint {args.checkpoint}: holds {checkpoint.describe(args.checkpoint)}; "
                                 f"go on from it with --resume {args.checkpoint}, or give another folder")
            persist["checkpoint_dir"] = args.checkpoint
        persist["checkpoint_every"] = 60.0 if args.checkpoint_every is None else args.checkpoint_every
    elif args.checkpoint_every is not None:
        raise UsageError("--checkpoint-every needs --checkpoint DIR (or --resume DIR)")
    if args.spill_above and not args.work_dir:
        raise UsageError("--spill-above needs --work-dir")
    if args.work_dir:
        if args.engine == "plain" or args.cluster is not None:
            raise UsageError("--work-dir needs the vectorized search, not --engine plain or --cluster")
        check_folder("--work-dir", args.work_dir)
        persist["work_dir"] = args.work_dir
        if args.spill_above:
            persist["spill_above"] = args.spill_above
    memory_limit = default_memory_limit() if args.memory_limit is None else args.memory_limit or None
    limit = args.time_limit
    levels = LevelRecorder()
    with deadline(limit, "check", grace=grace_for(limit or 0)):
        protocol = protocol_from(args)
        bounds = bounds_from(args, protocol)
        graph = graph_before_check(protocol, bounds, args) if args.graph_out else None
        basis = None
        if args.properties:
            basis = check_symmetry(protocol, bounds) if not args.no_symmetry else None
            protocol = only_properties(protocol, args.properties)
        with naming_source(protocol), live_progress(f"{protocol.name} {bounds.short()}", plain=args.json) as progress:
            if args.html:
                progress = levels.wrap(progress)
            # plain lines under --json (what rich prints off a terminal, without loading it: 35 ms)
            note = ((lambda text: print(text, file=sys.stderr, flush=True)) if args.json else
                    (lambda text: console(stderr=True).print(text, markup=False, highlight=False)))
            sizes = SizeNotes(protocol, bounds, not args.no_symmetry, memory_limit, note,
                              spills=args.work_dir is not None)
            sizes.before()
            progress = sizes.wrap(progress)
            if args.cluster is not None:
                found = cluster_search(protocol, bounds, args, progress)
                if found is None:
                    return EXIT_INTERNAL
                result = found
            else:
                try:
                    result = search(protocol, bounds, symmetry=not args.no_symmetry,
                                    max_states=args.max_states, time_limit=time_left(args, limit), progress=progress,
                                    workers=args.workers, engine=args.engine, memory_limit=memory_limit,
                                    symmetry_basis=basis, until_all_violated=not args.explore_all, **persist)
                except (checkpoint.CheckpointError, SpillError) as exc:
                    raise UsageError(str(exc)) from None
    model = result.model
    assert model is not None
    if args.html:
        from deferral.traces.html import coverage_html, search_page
        write_atomic(args.html, search_page(model, result, levels.sizes(result), coverage_html(result)))
    notice = result.stats.get("notice")
    if notice:
        console(stderr=True).print(f"[yellow]notice:[/] {notice}")
    if result.stats.get("spill_error"):
        console(stderr=True).print(f"deferral: search stopped, {result.stats['spill_error']}",
                                   markup=False, highlight=False)
    saved_in = args.checkpoint or args.resume
    if saved_in and result.stopped_by in GO_ON and (Path(saved_in) / checkpoint.FILE_NAME).is_file():
        # a long search stopped by a limit: where it is saved and how to go on, on stderr beside the progress
        console(stderr=True).print(f"deferral: stopped by {result.stopped_by} at {result.states:,} states; "
                                   f"{saved_in} holds {checkpoint.describe(saved_in)}: go on with --resume "
                                   f"{saved_in}{GO_ON[result.stopped_by]}", markup=False, highlight=False)
    write_traces(model, result, args.trace_out, args.itf)
    if graph is not None:
        write_atomic(args.graph_out, graph)
    if args.junit:
        from deferral.traces.report.junit import check_junit
        write_atomic(args.junit, check_junit(result))
    # the reports that need rich are imported only where used: a --json run does not load
    # rich (about 30 ms of start-up), its warnings are plain lines (as rich prints them off a
    # terminal), like its notes
    for warning in never_enabled_warnings(result):
        if args.json:
            print(f"warning: {warning}", file=sys.stderr, flush=True)
        else:
            console(stderr=True).print(f"[yellow]warning:[/] {warning}", highlight=False)
    if args.json:
        print(json.dumps(check_json(result)))
    else:
        from deferral.traces.report.terminal import print_check
        print_check(console(), result)
    return result.exit_code


def only_properties(protocol: Protocol, names: list[str]) -> Protocol:
    """``protocol`` with only the named properties (each named once); an unknown name is bad input."""
    known = [prop.name for prop in protocol.properties]
    for name in names:
        if name not in known:
            raise UsageError(f"--property {name}: {protocol.name} has no such property (it has: {', '.join(known)})")
    if len(set(names)) < len(names):
        raise UsageError(f"--property: a property named twice ({', '.join(names)})")
    return protocol.derive(protocol.name, doc=protocol.doc, source=protocol.source,
                           remove_properties=[name for name in known if name not in names])


#: Limits a checkpointed search can be resumed past, and what to change first.
GO_ON = {"memory-limit": " and a larger --memory-limit (or a lower --spill-above)", "time-limit": "",
         "disk-full": " once the work folder's disk has room"}


def memory_size(text: str) -> int:
    """An argparse type: a positive size in bytes ("4G", "512M", "1000000"), 0 for "none"."""
    t = text.strip().lower()
    if t in ("none", "off", "0"):
        return 0
    scale = 1
    for suffix, factor in (("k", 1 << 10), ("m", 1 << 20), ("g", 1 << 30), ("t", 1 << 40)):
        if t.endswith(suffix) or t.endswith(suffix + "b") or t.endswith(suffix + "ib"):
            t, scale = t[:t.index(suffix)], factor
            break
    try:
        value = float(t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a size like 4G, 512M or 1000000, got {text!r}") from None
    if not (value > 0 and value * scale < 1 << 60):
        raise argparse.ArgumentTypeError(f"expected a positive size, got {text!r}")
    return int(value * scale)


def check_folder(flag: str, folder: str) -> None:
    """A folder the search can write into (made if missing), checked before any work."""
    path = Path(folder)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {folder}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"{flag} {folder}: cannot make the folder ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {folder}: not writable")


def graph_before_check(protocol: Any, bounds: Any, args: argparse.Namespace) -> str:
    """The state graph as DOT or JSON text, or a UsageError (unknown extension, too many states)."""
    suffix = Path(args.graph_out).suffix.lower()
    if suffix not in (".dot", ".gv", ".json"):
        raise UsageError(f"--graph-out {args.graph_out}: give a .dot, .gv or .json file name")
    probe = search(protocol, bounds, symmetry=not args.no_symmetry, max_states=GRAPH_LIMIT + 1,
                   workers=args.workers, engine=args.engine)  # fast: counts the states first
    try:
        if not probe.complete:
            raise GraphTooLarge()
        graph = state_graph(Model(protocol, bounds), symmetry=not args.no_symmetry)
    except GraphTooLarge:
        raise UsageError(f"--graph-out: {protocol.name} at {bounds.short()} has more than {GRAPH_LIMIT:,} "
                         "states, too many for a state graph; use smaller bounds") from None
    return to_dot(graph) if suffix in (".dot", ".gv") else json.dumps(graph_json(graph)) + "\n"


class LevelRecorder:
    """Collects, from a search's progress reports, how many states each BFS level added."""

    def __init__(self) -> None:
        self.through: dict[int, int] = {0: 1}  # depth -> states stored through that level

    def wrap(self, forward: ProgressFn | None) -> ProgressFn:
        def record(p: Progress) -> None:
            self.through[p.depth] = max(self.through.get(p.depth, 0), p.states)
            if forward is not None:
                forward(p)
        return record

    def sizes(self, result: SearchResult) -> list[int]:
        """New states per level 0..depth (the last level's count is the result's total)."""
        self.through[result.depth] = result.states
        out, before = [], 0
        for d in range(result.depth + 1):
            now = max(self.through.get(d, before), before)
            out.append(now - before)
            before = now
        return out


def cluster_search(protocol: Protocol, bounds: Bounds, args: argparse.Namespace,
                   progress: ProgressFn | None) -> SearchResult | None:
    """The search on a Ray cluster (imported here only: the plain path never loads Ray).

    A failure of the cluster during the search is reported in one line and gives None:
    no verdict.
    """
    from deferral.checks.explicit.cluster import ClusterError, ClusterUnavailable, explore_cluster

    try:
        return explore_cluster(protocol, bounds, args.cluster, symmetry=not args.no_symmetry,
                               max_states=args.max_states, time_limit=args.time_limit, progress=progress,
                               until_all_violated=not args.explore_all)
    except ClusterUnavailable as exc:
        raise UsageError(str(exc)) from None
    except ClusterError as exc:
        print(f"deferral: cluster failure, no verdict: {exc}", file=sys.stderr)
        return None


def trace_paths(base: str, names: list[str]) -> list[str]:
    """The file for each violated property: ``base`` for the first, ``base``-with-name after."""
    path = Path(base)
    out = [base]
    for name in names[1:]:
        out.append(str(path.with_name(f"{path.stem}.{name}{path.suffix or '.json'}")))
    return out


def write_traces(model: Model, result: SearchResult, base: str | None, itf: str | None = None) -> None:
    """Each counterexample as deferral-trace/1 (``base``) and as ITF (``itf``), when asked."""
    violated = [o for o in result.outcomes if o.status == "violated" and o.path is not None]
    if not violated:
        return
    from deferral.traces.itf import to_itf
    from deferral.traces.replay import path_to_trace

    names = [o.name for o in violated]
    for n, outcome in enumerate(violated):
        trace = path_to_trace(model, outcome.path, outcome.name,  # type: ignore[arg-type]
                              expected={"outcome": "violates", "property": outcome.name})
        if base:
            file = trace_paths(base, names)[n]
            trace.save(file)
            outcome.trace_file = file
        if itf:
            write_atomic(trace_paths(itf, names)[n], json.dumps(to_itf(trace, model.protocol), indent=1) + "\n")
