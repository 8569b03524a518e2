"""Refuting a claim for every N, V, F: a counterexample found by explicit search at small instances.

``prove --parametric`` claims the invariants for every number of VCPUs, pages and frames at a
concrete queue capacity and number of spaces. One reachable state that violates an invariant
at any N, V, F (same Q and S) refutes that claim, and the explicit search finds the shortest
path to one. Small instances are searched in order of size, each breadth-first (so the
counterexample is the shortest at the instance that has it), each capped in states: a capped
search has finished every level before the one it stopped in, so what it finds is still the
shortest there, and what it does not find is reported as not searched (never as safe). Only the
invariants are searched (no liveness pass), and a search stops at the end of the level where they
are violated.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from deferral.checks.results import Outcome
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.protocol import Protocol

#: The small instances (N, V, F), smallest state spaces first; the last ones (a fourth VCPU, a
#: third page or frame) for bugs that need them, searched only after a proof that fails.
SMALL: tuple[tuple[int, int, int], ...] = (
    (1, 1, 1), (1, 1, 2), (2, 1, 1), (1, 2, 1), (2, 1, 2), (3, 1, 1), (2, 2, 1), (2, 2, 2), (3, 1, 2),
    (3, 2, 1), (4, 1, 1), (2, 3, 1), (2, 1, 3))
#: Before the proof: this much time at most (and a twentieth of the limit), each instance at most
#: FIRST_STATES states: the smallest instances, where most bugs show, in a second or so.
FIRST_S, FIRST_STATES = 1.5, 500_000
#: Before learning (a minute or more), once the shipped lemmas did not prove it: the instances the first
#: search left unfinished, searched further, each up to SECOND_STATES states, all together SECOND_TOTAL
#: (counts: as far under any load), within SECOND_S or SECOND_SHARE of the limit. A user's bug that needs
#: a second page (lazy_partial_bug) violates at 2,2,1,2 past the first search's cap: it was found only by
#: the search after the learning, at 136 s (PROVE.md, 6 Dec, morning).
SECOND_S, SECOND_SHARE, SECOND_STATES, SECOND_TOTAL = 10.0, 0.15, 2_000_000, 3_000_000
#: After a proof that did not succeed: this much time at most (and a tenth of the limit, kept out
#: of the proof's share), each instance at most LAST_STATES states (2,000,000 before 5 Dec, night: a
#: user's tagged-TLB bug needs 2,959,475 at 2,1,1,1,S=2, 0.8 s of search) and SEARCH_MEMORY bytes.
LAST_S, LAST_STATES = 30.0, 12_000_000
#: :func:`search_rounds`: each round searches this many times as far as the one before.
ROUND_GROWTH = 4
#: A search's resident memory at most (the machine is shared), as auto's explicit route.
SEARCH_MEMORY = 2 * 2**30


@dataclass
class Searched:
    """One small instance searched: where, how many states, and whether it was exhausted."""

    index: int  # in SMALL
    bounds: Bounds
    states: int
    complete: bool

    def show(self) -> str:
        return self.bounds.short() + ("" if self.complete else f" (first {self.states:,} states)")


@dataclass
class Refutation:
    """An invariant violated at a small instance: the shortest counterexample there."""

    bounds: Bounds
    model: Model  # the protocol at ``bounds`` (what the path's states are over)
    outcome: Outcome  # the violated invariant and its shortest path
    elapsed_s: float

    @property
    def length(self) -> int:
        return self.outcome.length or 0


@dataclass
class SmallSearch:
    """What :func:`search_small` did: the refutation if it found one, and every instance it searched."""

    refutation: Refutation | None = None
    searched: list[Searched] = field(default_factory=list)
    spent: int = 0  # states stored by every search together (:func:`search_rounds` searches again)

    def then(self, later: "SmallSearch") -> "SmallSearch":
        """This search followed by ``later`` (which started at :meth:`next_index`): the instances each finished
        or searched furthest, and ``later``'s refutation."""
        start = later.searched[0].index if later.searched else self.next_index()
        return SmallSearch(later.refutation, [x for x in self.searched if x.index < start] + later.searched)

    def next_index(self, start: int = 0) -> int:
        """The first instance of :data:`SMALL` not exhausted yet (a later search starts there)."""
        for s in self.searched:
            if not s.complete:
                return s.index
        return self.searched[-1].index + 1 if self.searched else start

    def summary(self) -> str:
        """One clause for an unknown verdict's reason: where no counterexample was found."""
        if not self.searched:
            return ""
        return "no counterexample at " + ", ".join(s.show() for s in self.searched)


