"""Benchmark ``deferral prove``: how far each Z3 route reaches, and how long it takes.

Run: ``/tmp/venv/bin/python benchmarks/bench_prove.py [--pdr] [--mutants] [--encodings]
[--infer] [--shipped]``. Prints one line per run (variant, bounds, method, route, status,
seconds). Figures go to benchmarks/PROVE.md.

* ``--shipped``: auto with the shipped lemmas only (Spacer skipped: an empty lemma file).
* ``--infer``: Spacer infers lemmas once at N=2,V=1,F=1,Q=1; the generalized families are
  then proved (Houdini + induction) at larger bounds, as ``auto`` does.
* ``--encodings``: Spacer at N=2,V=1,F=1,Q=1 with each encoding of checks/symbolic/pdr.py.
* ``--learned``: auto without the shipped lemmas (route ``inferred+houdini+induction``,
  checks/symbolic/infer.py) per variant and bound: route, status, seconds, number of
  lemma families; with ``--pdr``, Spacer alone at the same bounds beside it.
* ``--examples``: the safe examples/ (each breaks a shipped lemma) the same way, with
  ``--pdr`` Spacer alone beside each.
* ``--refuse``: every published buggy variant through the learned route alone: must not
  be "proved".
"""

from __future__ import annotations

import argparse
import time

from deferral.checks.symbolic.generalize import generalize
from deferral.checks.symbolic.induction import check_inductive, houdini
from deferral.checks.symbolic.pdr import ENCODINGS, pdr
from deferral.checks.symbolic.prove import prove
from deferral.checks.symbolic.encoding import encode
from deferral.model import PUBLISHED, Bounds

#: PROTOCOL.md's configurations, then the issue's larger ones, then the largest allowed.
AUTO = [(1, 1, 1, 1), (2, 1, 1, 1), (2, 1, 2, 2), (3, 1, 1, 2), (2, 2, 1, 1), (2, 2, 2, 2),
        (3, 2, 1, 2), (3, 2, 2, 2), (4, 2, 2, 2), (3, 3, 3, 3), (4, 3, 3, 3)]
PDR = [(1, 1, 1, 1), (2, 1, 1, 1), (2, 2, 1, 2)]
INFER_AT = (2, 1, 1, 1)
INFER_TARGETS = [(2, 1, 1, 1), (3, 1, 1, 1), (4, 1, 1, 1), (2, 1, 2, 1), (3, 1, 3, 1), (4, 1, 3, 1),
                 (2, 1, 1, 2), (2, 2, 1, 1)]
MUTANTS = {"drain-local-only": (2, 1, 1, 1), "ipi-before-drain": (2, 1, 1, 1), "remote-no-drain": (2, 1, 1, 1),
           "reload-no-drain": (2, 1, 1, 1), "overflow-drop": (2, 2, 1, 1), "wait-irqs-off": (2, 1, 1, 1)}


def once(variant: str, b: tuple[int, int, int, int], method: str, timeout: float, shipped: bool = False) -> None:
    start = time.monotonic()
    res = prove(PUBLISHED[variant], Bounds(*b), method, timeout=timeout, templates=[] if shipped else None)
    print(f"{variant:18} {Bounds(*b).short():18} {method:9} {res.route:36} {res.status:9} "
          f"{'' if res.depth is None else res.depth:>3} {time.monotonic() - start:8.1f} s", flush=True)


def infer(variant: str, timeout: float) -> None:
    protocol, small = PUBLISHED[variant], Bounds(*INFER_AT)
    res = pdr(encode(protocol, small), timeout=timeout, encoding="onehot")
    print(f"pdr {variant} at {small.short()}: {res.status}, {len(res.clauses)} clauses, {res.elapsed_s:.1f} s",
          flush=True)
    if res.status != "proved":
        return
    templates = generalize(res.invariant, res.atoms, encode(protocol, small, check=False).layout)
    print(f"  {len(templates)} candidate lemma families", flush=True)
    for b in INFER_TARGETS:
        start = time.monotonic()
        bounds = Bounds(*b)
        alive, _ = houdini(encode(protocol, bounds), [t.lemma() for t in templates])
        r = check_inductive(encode(protocol, bounds), alive)
        print(f"  {bounds.short():18} kept {len(alive):3} of {len(templates)}  {r.status:10} "
              f"{time.monotonic() - start:6.1f} s", flush=True)


LEARNED = [(1, 1, 1, 1), (2, 1, 1, 1), (3, 1, 1, 1), (2, 1, 2, 2), (2, 2, 1, 1)]


