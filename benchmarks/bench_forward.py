"""Benchmark Houdini's counterexamples run forward (checks/symbolic/forward.py): one bounded Houdini, with and without.

Run: ``python benchmarks/bench_forward.py [--variants reference examples/drain_zaps.py ...] [--sample 2,1,1,3,2]
[--at 3,2,2,3,2]``. Per variant: the families enumerated from the reachable states of the smallest instance and the
learning's walks (as the enumerated route samples them), then Houdini over all of them at ``--at`` (no property
assumed: its greatest inductive subset, one set whichever way it is reached), once by the solver's queries alone and
once with every counterexample run forward, side by side in one process; printed: the fixpoint's size (the same
both ways, checked), the solver's queries that dropped something, the families forward dropped, and seconds (forward's
own share in brackets). Figures go to benchmarks/PROVE.md.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _bounds(text: str) -> Any:
    from deferral.model import Bounds

    return Bounds(*(int(x) for x in text.split(",")))


def _protocol(variant: str) -> Any:
    from deferral.model import PUBLISHED
    from deferral.model.variants import load_variant_file

    return load_variant_file(ROOT / variant) if variant.endswith(".py") else PUBLISHED[variant]


def one(variant: str, sample: Any, at: Any) -> dict[str, Any]:
    """Houdini at ``at`` over the families enumerated from ``sample``'s states and walks at ``at``, both ways."""
    from deferral.checks.symbolic import clauses
    from deferral.checks.symbolic.forward import Forward
    from deferral.checks.symbolic.paramlearn import walk_rows
    from deferral.checks.symbolic.relevance import Relevance
    from deferral.checks.symbolic.vocabulary import sample_rows
    from deferral.model.concrete import Model

    protocol = _protocol(variant)
    rows = [(sample, sample_rows(protocol, sample, cap=clauses.FIRST_CAP, spread=clauses.FIRST_SPREAD)),
            (at, walk_rows(Model(protocol, at), walkers=clauses.WALKERS, depth=clauses.WALK_DEPTH,
                           cap=clauses.WALK_CAP))]
    found = clauses.enumerate_all(protocol, rows)
    out: dict[str, Any] = {"variant": variant, "families": len(found.families)}
    for how in ("solver alone", "forward"):
        rel = Relevance(protocol, at)
        forward = Forward(protocol, at, found.signatures) if how == "forward" else None
        t0 = time.monotonic()
        alive, _, _ = rel.houdini(found.families, [], None, forward=forward)
        out[how] = {"kept": len(alive), "queries": len(rel.dropped), "seconds": round(time.monotonic() - t0, 2),
                    "forward_dropped": forward.dropped if forward else 0,
                    "forward_seconds": round(forward.seconds, 2) if forward else 0.0,
                    "names": sorted(x.name for x in alive)}
    if out["solver alone"]["names"] != out["forward"]["names"]:
        raise SystemExit(f"{variant}: the two fixpoints differ (a bug in forward.py)")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variants", nargs="+", default=["reference", "wait-irqs-off", "examples/drain_zaps.py",
                                                       "examples/lazy_tlb_ipi.py", "examples/defer_all_spaces.py"])
    ap.add_argument("--sample", default="2,1,1,3,2", help="the exhaustive sample's bounds (N,V,F,Q[,S])")
    ap.add_argument("--at", default="3,2,2,3,2", help="Houdini's bounds, also walked for the sample")
    args = ap.parse_args(argv)
    sample, at = _bounds(args.sample), _bounds(args.at)
    print(f"Houdini at {at.short()} over the families enumerated from {sample.short()} and walks at {at.short()}")
    print(f"{'variant':32} {'families':>8} {'kept':>5}   {'solver alone':>22}   {'run forward':>40}")
    for variant in args.variants:
        r = one(variant, sample, at)
        a, f = r["solver alone"], r["forward"]
        print(f"{variant:32} {r['families']:8} {a['kept']:5}   {a['queries']:5} queries {a['seconds']:7.1f} s   "
              f"{f['queries']:5} queries +{f['forward_dropped']:5} ahead {f['seconds']:7.1f} s "
              f"({f['forward_seconds']:.1f} forward)  x{a['seconds'] / max(f['seconds'], 0.01):.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
