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

#: (N, V, F, Q, S) -> (reachable states, states up to VCPU symmetry) with S address spaces
#: (PROTOCOL.md, "Address spaces"; Rumur 2022.08 on peers/spaces.m and a second
#: implementation agree); both properties hold.
SPACES_COUNTS: dict[tuple[int, int, int, int, int], tuple[int, int]] = {
    (1, 1, 1, 1, 2): (1_818, 1_818),
    (1, 1, 1, 1, 3): (26_271, 26_271),
    (1, 1, 2, 2, 2): (11_264, 11_264),
    (1, 2, 1, 1, 2): (305_998, 305_998),
    (2, 1, 1, 1, 2): (2_418_910, 1_209_467),
}

#: Rows of SPACES_COUNTS small enough for every test run (the others: benchmarks/).
SPACES_SMALL = ((1, 1, 1, 1, 2), (1, 1, 1, 1, 3), (1, 1, 2, 2, 2))

#: The address-space variants: (N, V, F, Q, S), violated property, shortest length.
SPACES_VERDICTS: dict[str, tuple[tuple[int, int, int, int, int], str, int | None]] = {
    "defer-non-current": ((2, 1, 1, 1, 2), "no_stale_translation", 9),
    "switch-no-drain": ((2, 1, 1, 1, 2), "no_stale_translation", 7),
    "resync-running-only": ((2, 1, 1, 1, 2), "no_stale_translation", 12),
}
