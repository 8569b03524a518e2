"""Benchmark ``deferral prove --parametric``: per variant, Q and S, the verdict and the time.

Run: ``.venv/bin/python benchmarks/bench_parametric.py [--quick]``. Prints one line per
proof (:func:`prove_candidates`: the shipped lemmas, Houdini over uninterpreted sorts when
one is not inductive): variant, Q, S, status, seconds, the lemmas Houdini dropped, the
slowest obligation, and the reason of an unknown. Figures go to benchmarks/PROVE.md ("Parametric proof").

``--refute``: every published bug and the buggy mutants of tests/checks/symbolic/test_examples_safe.py
through ``prove --parametric``'s routes (:func:`prove_for_every`): status, seconds, the small instance
that refutes it and the counterexample's length, beside the explicit search's shortest length there.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from deferral.checks.symbolic.parametric import prove_candidates
from deferral.model import PUBLISHED, REFERENCE
from deferral.model.schema import VCPU
from deferral.model.variants import load_variant_file

ROOT = Path(__file__).resolve().parents[1]


def _zap(s, i, p, sp):  # type: ignore[no-untyped-def]
    """examples/drain_zaps.py's change with a Python `if` on the loop variable (the loop is split)."""
    for k in s.each(VCPU):
        with s.when(s.shadow[k][sp][p] != 0):
            s.shadow[k][sp][p] = s.gpt[sp][p] if k == i else 0


SAFE = [REFERENCE, PUBLISHED["wait-irqs-off"], load_variant_file(ROOT / "examples" / "drain_zaps.py"),
        REFERENCE.derive("drain-zaps-if", procedures={"resync": _zap}),
        *(load_variant_file(ROOT / "examples" / f"{name}.py") for name in (
            "lazy_ipi_return", "lazy_cur_clear", "lazy_waitret_clear", "self_ipi", "mask_before_send",
            "lazy_tlb_ipi"))]
BUGS = ["drain-local-only", "ipi-before-drain", "remote-no-drain", "reload-no-drain", "overflow-drop"]
SPACE_BUGS = ["defer-non-current", "switch-no-drain", "resync-running-only"]


def run(protocol, queue: int, spaces: int, timeout: float) -> None:  # type: ignore[no-untyped-def]
    start = time.monotonic()
    res = prove_candidates(protocol, {"queue": queue, "spaces": spaces}, timeout=timeout, houdini_s=4 * timeout)
    slow = max(res.obligations, key=lambda o: o.elapsed_s)
    print(f"{protocol.name:28} Q={queue} S={spaces} {res.status:8} {time.monotonic() - start:7.1f} s  "
          f"dropped {len(res.dropped)}  slowest: {slow.name} {slow.elapsed_s:.1f} s  {res.reason[:160]}", flush=True)


def refute_all(timeout: float) -> None:
    """Each bug and mutant through prove_for_every: where it is refuted, how fast, how long its path."""
    import sys

    from deferral.checks.explicit.search import search
    from deferral.checks.symbolic.parametric_routes import prove_for_every
    from deferral.model import Bounds

    sys.path.insert(0, str(ROOT / "tests" / "checks" / "symbolic"))
    from test_examples_safe import MUTANTS, _mutant, same_value_mutant  # noqa: E402 (the tests' mutants)

    cases = [(PUBLISHED[n], Bounds(2, 1, 1, 1)) for n in BUGS] + \
        [(PUBLISHED[n], Bounds(2, 1, 1, 1, 2)) for n in SPACE_BUGS] + \
        [(same_value_mutant(), Bounds(2, 1, 1, 1))] + [(_mutant(n), MUTANTS[n][0]) for n in sorted(MUTANTS)]
    for protocol, bounds in cases:
        start = time.monotonic()
        res, _ = prove_for_every(protocol, bounds, limit=timeout)
        took = time.monotonic() - start
        r = res.refutation
        where = "-" if r is None else f"{r.bounds.short():22} {r.length:3} steps"
        check = ""
        if r is not None:
            alone = search(protocol, r.bounds, max_states=2_000_000).outcome(r.outcome.name)
            check = f"(check there: {alone.status}, {alone.length} steps)"
        print(f"{protocol.name:22} S={bounds['spaces']} {res.status:9} {took:6.2f} s  {where}  {check}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="Q=1, S=1 only")
    ap.add_argument("--refute", action="store_true", help="only the bugs and mutants through prove_for_every")
    ap.add_argument("--timeout", type=float, default=60.0, help="per query, all seeds (default 60)")
    args = ap.parse_args()
    if args.refute:
        refute_all(args.timeout)
        return
    configs = [(1, 1)] if args.quick else [(1, 1), (2, 1), (3, 1), (1, 2)]
    for queue, spaces in configs:
        for protocol in SAFE:
            run(protocol, queue, spaces, args.timeout)
    for name in BUGS:
        run(PUBLISHED[name], 1, 1, args.timeout)
    for name in SPACE_BUGS:
        run(PUBLISHED[name], 1, 2, args.timeout)


if __name__ == "__main__":
    main()
