"""Benchmark ``deferral prove``: per variant and bounds, the route, status, seconds and lemmas, beside Spacer alone.

Run: ``python benchmarks/bench_prove.py [--groups holds,examples,held-out,bugs] [--learned] [--bounds 2,1,1,1 4,3,3,3,2 ...]
[--timeout 120] [--pdr-timeout 60] [--pdr-at 1,1,1,1 2,1,1,1]``, or ``--grid`` (below). Figures go to benchmarks/PROVE.md.

Every cell runs in its own process (``prove`` auto with ``--timeout``, as a user runs it;
Z3's answers depend on the process's earlier calls), and prints one row:

* variant, bounds, route (what settled it), status, seconds (wall of the proof inside
  the process; ``total`` adds start-up), the number of lemma families of the invariant;
* where the time goes: the seconds between ``prove``'s progress notes (``encode`` up to
  the first note: building the encoding and its cross-check; then each route by name);
* for a published bug, the bmc counterexample's length beside the explicit search's
  shortest length (model/expected.py): they must be equal;
* Spacer alone (``--method pdr``) with ``--pdr-timeout`` at the ``--pdr-at`` bounds.

Groups: ``holds`` (the reference and the published variants that hold), ``examples``
(examples/*.py, all safe, but the held-out ones), ``held-out`` (the examples kept out of the
learner's development: :data:`HELD_OUT`), ``bugs`` (every published bug at the bounds where
it shows). ``--learned`` adds, per safe cell, auto without the shipped lemmas (method
``learned``: ``--no-shipped-lemmas``), which shows whether the learning routes prove it.

``--grid`` (issue 12's goal grid): every example in examples/ with auto, the reference and
wait-irqs-off with auto ``--no-shipped-lemmas`` (method ``learned``), at 2,1,1,1 / 3,2,2,2 /
4,3,3,3, at Q = 2, 3 (2,1,1,Q) and S = 2, 3 (2,1,1,1,S; the variants of :data:`SPACES`), and
``prove --parametric`` (``param``; ``--no-shipped-lemmas`` for the two) at Q = 1, 2 and S = 2, 3
where relevant, Spacer alone and IC3PO alone (``--method pdr``, ``--method ic3po``) on the rows of
:data:`GRID_BESIDE`; ``--timeout`` per cell (60 s, the target, by default for the grid); each row is
appended to ``--out`` (JSON lines) as it finishes, so a run cut short keeps its rows, and
``--only-methods``/``--variants``/``--bounds`` pick a part.

``--methods M...`` (instead of auto and ``--learned``): these methods (auto, learned, param, param-learned,
pdr) for every safe variant of ``--groups``, each method at each ``--bounds`` in turn (``param`` and
``param-learned``, ``prove --parametric`` with and without the shipped lemmas, at ``--param-at``: 1,1,1,Q[,S]),
each row with the load at its start appended to ``--out``; ``--repeat K`` runs each cell K times and says in how
many it was proved (a learning route's course differs between runs); e.g. issue 12 item 2's table (PROVE.md, 5 Dec):
``--groups holds,examples,held-out --methods learned param-learned param --bounds 2,1,1,1 4,3,3,3 6,3,3,3
4,3,3,3,2 --timeout 60``.

``--breaks N,V,F,Q[,S] VARIANT...``: the shipped lemmas each variant makes non-inductive there
(not preserved by some step from a state where all of them hold), with the step. Each cell prints CPU seconds (user +
system of its process) beside wall: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
BOUNDS = ["2,1,1,1", "3,2,2,2", "4,3,3,3", "4,3,3,3,2", "4,3,3,3,3"]
HOLDS = ["reference", "wait-irqs-off"]
#: Safe examples written to measure generality: the learning routes (infer.py, parametric.py) were
#: not tuned to them (tests/checks/symbolic/test_examples_safe.py: HELD_OUT, the lemma each breaks).
HELD_OUT = ["examples/defer_all_spaces.py", "examples/invlpg_sync_one.py", "examples/ipi_unlock_after_flush.py"]
#: The goal grid's bounds (all variants), its queue rows and its spaces rows (the variants of SPACES).
GRID_BOUNDS, GRID_QUEUE, GRID_SPACES = ["2,1,1,1", "3,2,2,2", "4,3,3,3"], ["2,1,1,2", "2,1,1,3"], ["2,1,1,1,2", "2,1,1,1,3"]
#: Where the number of address spaces is relevant to the change (or to the shipped lemma it breaks).
SPACES = {"reference", "wait-irqs-off", "examples/defer_all_spaces.py", "examples/lazy_tlb_ipi.py",
          "examples/invlpg_sync_one.py", "examples/ipi_unlock_after_flush.py"}
#: Where the grid runs Spacer alone (``--method pdr``) and IC3PO alone (``--method ic3po``) beside auto.
GRID_BESIDE = [("reference", "2,1,1,1"), ("examples/lazy_cur_clear.py", "2,1,1,1"),
               ("examples/ipi_unlock_after_flush.py", "3,2,2,2")]
#: ``prove --parametric``'s concrete bounds in the grid (N, V, F are open): Q = 1, 2; S = 2 where relevant.
GRID_PARAMETRIC = ["1,1,1,1", "1,1,1,2"]


def _bounds(text: str) -> Any:
    from deferral.model import Bounds
    return Bounds(*(int(v) for v in text.split(",")))


def _protocol(variant: str) -> Any:
    from deferral.model import PUBLISHED
    from deferral.model.variants import load_variant_file
    return load_variant_file(ROOT / variant) if variant.endswith(".py") else PUBLISHED[variant]


def cell(variant: str, bounds: str, method: str, timeout: float) -> dict[str, Any]:
    """One proof in this process: the result and the time between progress notes."""
    from deferral.checks.symbolic.prove import prove
    start = time.monotonic()
    phases: list[tuple[str, float]] = []
    last = ["encode", start]

    def note(text: str) -> None:
        name = _phase(text)
        if name is None:
            return  # a route's own progress line: its time stays with the route
        now = time.monotonic()
        phases.append((last[0], now - last[1]))
        last[:] = [name, now]

    if method.startswith("param"):
        return parametric_cell(variant, bounds, method, timeout)
    shipped = method != "learned"
    res = prove(_protocol(variant), _bounds(bounds), "auto" if method == "learned" else method, timeout=timeout,
                note=note, shipped=shipped)
    phases.append((last[0], time.monotonic() - last[1]))
    merged: dict[str, float] = {}
    for key, secs in phases:
        merged[key] = merged.get(key, 0.0) + secs
    every = (res.for_every or {}).get("assumed_concrete")
    return {"route": res.route, "status": res.status, "seconds": res.elapsed_s, "depth": res.depth,
            "lemmas": len(res.invariant or []), "reason": res.reason, "phases": merged,
            "concrete": every, "stages": res.stages}


def cli_args(variant: str, bounds: str, method: str, timeout: float, extra: Sequence[str] = ()) -> list[str]:
    """The ``deferral prove --json`` arguments of a bounded cell (``learned``: auto without the shipped lemmas;
    ``extra``: more of them, as given)."""
    b = _bounds(bounds)
    args = ["prove", "--json", "--timeout", str(timeout), "--method", "auto" if method == "learned" else method]
    args += [f"--{d.name}={b[d.name]}" for d in b.decls]
    args += ["--no-shipped-lemmas"] if method == "learned" else []
    args += list(extra)
    return args + (["--variant-file", str(ROOT / variant)] if variant.endswith(".py") else ["--variant", variant])


def cli_row(doc: dict[str, Any], wall: float) -> dict[str, Any]:
    """A row from ``deferral prove --json``'s document (the seconds of its stages by route as the phases)."""
    if "error" in doc:  # the CLI's hard time limit (exit 3) or bad input (exit 2)
        doc["status"] = "unknown" if doc["error"].get("kind") == "limit" else "error"
    phases: dict[str, float] = {}
    for st in doc.get("stages") or []:
        phases[st["route"]] = phases.get(st["route"], 0.0) + float(st.get("seconds") or 0.0)
    return {"route": doc.get("route") or "-", "status": doc.get("status", "error"),
            "seconds": doc.get("elapsed_s") or wall, "depth": doc.get("depth"),
            "lemmas": len(doc.get("invariant") or []), "reason": doc.get("reason") or
            (doc.get("error") or {}).get("message", ""), "phases": phases,
            "concrete": (doc.get("proved_for_every") or {}).get("assumed_concrete"), "stages": doc.get("stages") or []}


