"""Benchmark: kill/resume and limit scenarios of ``deferral check``, with figures.

    python benchmarks/bench_limits.py                        # bounds 2,2,1,2
    python benchmarks/bench_limits.py --bounds 2,1,2,2 --kills 3

Scenarios, each with whole ``deferral check --json`` processes:

1. **uninterrupted**: the reference figures (states, transitions, verdicts, lengths).
2. **kill -9 and resume**: ``--checkpoint DIR --checkpoint-every S`` killed with SIGKILL
   after ``--kills`` different amounts of CPU time, each time resumed with ``--resume DIR``
   and killed again, then resumed to the end; the final figures must equal (1).
3. **memory limit**: ``--memory-limit`` at 64 MiB, 96 MiB, a quarter and a half of the
   uninterrupted run's peak: exit 3, states reached, peak resident memory against the limit.
4. **time limit**: ``--time-limit`` at a third of the uninterrupted run's time: exit 3, how
   far past the limit the search stopped.
5. **disk spill**: ``--work-dir DIR --spill-above`` a tenth of what the uninterrupted run
   stored (``--memory-limit`` at 1.5 times its peak, a safety): it must end with the
   uninterrupted figures and leave DIR empty; its peak is printed beside. A limit below the
   in-memory peak does not work yet at 2,2,1,2: after a spill a level's merge has more
   candidates (keys already on disk), and the limit's estimate of the merge stops the search.
6. **kill -9 and resume a spilling search**: ``--work-dir`` with a small ``--spill-above`` and
   ``--checkpoint`` every level, killed ``--kills`` times and resumed to the end (the work folder
   beside the checkpoint, whose files are then hard-linked, not copied, into it), against the
   same with the work folder on another file system (``--copy-dir``, default /dev/shm: the
   files are copied into each checkpoint): the bytes each checkpoint wrote and the seconds all
   of them took, and whether both end with the uninterrupted figures.

Prints one line per run and "same as uninterrupted: yes/no". The machine's load changes
the seconds; the equalities must hold whatever the load.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def cli() -> list[str]:
    exe = Path(sys.executable).parent / "deferral"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "deferral.cli"]


def bound_flags(bounds: str) -> list[str]:
    n, v, f, q = bounds.split(",")
    return ["--vcpus", n, "--pages", v, "--frames", f, "--queue", q]


def cpu_s(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(args: list[str]) -> tuple[int, dict, float, int]:
    """(exit code, JSON result or {}, wall seconds, peak RSS bytes the search reported)."""
    start = time.monotonic()
    proc = subprocess.run([*cli(), "check", *args, "--json"], capture_output=True, text=True)
    wall = time.monotonic() - start
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        out = {}
    return proc.returncode, out, wall, int(out.get("stats", {}).get("peak_rss_bytes", 0))


def summary(out: dict) -> tuple:
    return (out.get("states"), out.get("transitions"), out.get("depth"),
            tuple((p["name"], p["status"], p["length"]) for p in out.get("properties", [])))


def kill_after_cpu(args: list[str], seconds: float) -> str:
    """Start a check, SIGKILL it after ``seconds`` of its CPU; 'killed' or how it ended."""
    proc = subprocess.Popen([*cli(), "check", *args, "--json"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    while proc.poll() is None:
        try:
            if cpu_s(proc.pid) >= seconds:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                return "killed"
        except OSError:
            break
        time.sleep(0.02)
    proc.wait()
    return f"ended (exit {proc.returncode})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bounds", default="2,2,1,2")
    ap.add_argument("--kills", type=int, default=3)
    ap.add_argument("--checkpoint-every", default="1")
    ap.add_argument("--copy-dir", default="/dev/shm",
                    help="a folder on another file system than the temporary folder, for scenario 6's copies")
    ns = ap.parse_args()
    flags = bound_flags(ns.bounds)
    print(f"deferral check at {ns.bounds}; machine load average {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} cores")

    code, whole, wall, peak = run(flags)
    cpu_total = whole.get("elapsed_s", wall)
    print(f"uninterrupted     exit {code}  {whole.get('states'):,} states  {whole.get('transitions'):,} "
          f"transitions  {wall:.1f} s wall  peak {peak / 2**20:.0f} MiB  verdicts {summary(whole)[3]}")

    with tempfile.TemporaryDirectory() as folder:
        ck = ["--checkpoint", folder, "--checkpoint-every", ns.checkpoint_every]
        kills = 0
        for k in range(ns.kills):
            at = 1.0 + (k + 1) * max(0.5, cpu_total / (ns.kills + 2))
            resume = ["--resume", folder] if (Path(folder) / "checkpoint.npz").exists() else []
            what = kill_after_cpu([*flags, *ck, *resume], at)
            kills += what == "killed"
            size = (Path(folder) / "checkpoint.npz").stat().st_size if (Path(folder) / "checkpoint.npz").exists() else 0
            print(f"kill -9 #{k + 1}        after {at:.1f} s CPU: {what}; checkpoint {size / 2**20:.1f} MiB")
        code, resumed, wall, peak = run([*flags, "--resume", folder, "--checkpoint-every", ns.checkpoint_every])
        same = summary(resumed) == summary(whole)
        print(f"resumed to end    exit {code}  {resumed.get('states'):,} states  {wall:.1f} s wall  "
              f"{kills} kills  same as uninterrupted: {'yes' if same else 'NO'}")

    held = True
    for limit in sorted({64 << 20, 96 << 20, max(96 << 20, peak // 4), max(128 << 20, peak // 2)}):
        code, part, wall, peak2 = run([*flags, "--memory-limit", str(limit)])
        held &= peak2 <= limit or code == 0
        print(f"memory limit      {limit / 2**20:.0f} MiB: exit {code}  stopped by {part.get('stopped_by')}  "
              f"{part.get('states', 0):,} states  peak {peak2 / 2**20:.0f} MiB ({peak2 / limit:.2f} x limit)")

    t = max(1.0, cpu_total / 3)
    code, part, wall, _ = run([*flags, "--time-limit", f"{t:.1f}"])
    print(f"time limit        {t:.1f} s: exit {code}  stopped by {part.get('stopped_by')} at {part.get('elapsed_s', 0):.2f} s "
          f"({part.get('elapsed_s', 0) - t:+.2f} s past the limit)  {part.get('states', 0):,} states  "
          f"{wall:.1f} s wall with start-up")
    print(f"memory limit held in every run: {'yes' if held else 'NO'}")

    stored = int(whole.get("stats", {}).get("bytes_per_state", 0) * whole.get("states", 0))
    limit = int(1.5 * peak)
    with tempfile.TemporaryDirectory() as folder:
        code, spilled, wall, peak3 = run([*flags, "--work-dir", folder, "--spill-above", str(max(1, stored // 10)),
                                          "--memory-limit", str(limit)])
        left = list(Path(folder).iterdir())
    stats = spilled.get("stats", {})
    spill_same = summary(spilled) == summary(whole) and not left
    print(f"disk spill        above {stored // 10 / 2**20:.0f} MiB, limit {limit / 2**20:.0f} MiB: exit {code}  "
          f"{stats.get('spills', 0)} spills  {stats.get('spilled_bytes', 0) / 2**20:.0f} MiB written  "
          f"{wall:.1f} s wall  peak {peak3 / 2**20:.0f} MiB  same as uninterrupted: {'yes' if spill_same else 'NO'}")
    linked_same = True
    for how in ("linked", "copied"):
        base = tempfile.gettempdir() if how == "linked" else ns.copy_dir
        if not os.path.isdir(base):
            print(f"spill + kill -9   {how}: {base} is not a folder, skipped")
            continue
        with tempfile.TemporaryDirectory() as folder, tempfile.TemporaryDirectory(dir=base) as work:
            spill = [*flags, "--work-dir", work, "--spill-above", str(max(1, stored // 10)),
                     "--checkpoint-every", "0.001"]
            kills = 0
            for k in range(ns.kills):
                at = 1.0 + (k + 1) * max(0.5, 2 * cpu_total / (ns.kills + 2))
                resume = ["--resume", folder] if (Path(folder) / "checkpoint.npz").exists() else ["--checkpoint", folder]
                kills += kill_after_cpu([*spill, *resume], at) == "killed"
            code, resumed, wall, _ = run([*spill, "--resume", folder])
            stats = resumed.get("stats", {})
            ok = summary(resumed) == summary(whole)
            linked_same &= ok
            print(f"spill + kill -9   {how:6s}: {kills} kills, resumed to end exit {code}  "
                  f"{stats.get('checkpoints_written', 0)} checkpoints in {stats.get('checkpoint_seconds', 0):.2f} s, "
                  f"the last {stats.get('checkpoint_bytes', 0) / 2**20:.1f} MiB written + "
                  f"{stats.get('checkpoint_linked_bytes', 0) / 2**20:.1f} MiB linked  {wall:.1f} s wall  "
                  f"same as uninterrupted: {'yes' if ok else 'NO'}")
    return 0 if same and held and spill_same and linked_same else 1


if __name__ == "__main__":
    sys.exit(main())
