"""Benchmark: the distributed search (``check --cluster``) with 1 and 2 local Ray workers, beside ``deferral check``.

Run from a clone with the cluster extra installed (``pip install -e '.[cluster]'``)::

    python benchmarks/bench_cluster.py                            # the four default bounds
    python benchmarks/bench_cluster.py --bounds 2,2,1,1 2,1,1,1,2 --levels   # N,V,F,Q[,S]

Starts one Ray on this machine (2 CPUs, loopback only). For each bound, one after the
other: ``deferral check --workers 2 --json`` in a subprocess (the single process as a user
runs it), then the cluster search with 1 partition and with 2 partitions, each on a pool of
actors of its own (started and warmed up before the clock starts: Ray's start-up, several
seconds, is not counted; a fresh pool per bound, so each worker's peak resident memory is
that bound's). The fused C loop is built (or found in this machine's cache) before any run.

Printed per run: states, search seconds (``elapsed_s``; the single process's whole
process in brackets), CPU seconds (the single process's, or the workers' own plus the
driver's), states per second and per CPU second, the ratio to 1 worker, bytes routed
per state (every bucket) and crossed (to the other worker), and the peak resident memory
of the largest worker (or of the single process). ``--levels`` adds the 2-worker run's
per-level table. Every run must agree on states, transitions, depth and verdicts. The
figures feed the README's estimate for a cluster of ``--nodes`` x ``--cores`` at ``--gbit``.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

DEFAULT_BOUNDS = ["2,1,2,2", "3,1,1,2", "2,2,1,2", "2,1,1,1,2"]
FLAGS = ("--vcpus", "--pages", "--frames", "--queue", "--spaces")


@dataclass
class Run:
    """One run's figures."""

    name: str
    states: int
    transitions: int
    depth: int
    verdicts: list[str]
    seconds: float  # the search
    whole_s: float | None  # the whole process (single process only)
    cpu_s: float
    peak_bytes: int
    stats: dict[str, Any]


def parse_bounds(text: str) -> tuple[int, ...]:
    values = tuple(int(x) for x in text.split(","))
    if len(values) not in (4, 5):
        raise SystemExit(f"--bounds {text}: expected N,V,F,Q or N,V,F,Q,S")
    return values


