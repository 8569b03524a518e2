"""Published figures the tests hold the model to: reference counts and variant verdicts.

These are expectations, not results: the counts were computed independently (Rumur
2022.08 on a Murphi encoding of the same semantics), and the tests explore the model and
compare. ``docs/protocol.md`` shows the same tables (generated from this module).
"""

from __future__ import annotations

#: (N, V, F, Q) -> (reachable states, states up to VCPU symmetry); both properties hold.
REFERENCE_COUNTS: dict[tuple[int, int, int, int], tuple[int, int]] = {
    (1, 1, 1, 1): (75, 75),
    (2, 1, 1, 1): (6_319, 3_163),
    (2, 1, 2, 2): (65_643, 32_825),
    (3, 1, 1, 2): (1_582_215, 267_530),
    (2, 2, 1, 1): (2_499_524, 1_249_768),
}

#: Rows of REFERENCE_COUNTS small enough for every test run (the others: benchmarks/).
SMALL = ((1, 1, 1, 1), (2, 1, 1, 1), (2, 1, 2, 2))

#: variant -> (bounds, violated property, shortest counterexample length or None).
#: Lengths count steps after the initial state, by breadth-first search.
VERDICTS: dict[str, tuple[tuple[int, int, int, int], str, int | None]] = {
    "drain-local-only": ((2, 1, 1, 1), "no_stale_translation", 8),
    "ipi-before-drain": ((2, 1, 1, 1), "no_stale_translation", 6),
    "remote-no-drain": ((2, 1, 1, 1), "no_stale_translation", 7),
    "reload-no-drain": ((2, 1, 1, 1), "no_stale_translation", 5),
    "wait-irqs-off": ((2, 1, 1, 1), "shootdowns_can_complete", None),
    "overflow-drop": ((2, 2, 1, 1), "no_stale_translation", 7),
}
