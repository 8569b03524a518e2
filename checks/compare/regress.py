"""Regression-checking a protocol change: a baseline and a candidate, side by side.

:func:`regress` checks both protocols at each set of bounds (the project's search), replays
the trace corpus against both (:func:`deferral.traces.corpus.judge`, step sequences only),
and compares their reachable behaviours (:mod:`deferral.checks.compare.behaviours`). The report
says which verdicts changed, which corpus traces now end differently, and what the
candidate can reach that the baseline cannot (and the other way round).

The candidate *regresses* (exit code 1) when it loses a property the baseline had:
a property that holds for the baseline at some bounds is violated for the candidate
there, or on a corpus trace the candidate violates a property that the baseline does not
violate there (the baseline passes the trace, or cannot take it), or (with proofs,
:mod:`deferral.checks.compare.proofs`) the baseline is proved for every N, V, F and the
candidate refuted. A proof the candidate does not reach, nothing else lost, is unknown (exit
code 3). The report is rendered (terminal, JSON, JUnit) by :mod:`deferral.traces.report`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from deferral.checks.compare.behaviours import BehaviourDiff, compare
from deferral.checks.compare.proofs import ProofRow
from deferral.checks.explicit.reachable import TooManyStates, reachable
from deferral.checks.results import Path, SearchResult
from deferral.checks.explicit.search import search_reduced_if_alike
from deferral.model.bounds import Bounds, BoundsError
from deferral.model.context import OneSpaceError, StepError
from deferral.model.protocol import Protocol
from deferral.traces.corpus import CorpusTrace, Judgement, judge

#: The default bound matrix: every published variant is caught by one of these, in seconds
#: (1,1,1,1 at two address spaces tells switch-no-drain apart; a protocol that declares no
#: spaces, or a file in the one-space notation, skips the rows with spaces). Two VCPUs with a
#: second frame and with a second space too, since a bug of an SMP protocol often needs another
#: VCPU beside the raised bound (5 Dec, night: a write making a PTE present without a notice, lost
#: at 2,1,2,1 only, and a CR3 switch draining only its target space's notices, at 2,1,1,1,S=2 only),
#: and a second page too (6 Dec: shootdowns passing the page in one global variable, lost at 2,2,1,1
#: only): every bound raised beside a second VCPU.
DEFAULT_BOUNDS: tuple[Bounds, ...] = (Bounds(2, 1, 1, 1), Bounds(2, 1, 1, 2), Bounds(1, 2, 1, 1),
                                      Bounds(1, 1, 2, 1), Bounds(1, 1, 1, 1, 2), Bounds(2, 1, 2, 1),
                                      Bounds(2, 1, 1, 1, 2), Bounds(2, 2, 1, 1))
#: Behaviours are enumerated only up to this many states per side and bounds.
BEHAVIOUR_LIMIT = 200_000


@dataclass
class VerdictRow:
    """One property at one set of bounds, for both sides."""

    prop: str
    kind: str
    bounds: Bounds
    baseline: str  # holds | violated | unknown | absent
    candidate: str
    candidate_length: int | None = None
    candidate_path: Path | None = None

    @property
    def lost(self) -> bool:
        """The baseline holds it; the candidate violates it or no longer has it (removing a
        property is losing it)."""
        return self.baseline == "holds" and self.candidate in ("violated", "absent")

    @property
    def changed(self) -> bool:
        return self.baseline != self.candidate

    @property
    def change(self) -> str:
        if self.lost:
            return "LOST"
        if self.baseline == "violated" and self.candidate == "holds":
            return "fixed"
        return "changed" if self.changed else "same"


@dataclass
class CorpusRow:
    """One corpus trace under both sides."""

    name: str
    expected: dict[str, Any] | None
    bounds: Bounds
    baseline: Judgement
    candidate: Judgement

    @property
    def changed(self) -> bool:
        b, c = self.baseline, self.candidate
        return (b.outcome, b.properties) != (c.outcome, c.properties)

    @property
    def lost(self) -> bool:
        """The candidate violates a property the baseline does not violate on this trace.

        That includes traces the baseline cannot take at all: the candidate allows a run
        that breaks a property, which the baseline does not allow.
        """
        if self.candidate.outcome != "violates":
            return False
        return bool(set(self.candidate.properties) - set(self.baseline.properties))

    @property
    def change(self) -> str:
        if self.lost:
            return "NEW VIOLATION"
        if not self.changed:
            return "same"
        if self.candidate.outcome == "cannot-replay":
            return "cannot replay"
        return "changed"


@dataclass
class BehaviourRow:
    bounds: Bounds
    diff: BehaviourDiff | None
    skipped: str = ""  # why behaviours were not enumerated


@dataclass
class RegressReport:
    baseline: Protocol
    candidate: Protocol
    bounds: list[Bounds]
    verdicts: list[VerdictRow] = field(default_factory=list)
    corpus: list[CorpusRow] = field(default_factory=list)
    behaviours: list[BehaviourRow] = field(default_factory=list)
    searches: dict[tuple[str, Bounds], SearchResult] = field(default_factory=dict)
    skipped: list[tuple[Bounds, str]] = field(default_factory=list)  # bounds a side cannot run, and why
    proofs: list[ProofRow] = field(default_factory=list)  # --prove: each side for every N, V, F
    #: "time-limit" when the work was cut short: only the rows above were reached
    stopped_by: str | None = None
    #: what the limit left undone, as text ("at N=2,V=2,F=2,Q=2", "3 of 15 corpus traces", ...)
    not_done: list[str] = field(default_factory=list)

    @property
    def not_checked(self) -> list[Bounds]:
        """The bounds where no verdict was reached (a time limit cut the work), skipped ones aside."""
        done = {r.bounds for r in self.verdicts} | {b for b, _ in self.skipped}
        return [b for b in self.bounds if b not in done]

    @property
    def lost(self) -> list[VerdictRow]:
        return [r for r in self.verdicts if r.lost]

    @property
    def corpus_lost(self) -> list[CorpusRow]:
        return [r for r in self.corpus if r.lost]

    @property
    def proofs_lost(self) -> list[ProofRow]:
        return [r for r in self.proofs if r.lost]

    @property
    def regressed(self) -> bool:
        return bool(self.lost or self.corpus_lost or self.proofs_lost)

    @property
    def exit_code(self) -> int:
        """1 regressed; 3 cut by a limit, or a proof the baseline has is open for the candidate; else 0."""
        if self.regressed:
            return 1
        return 3 if self.stopped_by is not None or any(r.open for r in self.proofs) else 0


def checked_search(protocol: Protocol, bounds: Bounds) -> SearchResult:
    """The project's search; a misbehaving step is located again so the error names the state."""
    try:
        return search_reduced_if_alike(protocol, bounds)
    except StepError:
        reachable(protocol, bounds, max_states=BEHAVIOUR_LIMIT)  # raises the located StepError
        raise


