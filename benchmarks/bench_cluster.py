"""Benchmark: the distributed search (``check --cluster``) with 1 and 2 local Ray workers.

Run from a clone with the cluster extra installed (``pip install -e '.[cluster]'``)::

    python benchmarks/bench_cluster.py                        # N,V,F,Q = 2,1,2,2 and 3,1,1,2
    python benchmarks/bench_cluster.py --bounds 2,2,1,1 --levels

Starts one Ray on this machine (2 CPUs, loopback only). For each bound it runs, in one
process and one after the other: the single-process vectorized search (one worker, the
baseline), then the cluster search with 1 partition and with 2 partitions (actors started
and warmed up before the clock starts: Ray's own start-up, ~15 s here, is not counted).
It prints states, search seconds, states/s and the ratios side by side, and for the
2-worker run the traffic: bytes routed per BFS level (all buckets) and the part that
crossed to the other worker, and the workers' own CPU seconds. ``--levels`` prints the per-level table. The figures feed
the README's 10-node estimate (``--nodes``/``--cores``/``--gbit`` change its inputs).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

DEFAULT_BOUNDS = ["2,1,2,2", "3,1,1,2"]


def parse_bounds(text: str) -> tuple[int, int, int, int]:
    n, v, f, q = (int(x) for x in text.split(","))
    return n, v, f, q


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bounds", nargs="+", default=DEFAULT_BOUNDS, metavar="N,V,F,Q")
    ap.add_argument("--levels", action="store_true", help="print the per-level traffic table")
    ap.add_argument("--nodes", type=int, default=10, help="nodes of the estimated cluster (10)")
    ap.add_argument("--cores", type=int, default=8, help="cores per node of the estimated cluster (8)")
    ap.add_argument("--gbit", type=float, default=10.0, help="network per node, Gbit/s (10)")
    args = ap.parse_args()

    import ray

    from deferral.checks.explicit.cluster import Cluster
    from deferral.checks.explicit.vectorized import explore_vectorized
    from deferral.model import REFERENCE, Bounds

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             _node_ip_address="127.0.0.1")
    bounds_list = [Bounds(*parse_bounds(text)) for text in args.bounds]
    runs: dict[tuple[str, str], tuple[Any, float]] = {}
    for text, bounds in zip(args.bounds, bounds_list):
        t = time.monotonic()
        runs[(text, "single process")] = (explore_vectorized(REFERENCE, bounds, workers=1), time.monotonic() - t)
    for parts in (1, 2):  # one pool at a time: 2 CPUs hold 2 actors
        name = f"cluster {parts} worker{'s' if parts > 1 else ''}"
        with Cluster(f"local:{parts}", partitions=parts) as pool:
            pool.search(REFERENCE, Bounds(1, 1, 1, 1))  # actors started, imports done: not timed
            for text, bounds in zip(args.bounds, bounds_list):
                t = time.monotonic()
                runs[(text, name)] = (pool.search(REFERENCE, bounds), time.monotonic() - t)
    print("search seconds exclude Ray start-up; every run checks both properties (AG EF included)")
    print(f"{'N,V,F,Q':8} {'run':16} {'states':>10} {'transitions':>12} {'seconds':>8} {'states/s':>10} "
          f"{'vs 1 worker':>11} {'worker CPU s':>12} {'routed MB':>9} {'remote MB':>9} {'remote B/state':>14}")
    for text in args.bounds:
        rows = [(name, *runs[(text, name)]) for name in ("single process", "cluster 1 worker", "cluster 2 workers")]
        single = rows[0][1]
        base_rate = rows[1][1].states / rows[1][2]
        for name, result, seconds in rows:
            rate = result.states / seconds
            stats = result.stats
            routed = stats.get("routed_bytes")
            remote = stats.get("remote_bytes")
            cpu = stats.get("partition_cpu_s")
            print(f"{text:8} {name:16} {result.states:>10,} {result.transitions:>12,} {seconds:>8.2f} "
                  f"{rate:>10,.0f} {rate / base_rate:>10.2f}x "
                  f"{'' if cpu is None else f'{sum(cpu):.2f}':>12} "
                  f"{'' if routed is None else f'{routed / 1e6:.1f}':>9} "
                  f"{'' if remote is None else f'{remote / 1e6:.1f}':>9} "
                  f"{'' if remote is None else f'{remote / result.states:.1f}':>14}")
        assert all((r.states, r.transitions, r.depth) == (single.states, single.transitions, single.depth)
                   for _, r, _ in rows), "a cluster run disagrees with the single-process search"
        two = rows[2][1]
        if args.levels:
            print(f"  per level (2 workers): {'depth':>5} {'new':>9} {'successors':>10} {'routed B':>10} "
                  f"{'remote B':>10} {'remote B/succ':>13}")
            for lv in two.stats["levels"]:
                per = lv["remote_bytes"] / lv["successors"] if lv["successors"] else 0.0
                print(f"  {'':21} {lv['depth']:>5} {lv['new_states']:>9,} {lv['successors']:>10,} "
                      f"{lv['routed_bytes']:>10,} {lv['remote_bytes']:>10,} {per:>13.1f}")
        estimate(two, args.nodes, args.cores, args.gbit)
    ray.shutdown()


def estimate(two: Any, nodes: int, cores: int, gbit: float) -> None:
    """A reasoned estimate (not a measurement) of what ``nodes`` x ``cores`` workers reach.

    Compute: the 2-worker run's states per CPU second of its workers (their own CPU
    time: on a shared machine, wall time measures the other jobs as much as the search;
    the hashing, bucketing and serialization of routing are included), times the
    workers, times the hash balance (mean over largest partition: a level waits for its
    slowest worker). Network: hashing sends (nodes-1)/nodes of the routed bytes off-node,
    and every node's link carries its share, in each direction. The search goes at the
    slower of the two. Not counted: the per-level rounds (a driver round trip and P*P bucket
    references per level, about a second per level at 80 workers), negligible only when
    levels hold millions of states.
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
    print(f"  2 workers: {cpu:.2f} CPU s in the workers ({', '.join(f'{c:.2f}' for c in two.stats['partition_cpu_s'])}),"
          f" {per_cpu:,.0f} states per worker CPU second; partitions {states} (balance {balance:.3f})")
    print(f"  ESTIMATE (not measured) for {nodes} nodes x {cores} cores at {gbit:g} Gbit/s: compute "
          f"{per_cpu:,.0f} x {workers} x {balance:.3f} = {compute:,.0f} states/s; network {routed_per_state:.0f} B "
          f"routed/state, {off_node:.0f} B/state off-node -> {network:,.0f} states/s; about "
          f"{min(compute, network):,.0f} states/s ({'network' if network < compute else 'compute'}-bound)")


if __name__ == "__main__":
    main()
