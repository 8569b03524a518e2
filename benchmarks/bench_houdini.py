"""Benchmark one bounded Houdini of the learning (checks/symbolic/relevance.py) over fixed families: its time alone.

Run: ``python benchmarks/bench_houdini.py save DIR [--variants ...]``, once: per variant, the first learning stage
(at 2,1,1,3,2, as `prove` at 4,3,3,3,S=2 learns it) and its Houdini fixpoint written to ``DIR/<variant>.json`` as
``--lemmas`` entries. Then ``python benchmarks/bench_houdini.py time DIR [--variants ...] [--at 3,2,2,3,2]``: per
variant, those families rebuilt, and Houdini at ``--at`` from them with no property assumed (their greatest inductive
subset there: the same set whichever counterexamples Z3 gives, so checkouts time the same work), then the unsat cores
of what the property needs, where that subset preserves it; printed: families in and kept, and seconds of each. The
families are the same for every checkout that reads DIR (a learning's course follows the code: two checkouts would
otherwise time different families), so two checkouts compare side by side:
``farm-bench --vs "B/.venv/bin/python B/benchmarks/bench_houdini.py time DIR" -- A/.venv/bin/python
A/benchmarks/bench_houdini.py time DIR``. Figures go to benchmarks/PROVE.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = ["examples/defer_all_spaces.py", "examples/self_ipi.py", "reference"]


def _bounds(text: str) -> Any:
    from deferral.model import Bounds

    return Bounds(*(int(x) for x in text.split(",")))


def _protocol(variant: str) -> Any:
    from deferral.model import PUBLISHED
    from deferral.model.variants import load_variant_file

    return load_variant_file(ROOT / variant) if variant.endswith(".py") else PUBLISHED[variant]


def _file(where: Path, variant: str) -> Path:
    return where / (Path(variant).stem + ".json")


def save(variant: str, where: Path) -> int:
    """The first stage's fixpoint of ``variant`` (as `prove` at 4,3,3,3,S=2 learns it), written to ``where``."""
    from deferral.checks.symbolic import clauses

    protocol = _protocol(variant)
    bounds = _bounds("4,3,3,3,2")
    first = clauses.stage_bounds(protocol, bounds)[0]
    got = clauses.learn(protocol, clauses.plan(protocol, {"queue": 3, "spaces": 2}, within=bounds), [first])
    docs = [clauses.entry(lem) for lem in got.stages[-1].alive if isinstance(lem, clauses.Clause)]
    _file(where, variant).write_text(json.dumps(docs))
    return len(docs)


def timed(variant: str, where: Path, at: Any) -> dict[str, Any]:
    """Houdini at ``at`` over the saved families of ``variant``, then the property's unsat cores: seconds of each."""
    from deferral.checks.symbolic import clauses
    from deferral.checks.symbolic.infer import property_lemmas
    from deferral.checks.symbolic.relevance import Relevance

    protocol = _protocol(variant)
    families = clauses.from_entries(json.loads(_file(where, variant).read_text()), protocol, at)
    must = property_lemmas(protocol)
    t0 = time.perf_counter()
    rel = Relevance(protocol, at)
    alive, _, _ = rel.houdini(families, [], None)
    t1 = time.perf_counter()
    needed = rel.support(alive, must, None)
    t2 = time.perf_counter()
    return {"variant": variant, "in": len(families), "kept": len(alive), "preserved": needed is not None,
            "needed": None if needed is None else len(needed), "houdini_s": t1 - t0, "cores_s": t2 - t1}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["save", "time"])
    ap.add_argument("dir", type=Path)
    ap.add_argument("--variants", nargs="*", default=VARIANTS)
    ap.add_argument("--at", default="3,2,2,3,2", help="N,V,F,Q,S of the timed Houdini")
    args = ap.parse_args(argv)
    if args.what == "save":
        args.dir.mkdir(parents=True, exist_ok=True)
        for v in args.variants:
            print(f"{v:34} {save(v, args.dir)} families saved", flush=True)
        return 0
    missing = [v for v in args.variants if not _file(args.dir, v).exists()]
    if missing:
        print(f"bench_houdini: no saved families for {missing[0]} in {args.dir} (run 'save' first)", file=sys.stderr)
        return 2
    for v in args.variants:
        r = timed(v, args.dir, _bounds(args.at))
        said = "preserved" if r["preserved"] else "not preserved"
        print(f"{v:34} {r['in']:4} in, {r['kept']:4} kept, property {said}; houdini {r['houdini_s']:5.2f} s, "
              f"cores {r['cores_s']:5.2f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