def parametric_args(variant: str, bounds: str, method: str, timeout: float, extra: Sequence[str] = ()) -> list[str]:
    """The ``deferral prove --parametric --json`` arguments of a parametric cell (``param-learned``: without the
    shipped lemmas; ``extra``: more of them, as given)."""
    b = _bounds(bounds)
    args = ["prove", "--parametric", "--json", "--timeout", str(timeout), "--queue", str(b["queue"])]
    args += ["--spaces", str(b["spaces"])] if "spaces" in b else []
    args += ["--no-shipped-lemmas"] if method == "param-learned" else []
    args += list(extra)
    return args + (["--variant-file", str(ROOT / variant)] if variant.endswith(".py") else ["--variant", variant])


def parametric_row(doc: dict[str, Any], wall: float) -> dict[str, Any]:
    """A row from ``deferral prove --parametric --json``'s document."""
    source = doc.get("lemma_source") or ""
    row = cli_row(doc, wall)
    row.update(route="parametric" + (" (learned)" if source.startswith("learned") else ""), depth=None,
               lemmas=len(doc.get("lemmas") or []), phases={}, concrete=doc.get("assumed_concrete"), stages=[])
    return row


def parametric_cell(variant: str, bounds: str, method: str, timeout: float) -> dict[str, Any]:
    """``prove --parametric`` through the CLI's main() in this process (BENCH_IN_PROCESS=1)."""
    import contextlib
    import io

    from deferral.cli.main import main as cli

    out = io.StringIO()
    start = time.monotonic()
    with contextlib.redirect_stdout(out):
        cli(parametric_args(variant, bounds, method, timeout))
    return parametric_row(json.loads(out.getvalue().strip().splitlines()[-1]), time.monotonic() - start)


