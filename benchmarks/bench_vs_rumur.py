"""Benchmark: ``deferral check`` against the Rumur peer on the same bounds, symmetry on in both.

Run from a clone (``shared/`` is found beside the repository as ``../shared``, or beside a
folder above it, as for a git worktree kept in a subfolder; ``--shared`` names it)::

    python benchmarks/bench_vs_rumur.py                 # the standard bounds, one and two spaces
    python benchmarks/bench_vs_rumur.py --bounds 3,1,1,2 --no-symmetry-too
    python benchmarks/bench_vs_rumur.py --bounds 2,1,1,1,2  # N,V,F,Q,S: address spaces
    python benchmarks/bench_vs_rumur.py --bounds 1,2,1,1,2 --repeat 3  # medians of 3 runs each

The package is byte-compiled first (as ``pip install`` does), and before each timed deferral
run an untimed one, the same command cut at 300,000 states, is what a user's earlier run at
those bounds is: any search past 16,384 states builds the model's compiled C loop (in the
background, or for its first level of 32,768 rows) and leaves it cached, once per machine and
model, so the timed run finds it (see README "Performance": what a first run pays). For each bound
it runs, as whole processes timed by ``/usr/bin/time`` (wall seconds, CPU seconds: user and
system of the process and its children, peak resident memory of the process tree):

* ``deferral check --json --vcpus N --pages V --frames F --queue Q`` (the installed CLI);
* ``bash ../shared/peers/run-rumur ../shared/peers/deferral.m N V F Q none`` (generates C
  with Rumur, compiles it with ``cc -O3``, runs the verifier: all of that is the process);
  with a fifth bound S (address spaces, ``--spaces S``) the peer is
  ``run-rumur-spaces ../shared/peers/spaces.m N V F Q S none`` instead.

and prints per tool: states, seconds, states/s, peak memory, bytes per stored state and
the ratio deferral/rumur of states/s, then CPU seconds and the ratio of states per CPU-second
(the fairer figure when other jobs share the machine: wall time counts their share). Rumur's default symmetry reduction is heuristic, so
its state count can be above the exact orbit count deferral reports; both are printed,
and states/s uses each tool's own count. Rumur also prints its own verification time
(whole seconds), shown as ``rumur-verify``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
#: the untimed warm-up's bound (a user's earlier run, cut): past fused.BUILD_FROM states it builds the loop
WARM_UP_STATES = 300_000
PACKAGE_DIRS = ("model", "checks", "traces", "engine", "cli")
DEFAULT_BOUNDS = ["2,2,1,2", "3,1,1,2", "3,1,2,2", "1,2,1,1,2", "2,1,1,1,2"]


@dataclass
class Run:
    tool: str
    states: int | None
    seconds: float
    peak_kib: int
    bytes_per_state: float | None
    note: str = ""
    cpu_seconds: float = 0.0  # user + system, the whole process and its children

    @property
    def rate(self) -> float | None:
        return None if not self.states or self.seconds <= 0 else self.states / self.seconds

    @property
    def cpu_rate(self) -> float | None:
        return None if not self.states or self.cpu_seconds <= 0 else self.states / self.cpu_seconds


def timed(cmd: list[str], cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[str], float, int, float]:
    """Run ``cmd`` under /usr/bin/time: (result, wall seconds, peak RSS in KiB, CPU seconds:
    user + system of the process and the children it waited for)."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as t:
        full = ["/usr/bin/time", "-f", "%e %M %U %S", "-o", t.name, *cmd]
        proc = subprocess.run(full, capture_output=True, text=True, cwd=cwd)
        fields = Path(t.name).read_text().strip().splitlines()[-1].split()
    return proc, float(fields[0]), int(fields[1]), float(fields[2]) + float(fields[3])


def default_shared() -> Path:
    """The shared/ folder beside the repository, or beside a folder above it (a git worktree
    kept in a subfolder of the checkout's parent)."""
    for parent in REPO.parents:
        if (parent / "shared" / "peers").is_dir():
            return parent / "shared"
    return REPO.parent / "shared"


def deferral_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "deferral"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("deferral")
    if found:
        return [found]
    return [sys.executable, "-m", "deferral.cli"]


