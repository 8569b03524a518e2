"""``regress --prove``: both sides proved for every N, V, F at each queue capacity and number of spaces.

The explicit rows of a regress say what holds at the bounds searched; a proof says it for every
number of VCPUs, pages and frames. For each distinct concrete part (Q, S) of the regress's bounds,
baseline and candidate go through ``prove --parametric``'s routes
(:func:`deferral.checks.symbolic.parametric_routes.prove_for_every`: a counterexample at a small
instance first, then the lemmas). A proof the baseline has and the candidate loses to a
counterexample is a regression; one the candidate does not reach (unknown) leaves the question
open, which the regress's exit code says (3) when nothing else regressed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from deferral.model.bounds import Bounds
from deferral.model.protocol import Protocol


@dataclass
class ProofSide:
    """One side's parametric result at one concrete part: proved, violated, unknown or absent (no
    invariant property to prove), and why."""

    status: str
    verdict: str  # one line: what was proved for every what, or where it fails, or why unknown
    elapsed_s: float
    route: str = ""  # where the lemmas came from (a proof)
    result: Any = None  # the ParametricResult (None where the protocol could not be encoded)

    @classmethod
    def of(cls, res: Any, also: str) -> "ProofSide":
        verdict = res.verdict + (f"; {also}" if also and res.status != "proved" else "")
        return cls(res.status, verdict, res.elapsed_s, res.lemma_source if res.status == "proved" else "", res)

    @property
    def refutation(self) -> Any:
        """The small instance's shortest counterexample where refuted (parametric_refute.Refutation)."""
        return self.result.refutation if self.result is not None else None

    @property
    def refuted_at(self) -> Bounds | None:
        return self.refutation.bounds if self.refutation is not None else None

    @property
    def depth(self) -> int | None:
        """The counterexample's length where refuted."""
        return self.refutation.length if self.refutation is not None else None


@dataclass
class ProofRow:
    """Baseline and candidate proved for every N, V, F at one concrete (Q, S)."""

    concrete: dict[str, int]
    baseline: ProofSide
    candidate: ProofSide

    @property
    def where(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.concrete.items())

    @property
    def lost(self) -> bool:
        """The baseline is proved and the candidate refuted, or without an invariant to prove: a
        regression."""
        return self.baseline.status == "proved" and self.candidate.status in ("violated", "absent")

    @property
    def open(self) -> bool:
        """The baseline is proved and the candidate neither proved nor refuted: unknown."""
        return self.baseline.status == "proved" and self.candidate.status == "unknown"

    @property
    def change(self) -> str:
        if self.lost:
            return "LOST"
        if self.open:
            return "not proved"
        if self.baseline.status != "proved" and self.candidate.status == "proved":
            return "proved now"
        return "same" if self.baseline.status == self.candidate.status else "changed"


def concrete_parts(protocol: Protocol, bounds: Sequence[Bounds]) -> list[tuple[dict[str, int], Bounds]]:
    """Each distinct concrete part (Q, S) of ``bounds``, with the first bounds that has it, in order."""
    from deferral.checks.symbolic.parametric import concrete_bounds

    out: list[tuple[dict[str, int], Bounds]] = []
    for b in bounds:
        part = concrete_bounds(protocol, b.as_dict())
        if all(part != seen for seen, _ in out):
            out.append((part, b))
    return out


def prove_both(baseline: Protocol, candidate: Protocol, bounds: Sequence[Bounds], limit_s: float,
               hard_limit: Any = None, limit_error: type[BaseException] = TimeoutError,
               note: Callable[[str], None] | None = None) -> list[ProofRow]:
    """A :class:`ProofRow` per concrete part of ``bounds``: each side's parametric proof in at most
    ``limit_s`` seconds (``hard_limit``/``limit_error`` as :func:`prove_for_every` takes them)."""
    from deferral.checks.terms.encoding import EncodingError
    from deferral.checks.symbolic.parametric_routes import prove_for_every

    rows = []
    for part, b in concrete_parts(candidate, bounds):
        sides = []
        for protocol in (baseline, candidate):
            if note is not None:
                note(f"proving {protocol.name} for every N, V, F at {b.short()}'s Q, S")
            began = time.monotonic()
            why = protocol.without_invariants()
            if why is not None:  # a proof of no property would read "proved"
                sides.append(ProofSide("absent", f"absent: {why}", 0.0))
                continue
            try:
                res, also = prove_for_every(protocol, b, limit=limit_s, hard_limit=hard_limit,
                                            limit_error=limit_error)
            except EncodingError as exc:  # a step the parametric backend cannot evaluate for every N
                sides.append(ProofSide("unknown", f"unknown: not evaluable for every N: {exc}",
                                       time.monotonic() - began))
                continue
            sides.append(ProofSide.of(res, also))
        rows.append(ProofRow(part, sides[0], sides[1]))
    return rows