def _phase(note: str) -> str | None:
    """The phase a progress note of auto starts (``bmc``, ``shipped``, ``learned``, ``pdr``...), if any."""
    for key, name in (("out-of-domain", "domain"), ("explicit search", "explicit"), ("(parametric", "parametric"),
                      ("learn: sampling", "sampling"), ("enumerating lemma families", "enumerating"),
                      ("learn: first families", "bounded learning"), ("learn: round", "houdini rounds"),
                      ("learn: trimming", "trim+proof"), ("Houdini over", "houdini+induction"), ("learning", "learned"),
                      ("Spacer infers", "pdr-generalized"), ("bounded model", "bmc"), ("bmc", "bmc"),
                      ("Spacer (pdr)", "pdr"), ("pdr: Spacer", "pdr")):
        if key in note:
            if key == "Houdini over":
                if not note.startswith("auto: "):
                    return None  # a route's own Houdini (parametric's): its time stays with the route
                return note.split("Houdini over ")[1].split(" lemma")[0].split(" ", 1)[1]  # "shipped"...
            return name
    return None


def run_cell(variant: str, bounds: str, method: str, timeout: float, extra: Sequence[str] = ()) -> dict[str, Any]:
    """One cell in a fresh process (a bounded one: ``deferral prove --json`` itself; else :func:`cell`); wall and
    CPU seconds of the whole process beside it."""
    import resource

    # a cell is the CLI itself, started as a user starts it: a learning route's course depends on what the process
    # built and allocated before it (the reference at 4,3,3,3,S=2 without the shipped lemmas: proved in 22.8 s by
    # `deferral prove`, unknown 3 of 3 by prove() called in this script's process, and 2 of 2 by the CLI's main()
    # called there; PROVE.md, 6 Dec, morning; --parametric at S=2: 0 of 12 through main() in this script, where
    # `deferral prove` proved two of them in 25 and 40 s; 6 Dec, s23); BENCH_IN_PROCESS=1: prove() or main() there
    direct = os.environ.get("BENCH_IN_PROCESS") != "1"
    args = (parametric_args(variant, bounds, method, timeout, extra) if method.startswith("param")
            else cli_args(variant, bounds, method, timeout, extra))
    command = ([sys.executable, "-m", "deferral.cli", *args] if direct
               else [sys.executable, __file__, "--cell", variant, bounds, method, str(timeout)])
    start, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=os.environ, timeout=timeout * 2 + 120)
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if direct and out.stdout.strip().startswith("{"):  # any exit code: the JSON says what happened
        doc = json.loads(out.stdout.strip().splitlines()[-1])
        row = parametric_row(doc, wall) if method.startswith("param") else cli_row(doc, wall)
        row["total"], row["cpu"] = wall, cpu
        return row
    if out.returncode != 0:
        return {"route": "-", "status": f"error {out.returncode}", "seconds": wall, "lemmas": 0, "depth": None,
                "reason": out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "", "phases": {},
                "total": wall, "cpu": cpu}
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row["total"], row["cpu"] = wall, cpu
    return row


