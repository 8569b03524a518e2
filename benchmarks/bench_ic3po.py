"""Benchmark route ic3po alone: ``deferral prove --method ic3po --json --timeout T`` per variant and bounds.

Run: ``python benchmarks/bench_ic3po.py [--timeout 60] [--rows NAME ...] [--out FILE]``. Each row runs
in its own process, one after the other, and prints: variant, bounds, status, route, wall and CPU
seconds (user + system of the process), the 1-minute load average before and after, the number of
families of the invariant, and an unknown's reason. Figures go to benchmarks/PROVE.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"
#: name -> (variant arguments, bounds arguments)
ROWS: dict[str, tuple[list[str], list[str]]] = {
    "reference 2,1,1,1": ([], ["--vcpus", "2"]),
    "reference 3,1,1,1": ([], ["--vcpus", "3"]),
    "reference 4,1,1,1": ([], ["--vcpus", "4"]),
    "reference 2,2,1,1": ([], ["--vcpus", "2", "--pages", "2"]),
    "reference 3,2,1,1": ([], ["--vcpus", "3", "--pages", "2"]),
    "wait-irqs-off 2,1,1,1": (["--variant", "wait-irqs-off"], ["--vcpus", "2"]),
    **{f"{name} 2,1,1,1": (["--variant-file", str(EX / f"{name}.py")], ["--vcpus", "2"])
       for name in ("lazy_cur_clear", "lazy_waitret_clear", "mask_before_send", "drain_zaps", "lazy_ipi_return",
                    "self_ipi", "ipi_unlock_after_flush", "invlpg_sync_one")},
    "defer_all_spaces 1,1,1,1,S=2": (["--variant-file", str(EX / "defer_all_spaces.py")],
                                     ["--vcpus", "1", "--spaces", "2"]),
    "lazy_tlb_ipi 2,1,1,1,S=2": (["--variant-file", str(EX / "lazy_tlb_ipi.py")], ["--vcpus", "2", "--spaces", "2"]),
    "lazy_cur_clear 3,1,1,1": (["--variant-file", str(EX / "lazy_cur_clear.py")], ["--vcpus", "3"]),
}


def run(name: str, timeout: float) -> dict[str, object]:
    variant, bounds = ROWS[name]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load0 = os.getloadavg()[0]
    began = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "deferral.cli.main", "prove", "--method", "ic3po", "--json",
                           "--timeout", str(timeout), *variant, *bounds], capture_output=True, text=True)
    wall = time.monotonic() - began
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    try:
        doc = json.loads(proc.stdout)
    except json.JSONDecodeError:
        doc = {"status": f"exit {proc.returncode}", "reason": proc.stderr[-300:]}
    return {"row": name, "status": doc.get("status"), "route": doc.get("route"), "exit": proc.returncode,
            "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "load": [round(load0, 1), round(os.getloadavg()[0], 1)],
            "families": len(doc.get("invariant") or []), "reason": (doc.get("reason") or "")[:400]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--rows", nargs="*", default=list(ROWS), help="row names (default: all)")
    ap.add_argument("--out", type=Path, help="append each row as a JSON line")
    args = ap.parse_args()
    for name in args.rows:
        if name not in ROWS:
            sys.exit(f"bench_ic3po: no row {name!r}; rows: {', '.join(ROWS)}")
    print("| variant and bounds | result | wall / CPU (s) | load | families |")
    print("|---|---|---|---|---|")
    for name in args.rows:
        r = run(name, args.timeout)
        if args.out:
            with args.out.open("a") as f:
                f.write(json.dumps(r) + "\n")
        result = f"**{r['status']}**" if r["status"] == "proved" else f"{r['status']} ({r['reason']})"
        print(f"| {name} | {result} | {r['wall_s']} / {r['cpu_s']} | {r['load'][0]}-{r['load'][1]} | "
              f"{r['families'] or '-'} |", flush=True)


if __name__ == "__main__":
    main()