def single_process(values: tuple[int, ...]) -> Run:
    """``deferral check --workers 2 --json`` at these bounds, in a subprocess."""
    argv = [sys.executable, "-m", "deferral.cli.main", "check", "--workers", "2", "--json"]
    for flag, v in zip(FLAGS, values):
        argv += [flag, str(v)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.monotonic()
    proc = subprocess.run(argv, capture_output=True, text=True)
    whole = time.monotonic() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"deferral check failed ({proc.returncode}): {proc.stderr.strip()[-300:]}")
    data = json.loads(proc.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run("check --workers 2", data["states"], data["transitions"], data["depth"],
               [p["status"] for p in data["properties"]], data["elapsed_s"], whole, cpu,
               data["stats"]["peak_rss_bytes"], data["stats"])


def cluster_run(parts: int, bounds: Any) -> Run:
    """The cluster search on a fresh pool of ``parts`` workers (warmed up off the clock)."""
    from deferral.checks.explicit.cluster import Cluster
    from deferral.model import REFERENCE, Bounds

    with Cluster(f"local:{parts}", partitions=parts) as pool:
        pool.search(REFERENCE, Bounds(1, 1, 1, 1))  # actors started, imports done: not timed
        c, t = time.process_time(), time.monotonic()
        r = pool.search(REFERENCE, bounds)
        seconds, driver_cpu = time.monotonic() - t, time.process_time() - c
    stats = r.stats
    return Run(f"cluster {parts} worker{'s' if parts > 1 else ''}", r.states, r.transitions, r.depth,
               [o.status for o in r.outcomes], seconds, None, sum(stats["partition_cpu_s"]) + driver_cpu,
               max(stats["partition_peak_rss_bytes"]), stats)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bounds", nargs="+", default=DEFAULT_BOUNDS, metavar="N,V,F,Q[,S]")
    ap.add_argument("--levels", action="store_true", help="print the 2-worker run's per-level traffic")
    ap.add_argument("--nodes", type=int, default=10, help="nodes of the estimated cluster (10)")
    ap.add_argument("--cores", type=int, default=8, help="cores per node of the estimated cluster (8)")
    ap.add_argument("--gbit", type=float, default=10.0, help="network per node, Gbit/s (10)")
    args = ap.parse_args()

    import os

    import ray

    from deferral.checks.explicit.expand import Expander
    from deferral.model import REFERENCE, Bounds
    from deferral.model.concrete import Model

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _node_ip_address="127.0.0.1")
    print(f"load average at the start: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("search seconds exclude Ray's start-up; every run checks both properties (AG EF included)")
    print(f"{'bounds':10} {'run':18} {'states':>10} {'seconds':>14} {'CPU s':>7} {'states/s':>10} "
          f"{'per CPU s':>10} {'vs 1 w.':>7} {'routed B/st':>11} {'crossed B/st':>12} {'peak MiB':>8}")
    for text in args.bounds:
        values = parse_bounds(text)
        bounds = Bounds(*values)
        Expander(Model(REFERENCE, bounds), True).fused()  # built or loaded: in the cache for every run
        runs = [single_process(values), cluster_run(1, bounds), cluster_run(2, bounds)]
        base = runs[1].states / runs[1].seconds
        for r in runs:
            rate = r.states / r.seconds
            routed, crossed = r.stats.get("routed_bytes"), r.stats.get("remote_bytes")
            secs = f"{r.seconds:.2f}" + (f" ({r.whole_s:.2f})" if r.whole_s is not None else "")
            print(f"{text:10} {r.name:18} {r.states:>10,} {secs:>14} {r.cpu_s:>7.2f} {rate:>10,.0f} "
                  f"{r.states / r.cpu_s:>10,.0f} {rate / base:>6.2f}x "
                  f"{'' if routed is None else f'{routed / r.states:.1f}':>11} "
                  f"{'' if crossed is None else f'{crossed / r.states:.1f}':>12} {r.peak_bytes / 2**20:>8.0f}")
        first = runs[0]
        assert all((r.states, r.transitions, r.depth, r.verdicts) == (first.states, first.transitions, first.depth,
                                                                      first.verdicts) for r in runs), \
            "a cluster run disagrees with the single-process search"
        two = runs[2]
        print(f"  2 workers: partitions {two.stats['partition_states']}, CPU s "
              f"{two.stats['partition_cpu_s']}, fused chunks {two.stats['partition_fused_chunks']}, "
              f"{len(two.stats['levels'])} levels + {two.stats['liveness_rounds']} AG EF rounds, "
              f"verdicts {two.verdicts}")
        if args.levels:
            print(f"  per level (2 workers): {'depth':>5} {'new':>9} {'successors':>10} {'routed B':>10} "
                  f"{'crossed B':>10} {'routed B/new':>12}")
            for lv in two.stats["levels"]:
                per = lv["routed_bytes"] / lv["new_states"] if lv["new_states"] else 0.0
                print(f"  {'':21} {lv['depth']:>5} {lv['new_states']:>9,} {lv['successors']:>10,} "
                      f"{lv['routed_bytes']:>10,} {lv['remote_bytes']:>10,} {per:>12.1f}")
        estimate(two, args.nodes, args.cores, args.gbit)
    ray.shutdown()


def estimate(two: Run, nodes: int, cores: int, gbit: float) -> None:
    """A reasoned estimate (not a measurement) of what ``nodes`` x ``cores`` workers reach.

    Compute: the 2-worker run's states per CPU second of its workers (their own CPU time:
    on a shared machine, wall time measures the other jobs as much as the search; the
    hashing, bucketing and serialization of routing are included), times the workers,
    times the hash balance (mean over largest partition: a level waits for its slowest
    worker). Network: hashing sends (nodes-1)/nodes of the routed bytes off-node, and every
    node's link carries its share, in each direction. The search goes at the slower of the
    two. Not counted: the per-level costs (a task per worker per level, P x P bucket
    references, the slowest worker's wait), negligible only when levels hold millions of states.
    """
    workers = nodes * cores
    cpu = sum(two.stats["partition_cpu_s"])
    per_cpu = two.states / cpu
    states = two.stats["partition_states"]
    balance = (sum(states) / len(states)) / max(states)
    compute = per_cpu * workers * balance
    routed_per_state = two.stats["routed_bytes"] / two.states
    off_node = routed_per_state * (nodes - 1) / nodes
    network = nodes * (gbit * 1e9 / 8) / off_node
    print(f"  ESTIMATE (not measured) for {nodes} nodes x {cores} cores at {gbit:g} Gbit/s: compute "
          f"{per_cpu:,.0f} states per worker CPU s x {workers} x {balance:.3f} balance = {compute:,.0f} states/s; "
          f"network {routed_per_state:.0f} B routed/state, {off_node:.0f} B/state off-node -> {network:,.0f} "
          f"states/s; about {min(compute, network):,.0f} states/s ({'network' if network < compute else 'compute'}-bound)")


if __name__ == "__main__":
    main()