def show(variant: str, bounds: str, method: str, row: dict[str, Any], expected: int | None = None) -> None:
    phases = ", ".join(f"{k} {v:.1f}" for k, v in row["phases"].items() if v >= 0.05)
    length = "" if expected is None else f" length {row['depth']} (explicit {expected})"
    why = "" if row["status"] in ("proved", "violated") else f"  [{(row['reason'] or '')[:300]}]"
    concrete = "" if not row.get("concrete") else " at " + ",".join(f"{k}={v}" for k, v in row["concrete"].items())
    print(f"{Path(variant).name:22} {bounds:10} {method:7} {row['route'] + concrete:36} {row['status']:9} "
          f"{row['seconds']:7.1f} s ({row['total']:6.1f} total, {row.get('cpu', 0):6.1f} CPU) {row['lemmas']:4} lemmas"
          f"{length}  <{phases}>{why}", flush=True)


def grid_cells(examples: list[str]) -> list[tuple[str, str, str]]:
    """The goal grid's (variant, bounds, method) cells, the main rows first: auto at GRID_BOUNDS,
    --parametric at Q=1, then the queue and spaces rows."""
    variants = HOLDS + examples
    auto = [(v, b, "learned" if v in HOLDS else "auto") for b in GRID_BOUNDS + GRID_QUEUE + GRID_SPACES
            for v in variants if b not in GRID_SPACES or v in SPACES]
    param = [(v, b, "param-learned" if v in HOLDS else "param") for b in GRID_PARAMETRIC + ["1,1,1,1,2", "1,1,1,1,3"]
             for v in variants if b.count(",") < 4 or v in SPACES]
    main = len(GRID_BOUNDS) * len(variants)
    beside = [(v, b, m) for v, b in GRID_BESIDE for m in ("pdr", "ic3po")]
    return auto[:main] + beside + param[:len(variants)] + auto[main:] + param[len(variants):]


def run_grid(args: argparse.Namespace, examples: list[str]) -> None:
    """Run the goal grid's cells (filtered), each row printed and appended to ``args.out``."""
    timeout = args.timeout if args.timeout_given else 60.0
    for variant, b, method in grid_cells(examples):
        if (args.variants and variant not in args.variants) or (args.only_methods and method not in args.only_methods):
            continue
        if args.bounds_given and b not in args.bounds:
            continue
        load = os.getloadavg()[0]
        row = run_cell(variant, b, method, timeout)
        row.update(variant=variant, bounds=b, method=method, timeout=timeout, load=round(load, 2))
        show(variant, b, method, row)
        if args.out:
            with open(args.out, "a") as fh:
                fh.write(json.dumps(row) + "\n")


