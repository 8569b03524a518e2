"""Bounded model checking with Z3: is an invariant violated within K steps of Init?

One incremental solver holds ``Init(s0) & T(s0,s1) & ... & T(s_{d-1}, s_d)``; depth d is
queried with the assumption ``!P(s_d)``, for d = 0, 1, ..., K, so the first violation
found is a shortest one (the same length breadth-first search reports without
symmetry). The solver's states are replayed on the concrete model, so the path holds
the model's exact states and actions. Finding nothing up to K proves nothing beyond K.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import z3

from deferral.checks.results import Path
from deferral.checks.terms.encoding import Encoding
from deferral.model.concrete import State
from deferral.model.schema import Layout


@dataclass
class BmcResult:
    status: str  # violated | unknown (nothing up to depth, or a limit)
    depth: int  # the violation's length, or the deepest depth checked with no violation
    elapsed_s: float
    path: Path | None = None
    prop: str | None = None
    reason: str = ""


def bmc(enc: Encoding, max_depth: int, *, timeout: float | None = None,
        progress: Callable[[int, float], None] | None = None, failing: bool = False,
        symmetric: bool | None = None) -> BmcResult:
    """Look for a violation of an invariant property of ``enc``'s protocol within ``max_depth`` steps;
    ``failing``: and for a state where a step or property fails (a read naming no element, a write
    outside a domain), which raises :class:`~deferral.checks.symbolic.failures.ReachedFailure`."""
    return BmcSearch(enc, max_depth, failing, symmetric).run(timeout, progress)


class BmcSearch:
    """A bounded model check that goes on where it stopped: each :meth:`run` continues from the
    deepest depth checked so far on the same incremental solver (auto runs it in time slices
    between other routes). ``result`` is the last run's answer; ``checked`` the deepest depth
    with no violation. ``failing``: each depth's query asks for a failing step too (one query: a
    violation or a failure), and a failing state found first raises ``ReachedFailure``, as ``check``
    exits 2 at the first level where a step fails."""

    def __init__(self, enc: Encoding, max_depth: int, failing: bool = False, symmetric: bool | None = None) -> None:
        from deferral.checks.symbolic.bmc_symmetry import FirstNamed, applies
        from deferral.checks.symbolic.failures import failure_conditions

        self.enc, self.max_depth = enc, max_depth
        self.failing = failing and bool(failure_conditions(enc))
        self.props = [p for p in enc.protocol.properties if p.kind == "invariant"]
        self.solver = z3.SolverFor("QF_BV")
        self.states = [enc.state("0")]
        self.solver.add(enc.init(self.states[0]))
        self.checked = -1
        self.seconds = 0.0  # every run's time together
        self.took: list[float] = []  # seconds of the query at each depth checked
        self.cut_s = 0.0  # seconds a run spent on the next depth's query before its time ran out
        self.result = BmcResult("unknown", -1, 0.0, reason="not run")
        # ``symmetric``: only paths whose VCPUs are named in order (checks/symbolic/bmc_symmetry.py): the same
        # shortest lengths, N! fewer paths; None: where renaming VCPUs is known to commute with the protocol
        # (at 6,3,3,3,S=3 depth 4 took 8.3 s, not 31.9; PROVE.md, 7 Dec, evening)
        self.symmetric = applies(enc) if symmetric is None else symmetric
        self.order = FirstNamed(enc) if self.symmetric else None

    def _deeper(self) -> None:
        """One more state variable set, and the step to it (with the symmetry breaking on its selector)."""
        d = len(self.states)
        self.states.append(self.enc.state(f"{d}"))
        act = self.enc.selector(f"{d - 1}")
        self.solver.add(self.enc.trans(self.states[d - 1], self.states[d], act))
        if self.order is not None:
            self.solver.add(*self.order.step(act))

    @property
    def settled(self) -> bool:
        """A violation found, or every depth up to ``max_depth`` checked."""
        return self.result.status == "violated" or self.checked >= self.max_depth

    def known_safe_to(self, depth: int) -> None:
        """Take it as known that no state within ``depth`` steps of Init violates an invariant (the
        explicit search checked every one): those depths are not queried, and the solver is told
        that the states up to ``depth`` satisfy the invariants (true of every real path)."""
        depth = min(depth, self.max_depth)
        if self.settled or depth <= self.checked:
            return
        while len(self.states) <= depth:
            self._deeper()
        for d in range(max(0, self.checked + 1), depth + 1):
            self.solver.add(*[self.enc.prop(p, self.states[d]) for p in self.props])
        self.checked = depth
        if self.checked >= self.max_depth:
            self.result = BmcResult("unknown", self.checked, 0.0, reason=self.none_found(self.max_depth))

    def none_found(self, depth: int) -> str:
        """What a search that found nothing through ``depth`` ruled out, in words."""
        return f"no violation{' and no failing step' if self.failing else ''} up to depth {depth}"

    def next_query_s(self) -> float:
        """A guess of the next depth's query time: the last one's times its growth over the one
        before (between 1.5 and 2.5); 0 before two depths are checked."""
        if len(self.took) < 2:
            return 0.0
        return self.took[-1] * min(2.5, max(1.5, self.took[-1] / max(self.took[-2], 1e-3)))

    def would_not_end(self, left: float) -> bool:
        """Would the next depth's query clearly not end in ``left`` seconds: its guess above twice
        that, or a run already spent more than that on it before it was cut?"""
        return self.next_query_s() > 2 * left or self.cut_s > left

    def run(self, timeout: float | None = None, progress: Callable[[int, float], None] | None = None,
            whole: bool = True) -> BmcResult:
        """Check the next depths within ``timeout`` seconds (a violation stops it). ``whole`` False:
        stop before a depth whose query would clearly not end in the time left (:meth:`would_not_end`),
        rather than cut it (a cut query's work is lost), so a later run gets it whole."""
        if self.settled:
            return self.result
        start = time.monotonic()
        enc, solver, states = self.enc, self.solver, self.states
        from deferral.checks.symbolic.failures import failing_at, raise_reached

        def done(res: BmcResult) -> BmcResult:
            self.seconds += res.elapsed_s
            self.result = res
            return res

        for d in range(self.checked + 1, self.max_depth + 1):
            if d == len(states):
                self._deeper()
            left = None if timeout is None else timeout - (time.monotonic() - start)
            if left is not None and (left <= 0 or (not whole and self.would_not_end(left))):
                break
            began = time.monotonic()
            solver.set("timeout", 2**32 - 1 if left is None else max(1, int(left * 1000)))
            bad = z3.Not(z3.And([enc.prop(p, states[d]) for p in self.props])) if self.props else z3.BoolVal(False)
            fails = failing_at(enc, states[d]) if self.failing else None
            r = solver.check(bad if fails is None else z3.Or(bad, fails))
            if r == z3.unknown:
                self.cut_s = max(self.cut_s, time.monotonic() - began)
                return done(BmcResult("unknown", self.checked, time.monotonic() - start,
                                      reason=solver.reason_unknown()))
            if r == z3.sat and fails is not None and z3.is_true(solver.model().eval(fails, model_completion=True)):
                raise_reached(enc, solver.model(), states[:d + 1], "in a bounded model check")
            if r == z3.sat:
                path = concrete_path(enc, [enc.decode(solver.model(), xs) for xs in states[:d + 1]])
                names = [v.prop for v in enc.model.violations(path[-1][1])]
                return done(BmcResult("violated", d, time.monotonic() - start, path, names[0] if names else None))
            self.checked, self.cut_s = d, 0.0
            self.took.append(time.monotonic() - began)
            if progress:
                progress(d, time.monotonic() - start)
        reason = "time limit" if self.checked < self.max_depth else self.none_found(self.max_depth)
        return done(BmcResult("unknown", self.checked, time.monotonic() - start, reason=reason))


def concrete_path(enc: Encoding, states: Sequence[State]) -> list[tuple[Any, State]]:
    """:func:`oriented_path`, where a path the concrete model cannot run (a step on it fails: the
    encoding gave its read naming no element some value) is bad input: the shortest path to a
    failing step (:class:`~deferral.checks.symbolic.failures.ReachedFailure`)."""
    from deferral.checks.symbolic.failures import find_failure
    from deferral.model.context import StepError

    try:
        return oriented_path(enc, states)
    except (AssertionError, StepError):
        find_failure(enc, len(states) - 1)  # raises where a step fails within the path's length
        raise


def least_orientation(layout: Layout, states: Sequence[State]) -> list[State]:
    """The image of a path under the VCPU permutation that makes its state sequence least.

    Which of two symmetric counterexamples (VCPU roles swapped) the solver returns depends
    on its term order, so on unrelated earlier Z3 calls; the least image is the same for
    both, so the trace a user gets does not change from run to run. The image is a path
    of the model when the symmetric sort's elements are interchangeable in its steps
    (:func:`oriented_path` checks that by replaying it).
    """
    images = ([layout.permute(s, perm) for s in states] for perm in layout.permutations)
    return list(min(images))


def oriented_path(enc: Encoding, states: Sequence[State]) -> list[tuple[Any, State]]:
    """The concrete path through ``states`` in its least VCPU orientation when that image is a
    path of the model that still ends in a violation (always, for a protocol whose steps treat
    the VCPUs alike); else through ``states`` as found (a variant that treats one VCPU
    differently, where the image need not be a path)."""
    least = least_orientation(enc.layout, states)
    if least != list(states):
        try:
            path = enc.replay(least)
        except AssertionError:  # not a path of this model: its VCPUs are not interchangeable
            path = []
        if path and enc.model.violations(path[-1][1]):
            return path
    return enc.replay(states)
