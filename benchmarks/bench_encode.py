"""Benchmark building the Z3 encoding (checks/terms/encoding.py ``encode``): procedure calls shared or not, side by side.

Run: ``python benchmarks/bench_encode.py [--bounds 4,3,3,3,3 6,3,3,3,3 ...] [--variants reference examples/X.py ...]
[--repeat 3]``. Every cell (variant, bounds, calls shared or every call evaluated) is timed in a fresh process, the
two ways alternating, ``--repeat`` times; printed per variant and bounds: the median seconds of each way, their
ratio, and the share of procedure calls replayed (model/call_memo.py). ``encode`` is what every Z3 route builds
first at the requested bounds (prove's own process and each learner's last stage): the step instances' terms, the
invariants and the cross-check against the concrete model. Figures go to benchmarks/PROVE.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BOUNDS = ["3,2,2,3,2", "4,3,3,3,2", "4,3,3,3,3", "6,3,3,3,3"]
VARIANTS = ["reference", "examples/lazy_cur_clear.py", "examples/defer_all_spaces.py"]

CELL = """
import json, sys, time
from deferral.model import PUBLISHED, Bounds
from deferral.model.variants import load_variant_file
from deferral.checks.terms.encoding import encode
variant, bounds, shared = sys.argv[1], Bounds(*(int(x) for x in sys.argv[2].split(","))), sys.argv[3] == "1"
protocol = load_variant_file(variant) if variant.endswith(".py") else PUBLISHED[variant]
began = time.perf_counter()
enc = encode(protocol, bounds, share_calls=shared)
print(json.dumps({"seconds": time.perf_counter() - began, "instances": len(enc.model.actions)}))
"""


def cell(variant: str, bounds: str, shared: bool) -> dict[str, float]:
    """One encode in a fresh process: its seconds and step instances."""
    path = str(ROOT / variant) if variant.endswith(".py") else variant
    out = subprocess.run([sys.executable, "-c", CELL, path, bounds, "1" if shared else "0"], check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def replayed(variant: str, bounds: str) -> tuple[int, int]:
    """How many of the procedure calls of one evaluation of every step instance were replayed, of how many."""
    from deferral.checks.terms.encoding import Encoding
    from deferral.model import PUBLISHED, Bounds
    from deferral.model.call_memo import CallMemo
    from deferral.model.variants import load_variant_file

    protocol = load_variant_file(ROOT / variant) if variant.endswith(".py") else PUBLISHED[variant]
    enc = Encoding(protocol, Bounds(*(int(x) for x in bounds.split(","))))
    calls = CallMemo()
    for a in enc.model.actions:
        enc._evaluate(a.index, a.step, a.args, enc._base_vars, track_undefined=True, calls=calls)
    return calls.hits, calls.calls


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bounds", nargs="+", default=BOUNDS, help="N,V,F,Q[,S]")
    ap.add_argument("--variants", nargs="+", default=VARIANTS, help="published names or examples/NAME.py")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each cell (the median is shown)")
    args = ap.parse_args()
    print(f"{'variant':32} {'bounds':10} {'instances':>9} {'every call s':>12} {'shared s':>9} {'ratio':>6} "
          f"{'replayed':>14}")
    for bounds in args.bounds:
        for variant in args.variants:
            plain: list[float] = []
            shared: list[float] = []
            instances = 0
            for _ in range(args.repeat):  # alternating: both ways see the same load
                plain.append(cell(variant, bounds, False)["seconds"])
                got = cell(variant, bounds, True)
                shared.append(got["seconds"])
                instances = int(got["instances"])
            hits, calls = replayed(variant, bounds)
            a, b = statistics.median(plain), statistics.median(shared)
            print(f"{variant:32} {bounds:10} {instances:9d} {a:12.2f} {b:9.2f} {a / b:6.2f} {f'{hits} of {calls}':>14}",
                  flush=True)


if __name__ == "__main__":
    main()
