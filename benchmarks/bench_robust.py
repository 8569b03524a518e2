"""Bad input and limits, as a user meets them: each scenario's exit code, seconds and peak memory.

Runs ``deferral`` as a separate process for every scenario (a real process, real signals,
real start-up time) and prints one row per scenario: the exit code expected by the
contract (README, "Exit codes"), the one it gave, wall seconds, the child's peak RSS, and
whether a traceback was printed. A step that loops forever is run against every command
with a limit of ``--limit`` seconds (default 5); the column ``over`` is how long after the
limit it ended.

    python benchmarks/bench_robust.py             # all scenarios, about a minute on 2 cores
    python benchmarks/bench_robust.py --limit 10  # the loop scenarios with a 10 s limit
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

LOOPS = """from deferral.model import REFERENCE

def resync(s, i, p):
    while True:
        pass

VARIANT = REFERENCE.derive("loops", procedures={"resync": resync})
"""

LOOPS_SWALLOWING = """from deferral.model import REFERENCE

def resync(s, i, p):
    while True:
        try:
            while True:
                pass
        except BaseException:
            pass

VARIANT = REFERENCE.derive("loops-swallowing", procedures={"resync": resync})
"""


@dataclass
class Row:
    name: str
    expected: int
    code: int
    seconds: float
    peak_mib: float
    traceback: bool
    limit: float | None = None
    line: str = ""


def deferral() -> list[str]:
    exe = shutil.which("deferral", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "deferral.cli.main"]


#: Runs one command and reports its peak RSS (KiB) as the last line of stderr: the only child
#: of this wrapper is the command, so RUSAGE_CHILDREN is that command's alone.
WRAPPER = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
           "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); sys.exit(r.returncode)")


def run(name: str, expected: int, argv: list[str], limit: float | None = None, timeout: float = 300) -> Row:
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-c", WRAPPER, *deferral(), *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        out, err = proc.communicate()
        code, err = -9, err + f"\nkilled after {timeout} s\n0"
    seconds = time.monotonic() - start
    *rest, rss = err.rstrip("\n").split("\n")
    err = "\n".join(rest)
    lines = [line for line in err.splitlines() if line.startswith("deferral: ")]
    return Row(name, expected, code, seconds, int(rss) / 1024 if rss.isdigit() else float("nan"),
               "Traceback" in err + out, limit, (lines[-1] if lines else (out.splitlines() or [""])[-1])[:110])


def scenarios(tmp: Path, limit: float) -> list[tuple[str, int, list[str], float | None]]:
    (tmp / "exit0.py").write_text("import sys\nsys.exit(0)\n")
    (tmp / "os_exit0.py").write_text("import os\nos._exit(0)\n")
    step = "from deferral.model import REFERENCE\nimport ctypes, os\ndef r(s, i, p):\n    {}\n" \
           "VARIANT = REFERENCE.derive('x', procedures={{'resync': r}})\n"
    (tmp / "step_os_exit.py").write_text(step.format("os._exit(0)"))
    (tmp / "step_ctypes_exit.py").write_text(step.format("ctypes.CDLL(None)._exit(0)"))
    (tmp / "step_kill.py").write_text(step.format("os.kill(os.getpid(), 9)"))
    (tmp / "ood.py").write_text("from deferral.model import REFERENCE\ndef w(s, i, sp, p, f):\n"
                                "    s.gpt[sp][p] = s.F + 1\nVARIANT = REFERENCE.derive('x', replace_steps="
                                "[REFERENCE.step('write').with_effect(w)])\n")
    (tmp / "slow_load.py").write_text("import time\ntime.sleep(60)\n")
    (tmp / "loops.py").write_text(LOOPS)
    (tmp / "swallow.py").write_text(LOOPS_SWALLOWING)
    (tmp / "brackets.json").write_text("[[[[")
    (tmp / "nested.json").write_text("[" * 200_000)
    (tmp / "digits.json").write_text('{"format": "deferral-trace/1", "n": ' + "7" * 5000 + "}")
    (tmp / "latin1.json").write_bytes('{"format": "deferral-trace/1", "note": "é"}'.encode("latin-1"))
    (tmp / "lemmas.json").write_bytes(b"\xff\xfe\x00 not utf-8")
    (tmp / "file").write_text("x")
    subprocess.run(deferral() + ["check", "--variant", "drain-local-only", "--trace-out", str(tmp / "cex.json")],
                   capture_output=True)
    doc = json.loads((tmp / "cex.json").read_text())
    head = {k: v for k, v in doc.items() if k != "steps"} | {"format": "deferral-trace-jsonl/1"}
    (tmp / "blank.jsonl").write_text("\n" + "".join(json.dumps(x) + "\n" for x in [head, *doc["steps"]]))
    bad_state = json.loads(json.dumps(doc))
    bad_state["steps"][0]["state"]["gpt"][0] = "one"
    (tmp / "bad_state.json").write_text(json.dumps(bad_state))
    listed = json.loads(json.dumps(doc))
    listed["expected"]["property"] = ["no_stale_translation"]
    (tmp / "listed.json").write_text(json.dumps(listed))
    evil = json.loads(json.dumps(doc))
    evil["variant_source"] = str(tmp / "exit0.py")
    (tmp / "evil.json").write_text(json.dumps(evil))
    big = ["--vcpus", "3", "--pages", "2", "--queue", "2"]
    t = str(tmp)
    s = str(limit)
    return [
        ("start-up: deferral variants (no limit involved)", 0, ["variants"], None),
        ("check --variant-file exit0.py (sys.exit(0))", 2, ["check", "--variant-file", f"{t}/exit0.py"], None),
        ("prove --variant-file exit0.py", 2, ["prove", "--variant-file", f"{t}/exit0.py"], None),
        ("regress --candidate exit0.py", 2, ["regress", "--candidate", f"{t}/exit0.py"], None),
        ("check --variant-file os_exit0.py (os._exit(0) at load)", 2,
         ["check", "--variant-file", f"{t}/os_exit0.py"], None),
        ("check: a step calls os._exit(0)", 2, ["check", "--variant-file", f"{t}/step_os_exit.py"], None),
        ("prove: a step calls os._exit(0)", 2, ["prove", "--variant-file", f"{t}/step_os_exit.py"], None),
        ("check: a step calls libc _exit(0) (ctypes)", 2, ["check", "--variant-file", f"{t}/step_ctypes_exit.py"],
         None),
        ("regress: a step kills its process", 2, ["regress", "--candidate", f"{t}/step_kill.py"], None),
        *[(f"prove --method {m}: write outside a domain", 2,
           ["prove", "--variant-file", f"{t}/ood.py", "--method", m], None) for m in ("auto", "bmc", "induction", "pdr")],
        ("check --time-limit 2: variant file loads for 60 s", 3,
         ["check", "--variant-file", f"{t}/slow_load.py", "--time-limit", "2"], 2.0),
        ("check N=3,V=2,Q=2 --trace-out /proc/nope/x.json", 2, ["check", *big, "--trace-out", "/proc/nope/x.json"],
         None),
        ("check N=3,V=2,Q=2 --trace-out FILE/x.json", 2, ["check", *big, "--trace-out", f"{t}/file/x.json"], None),
        ("prove --invariant-out /sys/x", 2, ["prove", "--invariant-out", "/sys/x"], None),
        ("regress --junit DIR", 2, ["regress", "--candidate", "reference", "--junit", t], None),
        ("engine run --trace-out DIR", 2, ["engine", "run", "--trace-out", t], None),
        ("replay [[[[", 2, ["replay", f"{t}/brackets.json"], None),
        ("replay 200,000 nested [", 2, ["replay", f"{t}/nested.json"], None),
        ("replay 5,000-digit integer", 2, ["replay", f"{t}/digits.json"], None),
        ("replay latin-1 bytes", 2, ["replay", f"{t}/latin1.json"], None),
        ("replay /dev/zero (256 MiB limit)", 2, ["replay", "/dev/zero"], None),
        ("replay JSONL with a leading blank line", 0, ["replay", f"{t}/blank.jsonl"], None),
        ("replay malformed state contents", 2, ["replay", f"{t}/bad_state.json"], None),
        ("replay expected.property as a list", 2, ["replay", f"{t}/listed.json"], None),
        ("replay a trace naming exit0.py (runs nothing)", 2, ["replay", f"{t}/evil.json"], None),
        ("replay --json [[[[ (JSON error on stdout)", 2, ["replay", "--json", f"{t}/brackets.json"], None),
        ("prove --lemmas non-UTF-8", 2, ["prove", "--lemmas", f"{t}/lemmas.json"], None),
        ("prove --timeout nan", 2, ["prove", "--timeout", "nan"], None),
        ("prove --timeout inf", 2, ["prove", "--timeout", "inf"], None),
        ("check --time-limit nan", 2, ["check", "--time-limit", "nan"], None),
        (f"check loops.py --time-limit {s}", 3, ["check", "--variant-file", f"{t}/loops.py", "--time-limit", s],
         limit),
        (f"prove loops.py --timeout {s}", 3, ["prove", "--variant-file", f"{t}/loops.py", "--timeout", s], limit),
        (f"replay loops.py --time-limit {s}", 3, ["replay", f"{t}/cex.json", "--variant-file", f"{t}/loops.py",
                                                  "--time-limit", s], limit),
        (f"regress loops.py --time-limit {s}", 3, ["regress", "--candidate", f"{t}/loops.py", "--time-limit", s],
         limit),
        (f"check swallowing every alarm --time-limit {s}", 3,
         ["check", "--variant-file", f"{t}/swallow.py", "--time-limit", s], limit),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=float, default=5.0, help="time limit of the loop scenarios (default 5)")
    opts = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-robust-") as tmp:
        for name, expected, argv, limit in scenarios(Path(tmp), opts.limit):
            rows.append(run(name, expected, argv, limit))
            r = rows[-1]
            over = f"{r.seconds - r.limit:+6.1f}" if r.limit is not None else "      "
            print(f"{'ok ' if r.code == r.expected and not r.traceback else 'BAD'} {r.name:<50} "
                  f"exit {r.code:>3} (want {r.expected})  {r.seconds:6.2f} s  over {over}  "
                  f"peak {r.peak_mib:6.0f} MiB  {'TRACEBACK ' if r.traceback else ''}| {r.line}", flush=True)
    bad = [r for r in rows if r.code != r.expected or r.traceback]
    startup = rows[0].seconds
    over = [r.seconds - r.limit for r in rows[:-1] if r.limit]
    print(f"\n{len(rows)} scenarios, {len(bad)} not as the contract says; start-up {startup:.2f} s; "
          f"a step looping forever: ended {min(over):.1f} to {max(over):.1f} s after the limit "
          f"(start-up included; the alarm fires at limit + 2 s + 5%), and {rows[-1].seconds - opts.limit:.1f} s "
          f"when the step swallows every alarm (the watchdog's {10:g} s more); cpu count {os.cpu_count()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