def run_methods(args: argparse.Namespace, variants: list[str]) -> None:
    """``--methods``: each method at each bounds (the param ones at ``--param-at``), every variant in
    turn, each row printed with the load at its start and appended to ``args.out``; with ``--repeat K``
    every cell K times (each run a fresh process) and a line per cell: proved in how many of the K, and
    the seconds of those (one run of a learning route is one draw: the same command took 5 or 7 of 12
    at 4,3,3,3,S=2, PROVE.md, 6 Dec, morning)."""
    summary: list[str] = []
    for method in args.methods:
        for b in args.param_at if method.startswith("param") else args.bounds:
            for variant in variants:
                proved: list[float] = []
                for run in range(args.repeat):
                    load = os.getloadavg()[0]
                    row = run_cell(variant, b, method, args.timeout, shlex.split(args.prove_args))
                    row.update(variant=variant, bounds=b, method=method, timeout=args.timeout, load=round(load, 2),
                               run=run + 1)
                    show(variant, b, method, row)
                    if row.get("status") == "proved":
                        proved.append(float(row.get("seconds") or 0.0))
                    if args.out:
                        with open(args.out, "a") as fh:
                            fh.write(json.dumps(row) + "\n")
                if args.repeat > 1:
                    line = (f"{Path(variant).name:24} {b:10} {method:14} proved {len(proved)} of {args.repeat}"
                            + (f" ({', '.join(f'{s:.1f}' for s in proved)} s)" if proved else ""))
                    summary.append(line)
                    print(line, flush=True)
    if summary:
        print("\nproved per cell:\n" + "\n".join(summary), flush=True)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--breaks":  # --breaks N,V,F,Q[,S] VARIANT...
        for variant in sys.argv[3:]:
            from deferral.checks.symbolic.prove import broken_lemmas

            found = broken_lemmas(_protocol(variant), _bounds(sys.argv[2]))
            print(f"{Path(variant).name:22} {sys.argv[2]:10} " + ("; ".join(f"{n} (not preserved by {a})"
                                                                             for n, a in found) or "none"), flush=True)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--cell":
        variant, bounds, method, timeout = sys.argv[2:6]
        print(json.dumps(cell(variant, bounds, method, float(timeout))))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--groups", default="holds,examples,held-out,bugs",
                    help="holds, examples, held-out, bugs (comma-separated)")
    ap.add_argument("--bounds", nargs="+", default=BOUNDS, help="N,V,F,Q[,S] for holds and examples")
    ap.add_argument("--timeout", type=float, default=120.0, help="prove auto's --timeout per cell")
    ap.add_argument("--pdr-timeout", type=float, default=60.0, help="Spacer alone's time limit per cell")
    ap.add_argument("--pdr-at", nargs="*", default=["1,1,1,1", "2,1,1,1"], help="bounds where Spacer alone runs")
    ap.add_argument("--variants", nargs="*", help="only these (names, or examples/NAME.py)")
    ap.add_argument("--learned", action="store_true", help="also auto without the shipped lemmas, per safe cell")
    ap.add_argument("--methods", nargs="+", choices=["auto", "learned", "param", "param-learned", "pdr"],
                    help="instead of auto (and --learned): these methods per safe cell, bounds first (every "
                         "variant at the first bounds, then the next); the param methods at --param-at only")
    ap.add_argument("--param-at", nargs="+", default=["1,1,1,1"],
                    help="--methods param/param-learned: their concrete Q (and S) as 1,1,1,Q[,S]")
    ap.add_argument("--repeat", type=int, default=1,
                    help="--methods: run every cell this many times and say in how many it was proved")
    ap.add_argument("--prove-args", default="",
                    help="--methods: more arguments for each bounded cell's deferral prove (such as '--learners 1')")
    ap.add_argument("--grid", action="store_true", help="the goal grid (see the module docstring)")
    ap.add_argument("--only-methods", nargs="*",
                    help="--grid: only these methods (auto, learned, param, param-learned, pdr, ic3po)")
    ap.add_argument("--out", help="--grid, --methods: append each row to this file (JSON lines)")
    args = ap.parse_args()
    args.timeout_given = "--timeout" in sys.argv
    args.bounds_given = "--bounds" in sys.argv
    groups = args.groups.split(",")
    try:
        load = os.getloadavg()
        print(f"load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {os.cpu_count()} CPUs", flush=True)
    except OSError:
        pass
    examples = sorted(f"examples/{p.name}" for p in (ROOT / "examples").glob("*.py"))
    if args.grid:
        run_grid(args, examples)
        return
    safe = (HOLDS if "holds" in groups else []) + (
        [e for e in examples if e not in HELD_OUT] if "examples" in groups else []) + (
        HELD_OUT if "held-out" in groups else [])
    if args.methods:
        run_methods(args, [v for v in safe if not args.variants or v in args.variants])
        safe = []
    for variant in safe:
        if args.variants and variant not in args.variants:
            continue
        for b in args.bounds:
            for method in ("auto", "learned") if args.learned else ("auto",):
                show(variant, b, method, run_cell(variant, b, method, args.timeout))
        for b in args.pdr_at:
            show(variant, b, "pdr", run_cell(variant, b, "pdr", args.pdr_timeout))
    if "bugs" in groups:
        from deferral.model.expected import SPACES_VERDICTS, VERDICTS
        for name, (b, _prop, length) in {**VERDICTS, **SPACES_VERDICTS}.items():
            if length is None or (args.variants and name not in args.variants):
                continue  # wait-irqs-off: its invariants hold (a liveness bug)
            text = ",".join(map(str, b))
            show(name, text, "auto", run_cell(name, text, "auto", args.timeout), expected=length)
    try:
        load = os.getloadavg()
        print(f"load average at end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
    except OSError:
        pass


if __name__ == "__main__":
    main()