def learned(variant: str, b: tuple[int, int, int, int], timeout: float, with_pdr: bool) -> None:
    bounds = Bounds(*b)
    res = prove(PUBLISHED[variant], bounds, "auto", timeout=timeout, shipped=False)
    print(f"{variant:18} {bounds.short():18} learned  {res.route:34} {res.status:9} "
          f"{len(res.invariant or []):4} lemmas {res.elapsed_s:8.1f} s"
          + ("" if res.status == "proved" else f"  ({res.reason or res.log[-1:]})"), flush=True)
    if with_pdr:
        spacer = pdr(encode(PUBLISHED[variant], bounds), timeout=timeout)
        print(f"{variant:18} {bounds.short():18} pdr      {'pdr':34} {spacer.status:9} "
              f"{len(spacer.clauses):4} clauses{spacer.elapsed_s:8.1f} s  {spacer.reason}", flush=True)


#: The safe examples/ and where each differs from the reference (bounds).
EXAMPLES = {"lazy_ipi_return": (2, 1, 1, 1), "lazy_cur_clear": (2, 1, 1, 1), "lazy_waitret_clear": (2, 1, 1, 1),
            "self_ipi": (2, 1, 1, 1), "mask_before_send": (2, 1, 1, 1), "lazy_tlb_ipi": (2, 1, 1, 1, 2)}


def examples(timeout: float, with_pdr: bool) -> None:
    """auto without the shipped lemmas on each safe example: route, status, lemmas, seconds (and Spacer)."""
    from pathlib import Path

    from deferral.model.variants import load_variant_file
    for name, b in EXAMPLES.items():
        protocol, bounds = load_variant_file(Path(__file__).parents[1] / "examples" / f"{name}.py"), Bounds(*b)
        res = prove(protocol, bounds, "auto", timeout=timeout, shipped=False)
        print(f"{name:18} {bounds.short():22} learned  {res.route:34} {res.status:9} "
              f"{len(res.invariant or []):4} lemmas {res.elapsed_s:8.1f} s"
              + ("" if res.status == "proved" else f"  ({res.reason[:160]})"), flush=True)
        if with_pdr:
            spacer = pdr(encode(protocol, bounds), timeout=timeout)
            print(f"{name:18} {bounds.short():22} pdr      {'pdr':34} {spacer.status:9} "
                  f"{len(spacer.clauses):4} clauses{spacer.elapsed_s:8.1f} s  {spacer.reason}", flush=True)


def refuse(timeout: float) -> None:
    from deferral.checks.symbolic.infer import infer as learn, sample_bounds, samples
    for name, b in MUTANTS.items():
        if name == "wait-irqs-off":
            continue  # it holds
        protocol, bounds = PUBLISHED[name], Bounds(*b)
        res = learn(encode(protocol, bounds), data=samples(protocol, sample_bounds(bounds)), timeout=timeout)
        assert res.status != "proved", name
        print(f"{name:18} {bounds.short():18} learned route: {res.status} after {res.rounds} rounds, "
              f"{res.elapsed_s:.1f} s ({res.reason[:90]})", flush=True)


def encodings(timeout: float) -> None:
    for enc in ENCODINGS:
        res = pdr(encode(PUBLISHED["reference"], Bounds(*INFER_AT)), timeout=timeout, encoding=enc)
        print(f"pdr encoding {enc:7} reference {Bounds(*INFER_AT).short()}: {res.status} "
              f"({len(res.clauses)} clauses) {res.elapsed_s:.1f} s", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pdr", action="store_true", help="also Spacer alone (slow)")
    ap.add_argument("--mutants", action="store_true", help="also every published mutant, by auto and pdr")
    ap.add_argument("--encodings", action="store_true", help="Spacer's time per encoding at N=2,V=1,F=1,Q=1")
    ap.add_argument("--infer", action="store_true", help="lemmas inferred at N=2 proved at larger bounds")
    ap.add_argument("--shipped", action="store_true", help="auto over the shipped lemmas at every bound")
    ap.add_argument("--learned", action="store_true", help="auto without the shipped lemmas, per bound")
    ap.add_argument("--refuse", action="store_true", help="published bugs through the learned route alone")
    ap.add_argument("--examples", action="store_true", help="the safe examples/ by auto without the shipped lemmas")
    ap.add_argument("--timeout", type=float, default=300.0)
    args = ap.parse_args()
    if args.learned:
        for variant in ("reference", "wait-irqs-off"):
            for b in LEARNED:
                learned(variant, b, args.timeout, args.pdr)
    if args.refuse:
        refuse(args.timeout)
    if args.examples:
        examples(args.timeout, args.pdr)
    if args.shipped:
        for b in AUTO:
            once("reference", b, "auto", args.timeout, shipped=True)
    if args.infer:
        infer("reference", args.timeout)
        infer("wait-irqs-off", args.timeout)
    if args.encodings:
        encodings(args.timeout)
    if args.pdr and not args.learned:
        for b in PDR:
            once("reference", b, "pdr", args.timeout)
    if args.mutants:
        for name, b in MUTANTS.items():
            once(name, b, "auto", args.timeout)
            once(name, b, "pdr", args.timeout)


if __name__ == "__main__":
    main()