def regress(baseline: Protocol, candidate: Protocol, bounds: Sequence[Bounds] = DEFAULT_BOUNDS,
            corpus: Sequence[CorpusTrace] = (), *, behaviours: bool = True,
            behaviour_limit: int = BEHAVIOUR_LIMIT, into: RegressReport | None = None) -> RegressReport:
    """Compare ``candidate`` with ``baseline`` at every bounds and on every corpus trace; ``into``
    (a report of the same sides and bounds) is filled as the work goes, so that a caller whose time
    limit interrupts it still has the rows reached."""
    report = RegressReport(baseline, candidate, list(bounds)) if into is None else into
    for b in bounds:
        try:
            rb = checked_search(baseline, b)
            rc = checked_search(candidate, b)
        except (BoundsError, OneSpaceError) as exc:
            if b not in DEFAULT_BOUNDS:
                raise
            report.skipped.append((b, str(exc).split("; state {")[0]))
            continue
        report.searches[("baseline", b)] = rb
        report.searches[("candidate", b)] = rc
        names = [p.name for p in baseline.properties] + [p.name for p in candidate.properties
                                                         if p.name not in {q.name for q in baseline.properties}]
        for name in names:
            ob = _find(rb, name)
            oc = _find(rc, name)
            kind = (ob or oc).kind  # type: ignore[union-attr]
            report.verdicts.append(VerdictRow(
                name, kind, b, ob.status if ob else "absent", oc.status if oc else "absent",
                oc.length if oc and oc.status == "violated" else None,
                oc.path if oc and oc.status == "violated" else None))
        if behaviours:
            try:
                report.behaviours.append(BehaviourRow(b, compare(baseline, candidate, b,
                                                                 max_states=behaviour_limit)))
            except TooManyStates as exc:
                report.behaviours.append(BehaviourRow(b, None, f"skipped: {exc}"))
    for entry in corpus:
        report.corpus.append(CorpusRow(entry.name, entry.trace.expected, entry.trace.bounds,
                                       judge(entry.trace, baseline), judge(entry.trace, candidate)))
    return report


def _find(result: SearchResult, name: str) -> Any:
    for o in result.outcomes:
        if o.name == name:
            return o
    return None
