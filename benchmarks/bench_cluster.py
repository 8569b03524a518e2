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
crossed to the other worker. ``--levels`` prints the per-level table. The figures feed
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
    pools = {1: Cluster("local:1", partitions=1), 2: Cluster("local:2", partitions=2)}
    warm = Bounds(1, 1, 1, 1)
    for pool in pools.values():  # actors started, kernels compiled once: not in the timings
        pool.search(REFERENCE, warm)
    print("search seconds exclude Ray start-up; every run checks both properties (AG EF included)")
    print(f"{'N,V,F,Q':8} {'run':16} {'states':>10} {'transitions':>12} {'seconds':>8} {'states/s':>10} "
          f"{'vs 1 worker':>11} {'routed MB':>9} {'remote MB':>9} {'remote B/state':>14}")
    for text in args.bounds:
        bounds = Bounds(*parse_bounds(text))
        t = time.monotonic()
        single = explore_vectorized(REFERENCE, bounds, workers=1)
        single_s = time.monotonic() - t
        rows: list[tuple[str, Any, float]] = [("single process", single, single_s)]
        for parts, pool in pools.items():
            t = time.monotonic()
            result = pool.search(REFERENCE, bounds)
            rows.append((f"cluster {parts} worker{'s' if parts > 1 else ''}", result, time.monotonic() - t))
        base_rate = rows[1][1].states / rows[1][2]
        for name, result, seconds in rows:
            rate = result.states / seconds
            stats = result.stats
            routed = stats.get("routed_bytes")
            remote = stats.get("remote_bytes")
            print(f"{text:8} {name:16} {result.states:>10,} {result.transitions:>12,} {seconds:>8.2f} "
                  f"{rate:>10,.0f} {rate / base_rate:>10.2f}x "
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
        estimate(two, rows[1][2], rows[2][2], args.nodes, args.cores, args.gbit)
    for pool in pools.values():
        pool.close()
    ray.shutdown()


def estimate(two: Any, one_s: float, two_s: float, nodes: int, cores: int, gbit: float) -> None:
    """A reasoned estimate (not a measurement) of what ``nodes`` x ``cores`` workers reach.

    Compute: the measured states/s of one cluster worker, times the workers, times the
    measured 2-worker efficiency (rate with 2 / twice the rate with 1). Network: hashing
    sends a fraction (nodes-1)/nodes of the routed bytes off-node; every node's link
    carries its share, in each direction. The search goes at the slower of the two; on
    large levels the per-level round trips (4 driver rounds, about a millisecond each on a
    LAN) are negligible.
    """
    workers = nodes * cores
    routed_per_state = two.stats["routed_bytes"] / two.states
    one_rate = two.states / one_s
    efficiency = (two.states / two_s) / (2 * one_rate)
    compute = one_rate * workers * efficiency
    off_node = routed_per_state * (nodes - 1) / nodes
    network = nodes * (gbit * 1e9 / 8) / off_node
    print(f"  ESTIMATE (not measured) for {nodes} nodes x {cores} cores at {gbit:g} Gbit/s: "
          f"{one_rate:,.0f} states/s per worker x {workers} x {efficiency:.2f} (2-worker efficiency) = "
          f"{compute:,.0f} states/s of compute; network: {routed_per_state:.0f} B routed/state, "
          f"{off_node:.0f} B/state off-node -> {network:,.0f} states/s; "
          f"about {min(compute, network):,.0f} states/s ({'network' if network < compute else 'compute'}-bound)")


if __name__ == "__main__":
    main()
