"""Benchmark: how many VCPU orders the canonical key visits per state at 5 and 6 VCPUs.

    python benchmarks/bench_orders.py                       # 5,1,1,1 and 6,1,1,1
    python benchmarks/bench_orders.py --bounds 6,1,1,1 --states 300000 --sample 20000

For a sample of the states a search stores first (``reachable_levels``), counts the orders
of :mod:`deferral.checks.explicit.fusedcanon`'s key: *signature*, the orders that sort the
VCPUs' signatures (the product of the factorials of the groups of equal signature: what
the key visited before the swap classes), and *swap classes*, one order per distinct
arrangement of the classes of VCPUs whose swap fixes the state (what it visits now). Prints
the mean, the largest and how many states need each count.
"""

from __future__ import annotations

import argparse
import math
from collections import Counter

import numpy as np

from deferral.checks.explicit.vectorized import reachable_levels
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model


def _arrangements(sizes: list[int]) -> int:
    """The distinct arrangements of a multiset with these multiplicities."""
    return math.factorial(sum(sizes)) // math.prod(math.factorial(k) for k in sizes)


def orders(bounds: tuple[int, ...], states: int, sample: int) -> tuple[Counter[int], Counter[int]]:
    """Per count of orders, how many sampled states visit that many (signature, swap classes)."""
    model = Model(REFERENCE, Bounds(*bounds))
    levels = reachable_levels(model, max_states=states)
    packer, layout = levels.packer, model.layout
    n = layout.symmetric_size
    rows = packer.unpack(levels.keys)
    rows = rows[np.random.default_rng(0).choice(rows.shape[0], min(sample, rows.shape[0]), replace=False)]
    sigs = (rows[:, packer.sig_slots].astype(np.int64) * packer.sig_radix).sum(axis=2)
    swaps = {}
    for a in range(n):
        for b in range(a + 1, n):
            perm = list(range(n))
            perm[a], perm[b] = b, a
            swaps[a, b] = perm
    before: Counter[int] = Counter()
    after: Counter[int] = Counter()
    for row, sig in zip(rows.tolist(), sigs.tolist()):
        state = tuple(row)
        groups = Counter(sig)
        before[math.prod(math.factorial(k) for k in groups.values())] += 1
        count = 1
        for value in groups:
            reps: list[int] = []
            sizes: list[int] = []
            for v in (i for i in range(n) if sig[i] == value):
                for x, r in enumerate(reps):
                    if layout.permute(state, swaps[r, v]) == state:
                        sizes[x] += 1
                        break
                else:
                    reps.append(v)
                    sizes.append(1)
            count *= _arrangements(sizes)
        after[count] += 1
    return before, after


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bounds", action="append", help="N,V,F,Q (repeatable; default 5,1,1,1 and 6,1,1,1)")
    parser.add_argument("--states", type=int, default=300_000, help="states the search stores")
    parser.add_argument("--sample", type=int, default=20_000, help="states sampled from them")
    args = parser.parse_args()
    for text in args.bounds or ["5,1,1,1", "6,1,1,1"]:
        bounds = tuple(int(x) for x in text.split(","))
        before, after = orders(bounds, args.states, args.sample)
        total = sum(before.values())
        for name, counts in (("signature", before), ("swap classes", after)):
            mean = sum(k * v for k, v in counts.items()) / total
            print(f"{text} {name}: mean {mean:.2f} orders a state, most {max(counts)}; "
                  f"states per count {dict(sorted(counts.items()))}")


if __name__ == "__main__":
    main()
