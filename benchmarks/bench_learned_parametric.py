"""Benchmark: lemma families learned at 2,1,1,1, then proved for every N, V, F (issue 12).

Run: ``.venv/bin/python benchmarks/bench_learned_parametric.py [FILE ...]`` (default
examples/lazy_cur_clear.py). Per variant: the learned route at 2,1,1,1 (every family it
finds inductive there, not only the unsat-core subset ``--invariant-out`` saves), then
:func:`deferral.checks.symbolic.parametric.prove_candidates` with the shipped lemmas, a
bounded Houdini at 3,2,2,1 first; prints each phase's time and the verdict. Figures go to
benchmarks/PROVE.md ("Houdini over uninterpreted sorts").
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from deferral.checks.symbolic import parametric
from deferral.checks.terms.encoding import encode
from deferral.checks.symbolic.diagram import diagram_families
from deferral.checks.symbolic.infer import infer
from deferral.model.bounds import Bounds
from deferral.model.variants import load_variant_file

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path) -> None:
    protocol = load_variant_file(path)
    start = time.monotonic()
    learned = infer(encode(protocol, Bounds(2, 1, 1, 1)), timeout=900, diagrams=diagram_families)
    print(f"{path.name}: learned at 2,1,1,1: {learned.status}, {len(learned.kept)} inductive families, "
          f"{time.monotonic() - start:.1f} s", flush=True)
    start = time.monotonic()
    extra = [parametric.for_distinct(f.lemma()) for f in learned.kept]
    res = parametric.prove_candidates(protocol, {"queue": 1, "spaces": 1}, extra=extra, timeout=60, houdini_s=900,
                                      shrink_at=Bounds(3, 2, 2, 1))
    print(f"{path.name}: {res.verdict} ({time.monotonic() - start:.1f} s; {len(res.lemmas)} lemmas, "
          f"{len(res.dropped)} dropped)", flush=True)


def main() -> None:
    for arg in sys.argv[1:] or [str(ROOT / "examples" / "lazy_cur_clear.py")]:
        run(Path(arg))


if __name__ == "__main__":
    main()
