"""Benchmark ``deferral prove``: how far each Z3 route reaches, and how long it takes.

Run: ``/tmp/venv/bin/python benchmarks/bench_prove.py [--pdr] [--mutants]``. Prints one line
per run (variant, bounds, method, route, status, seconds). Figures go to benchmarks/PROVE.md.
"""

from __future__ import annotations

import argparse
import time

from deferral.checks.prove import prove
from deferral.model import PUBLISHED, Bounds

#: PROTOCOL.md's configurations, then the issue's larger ones, then the largest allowed.
AUTO = [(1, 1, 1, 1), (2, 1, 1, 1), (2, 1, 2, 2), (3, 1, 1, 2), (2, 2, 1, 1), (2, 2, 2, 2),
        (3, 2, 1, 2), (3, 2, 2, 2), (4, 2, 2, 2), (3, 3, 3, 3), (4, 3, 3, 3)]
PDR = [(1, 1, 1, 1), (2, 1, 1, 1), (2, 2, 1, 2)]
MUTANTS = {"drain-local-only": (2, 1, 1, 1), "ipi-before-drain": (2, 1, 1, 1), "remote-no-drain": (2, 1, 1, 1),
           "reload-no-drain": (2, 1, 1, 1), "overflow-drop": (2, 2, 1, 1), "wait-irqs-off": (2, 1, 1, 1)}


def once(variant: str, b: tuple[int, int, int, int], method: str, timeout: float) -> None:
    start = time.monotonic()
    res = prove(PUBLISHED[variant], Bounds(*b), method, timeout=timeout)
    print(f"{variant:18} {Bounds(*b).short():18} {method:9} {res.route:18} {res.status:9} "
          f"{'' if res.depth is None else res.depth:>3} {time.monotonic() - start:8.1f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pdr", action="store_true", help="also Spacer alone (slow)")
    ap.add_argument("--mutants", action="store_true", help="also every published mutant, by auto and pdr")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    for b in AUTO:
        once("reference", b, "auto", args.timeout)
    if args.pdr:
        for b in PDR:
            once("reference", b, "pdr", args.timeout)
    if args.mutants:
        for name, b in MUTANTS.items():
            once(name, b, "auto", args.timeout)
            once(name, b, "pdr", args.timeout)


if __name__ == "__main__":
    main()