def search_rounds(protocol: Protocol, ats: Sequence[tuple[int, Bounds]], budget_s: float, first_states: int,
                  max_states: int, total_states: int, note: Callable[[str], None] | None = None,
                  shorter_than: int | None = None) -> SmallSearch:
    """Search the instances ``ats`` (index in :data:`SMALL`, bounds; cheapest first) in rounds, as iterative
    deepening does: each round searches every instance not exhausted yet breadth-first from its start, the first
    round up to ``first_states`` states each, every later one :data:`ROUND_GROWTH` times as far (at most
    ``max_states``), all rounds together at most ``total_states`` states, until one violates an invariant, the
    budget is spent, or every instance is exhausted or searched to ``max_states``. So a shallow bug in any of
    them is found before a deep search of the first (a round's repeated levels cost a fraction of the next).
    ``shorter_than``: only a violation in fewer steps counts (each search stops after that depth; an instance
    whose shortest violation is no shorter is done)."""
    began = time.monotonic()
    done = SmallSearch()
    if not protocol.invariants_only().properties:
        return done
    last: dict[Bounds, Searched] = {}  # each instance's furthest search
    cap = first_states
    pending = list(ats)
    while pending and done.spent < total_states:
        for index, at in list(pending):
            left = budget_s - (time.monotonic() - began)
            states = min(cap, max_states, total_states - done.spent)
            if left <= 0.05 or states <= 0:
                pending = []
                break
            bad, found = _search_one(protocol, at, states, left, note, shorter_than)
            # a violation no shorter than ``shorter_than`` does not count, and the instance is done: none is shorter
            no_shorter = bad is not None and shorter_than is not None and (bad.length or 0) >= shorter_than
            if no_shorter:
                bad = None
            if bad is not None:
                assert found.model is not None
                done.refutation = Refutation(at, found.model, bad, time.monotonic() - began)
                done.searched = list(last.values())
                return done
            done.spent += found.states
            last[at] = Searched(index, at, found.states, found.complete or no_shorter)
            deep_enough = shorter_than is not None and found.depth >= shorter_than - 1
            if found.complete or no_shorter or deep_enough or found.states >= max_states \
                    or found.stopped_by == "time-limit":
                pending.remove((index, at))
        cap *= ROUND_GROWTH
    done.searched = list(last.values())
    return done


def _search_one(protocol: Protocol, at: Bounds, max_states: int, time_limit: float,
                note: Callable[[str], None] | None, shorter_than: int | None = None) -> tuple[Outcome | None, Any]:
    """One breadth-first search of ``at`` for an invariant's violation (``shorter_than``: stopped after the level
    below it): its shortest violation (with a path) or None, and the search's result."""
    from deferral.checks.explicit.search import search_reduced_if_alike

    if note is not None:
        note(f"searching {at.short()} for a counterexample (at most {max_states:,} states)")
    deep = {} if shorter_than is None else {"stop": lambda p, violated: violated or p.depth >= shorter_than - 1}
    res = search_reduced_if_alike(protocol.invariants_only(), at, max_states=max_states, time_limit=time_limit,
                                  workers=1, until_all_violated=True, memory_limit=SEARCH_MEMORY, **deep)
    bad = [o for o in res.outcomes if o.status == "violated" and o.path is not None]
    return (min(bad, key=lambda o: o.length or 0) if bad else None), res


def instances(bounds: Bounds, start: int = 0, within: bool = False) -> list[tuple[int, Bounds]]:
    """The small instances from ``SMALL[start]`` on (with their index), at ``bounds``' other values
    (Q, S, ...); ``within``: only those no larger than ``bounds`` in N, V and F (a bounded claim's)."""
    out = []
    for index in range(start, len(SMALL)):
        n, v, f = SMALL[index]
        try:
            at = bounds.replace(vcpus=n, pages=v, frames=f)
        except (KeyError, ValueError):  # a protocol without these bounds, or out of their range
            continue
        if within and (n > bounds["vcpus"] or v > bounds["pages"] or f > bounds["frames"]):
            continue
        out.append((index, at))
    return out


def search_small(protocol: Protocol, bounds: Bounds, budget_s: float, max_states: int, start: int = 0,
                 note: Callable[[str], None] | None = None, within: bool = False,
                 pick: Callable[[Bounds], bool] | None = None, total_states: int | None = None) -> SmallSearch:
    """Search the small instances (from ``SMALL[start]``; ``within``: only those no larger than
    ``bounds``; ``pick``: only those it accepts) in order until one violates an invariant, the
    budget is spent, or none is left; each search capped at ``max_states`` states, all of them
    together at ``total_states``."""
    from deferral.checks.explicit.search import search
    from deferral.model.variants import AsymmetricProtocol

    began = time.monotonic()
    done = SmallSearch()
    only = protocol.invariants_only()  # same steps and name: no liveness pass
    if not only.properties:
        return done
    for index, at in instances(bounds, start, within):
        if pick is not None and not pick(at):
            continue
        left = budget_s - (time.monotonic() - began)
        cap = max_states if total_states is None else min(max_states, total_states - sum(x.states for x in done.searched))
        if left <= 0.05 or cap <= 0:
            break
        if note is not None:
            note(f"searching {at.short()} for a counterexample")
        options: dict[str, Any] = dict(max_states=cap, time_limit=left, workers=1, until_all_violated=True,
                                       memory_limit=SEARCH_MEMORY)
        try:
            res = search(only, at, **options)
        except AsymmetricProtocol:  # VCPUs not alike: no symmetry reduction, same counterexamples
            res = search(only, at, symmetry=False, **options)
        bad = [o for o in res.outcomes if o.status == "violated" and o.path is not None]
        if bad:
            first = min(bad, key=lambda o: o.length or 0)
            assert res.model is not None
            done.refutation = Refutation(at, res.model, first, time.monotonic() - began)
            return done
        done.searched.append(Searched(index, at, res.states, res.complete))
        if res.stopped_by == "time-limit":
            break
    return done