def precompile() -> None:
    """Byte-compile the package once, as ``pip install`` does: a clone run with
    ``PYTHONDONTWRITEBYTECODE`` set would otherwise compile every module in every run
    (about 0.2 s of each small row)."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", *(str(REPO / d) for d in PACKAGE_DIRS
                                                                if (REPO / d).is_dir())],
                   capture_output=True, check=False)


def run_deferral(b: list[int], symmetry: bool, workers: int | None, warm_up: bool = True) -> Run:
    cmd = deferral_cmd() + ["check", "--json", "--vcpus", str(b[0]), "--pages", str(b[1]),
                            "--frames", str(b[2]), "--queue", str(b[3])]
    if len(b) > 4:
        cmd += ["--spaces", str(b[4])]
    if not symmetry:
        cmd.append("--no-symmetry")
    if workers:
        cmd += ["--workers", str(workers)]
    if warm_up:  # untimed, cut short: a user's earlier run, which builds and caches the compiled loop
        subprocess.run(cmd + ["--max-states", str(WARM_UP_STATES)], capture_output=True, check=False)
    proc, secs, kib, cpu = timed(cmd)
    if proc.returncode not in (0, 1, 3):
        raise SystemExit(f"deferral check failed ({proc.returncode}): {proc.stderr.strip()}")
    out = json.loads(proc.stdout)
    stats = out.get("stats") or {}
    verdicts = ", ".join(f"{p['name']}={p['status']}" for p in out["properties"])
    return Run("deferral", out["states"], secs, kib, stats.get("bytes_per_state"), verdicts, cpu)


def run_rumur(shared: Path, b: list[int], symmetry: bool) -> Run | None:
    if len(b) > 4:  # address spaces: the peer's encoding of PROTOCOL.md's spaces section
        script, model = shared / "peers" / "run-rumur-spaces", shared / "peers" / "spaces.m"
    else:
        script, model = shared / "peers" / "run-rumur", shared / "peers" / "deferral.m"
    if not shutil.which("rumur"):
        print("rumur is missing: install it with `apt-get install -y rumur` (Debian package rumur)")
        return None
    if not script.exists():
        print(f"the Rumur peer is missing: {script} (expected shared/ beside the repository)")
        return None
    extra = [] if symmetry else ["--symmetry-reduction", "off"]
    proc, secs, kib, cpu = timed(["bash", str(script), str(model), *map(str, b), "none", *extra])
    text = proc.stdout + proc.stderr
    m = re.search(r"(\d+) states, (\d+) rules fired in (\d+)s", text)
    size = re.search(r"rounded up to (\d+) bytes", text)
    if not m:
        print(f"rumur failed ({proc.returncode}):\n{text[-2000:]}")
        return None
    ok = "No error found" in text
    return Run("rumur", int(m.group(1)), secs, kib, float(size.group(1)) if size else None,
               f"{'no error found' if ok else 'ERROR reported'}; rumur-verify {m.group(3)}s", cpu)


def median_run(runs: list[Run]) -> Run:
    """The run of median seconds (the lower one of an even count), its note listing every run's seconds."""
    ordered = sorted(runs, key=lambda x: x.seconds)
    mid = ordered[(len(ordered) - 1) // 2]
    if len(runs) == 1:
        return mid
    seconds = " ".join(f"{x.seconds:.2f}" for x in runs)
    return Run(mid.tool, mid.states, mid.seconds, mid.peak_kib, mid.bytes_per_state,
               f"{mid.note}; median of {len(runs)} runs: {seconds} s", mid.cpu_seconds)


def fmt(x: float | None, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bounds", nargs="*", default=DEFAULT_BOUNDS, help="N,V,F,Q or N,V,F,Q,S (default: three one-space and two two-space bounds)")
    ap.add_argument("--shared", type=Path, default=default_shared(), help="the shared/ folder")
    ap.add_argument("--workers", type=int, help="deferral --workers (default: all cores)")
    ap.add_argument("--no-symmetry-too", action="store_true", help="also run both tools without symmetry")
    ap.add_argument("--repeat", type=int, default=1, metavar="K",
                    help="run each tool K times, in turn (deferral, rumur, deferral, ...), and take each "
                         "one's median seconds: a loaded machine's noise moves one run's ratio by 2x")
    args = ap.parse_args()
    precompile()
    print(f"{'bounds':<16}{'sym':<5}{'tool':<10}{'states':>12}{'seconds':>10}{'states/s':>12}"
          f"{'peak MiB':>10}{'B/state':>9}{'ratio':>8}{'CPU s':>9}{'CPU ratio':>10}  notes")
    for text in args.bounds:
        b = [int(x) for x in text.split(",")]
        for symmetry in ([True, False] if args.no_symmetry_too else [True]):
            ds: list[Run] = []
            rs: list[Run | None] = []
            for k in range(max(1, args.repeat)):
                ds.append(run_deferral(b, symmetry, args.workers, warm_up=k == 0))
                rs.append(run_rumur(args.shared, b, symmetry))
            d = median_run(ds)
            r = None if any(x is None for x in rs) else median_run([x for x in rs if x is not None])
            ratio = None if r is None or not r.rate or not d.rate else d.rate / r.rate
            cpu_ratio = None if r is None or not r.cpu_rate or not d.cpu_rate else d.cpu_rate / r.cpu_rate
            for run in (d, r):
                if run is None:
                    continue
                print(f"{text:<16}{'on' if symmetry else 'off':<5}{run.tool:<10}{run.states:>12,}"
                      f"{run.seconds:>10.2f}{fmt(run.rate, ',.0f'):>12}{run.peak_kib / 1024:>10.0f}"
                      f"{fmt(run.bytes_per_state, '.1f'):>9}"
                      f"{fmt(ratio if run.tool == 'deferral' else 1.0, '.2f'):>8}{run.cpu_seconds:>9.2f}"
                      f"{fmt(cpu_ratio if run.tool == 'deferral' else 1.0, '.2f'):>10}  {run.note}")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
