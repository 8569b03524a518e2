"""Auto's explicit route: the breadth-first search at the requested bounds, time-boxed, as exact refuter and bounded proof.

Where the explicit search (:mod:`deferral.checks.explicit`) can exhaust the requested instance
in a few seconds it beats bmc to depth 12 by an order of magnitude (resync-running-only at
2,1,1,1,S=2: the whole search, 1,487,859 states, in about 3 s; the bmc to its 12 steps took
a minute). Auto runs it after the shipped lemmas, within a time box and a memory limit, on the
invariants only (no liveness pass):

* an invariant violated: the shortest counterexample at the requested bounds (breadth-first:
  the same length as bmc's), oriented as bmc orients its traces; the search stops at the level
  where it is found;
* every reachable state stored and none violating: the invariants **hold at exactly these
  bounds** (every reachable state checked, up to VCPU symmetry): a bounded proof, with no
  invariant and nothing claimed beyond these bounds; auto still tries the lemma routes (a proof
  by an inductive invariant, or for every N, V, F) and reports this one only when they fail;
* stopped first (the time box, the memory limit, or its own estimate that it will not end in
  the box): no violation within the levels done, which says why in ``reason``.

It runs on every CPU this process may use (the search's default; nothing else runs meanwhile: the learners start
after it), in threads whose results do not depend on their number: lazy_ipi_return's 21.3 million states at
2,1,1,3,2 in 9.8 s of wall time on two CPUs instead of 13.7 s on one (PROVE.md, 7 Dec, 06:40-08:00 UTC).

The estimate: after each level, the next one's size is guessed from the last level's growth;
if storing it at the pace so far would pass the box, the search stops there. So it goes as deep
as the box allows (each level deeper refutes more), and stops early where the levels explode,
before a level whose compiled loop or size would overrun the box. Where the smallest instance was
exhausted with no violation first (a bug at the requested bounds is then unlikely), it also
stops when the total extrapolated from the levels' growth
(:func:`~deferral.checks.explicit.limits.project_states`) will not be stored in the box
(3,2,2,2: after about 2 s).

With ``keep``, a search with no violation also hands on a uniform sample of the states of every level
it finished (``Exhaustive.sample``: :class:`Reservoir`; an exhausted instance: of all its reachable
states), which the lemma learner takes as that instance's sample instead of searching it again
(checks/symbolic/clauses.py)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from deferral.checks.explicit.limits import project_states
from deferral.checks.results import Path, Progress
from deferral.model.bounds import Bounds
from deferral.model.context import StepError
from deferral.model.protocol import Protocol
from deferral.model.variants import VariantError

#: The explicit route's share of auto's time left, and its box without a time limit.
EXPLICIT_SHARE, EXPLICIT_S = 0.25, 60.0
#: Its resident memory at most (the machine is shared; 2,1,1,1,S=2 peaks under 100 MiB).
EXPLICIT_MEMORY = 2 * 2**30
#: The route is not started with less than this many seconds in its box.
EXPLICIT_MIN_S = 1.0


@dataclass
class Exhaustive:
    """The explicit route's verdict at ``bounds``: violated, holds (every reachable state
    checked) or unknown (stopped first: ``reason``)."""

    status: str  # violated | holds | unknown
    bounds: Bounds
    states: int
    depth: int  # BFS levels done (the violation's length when violated)
    seconds: float
    reason: str = ""
    path: Path | None = None
    prop: str | None = None
    #: with no violation, where ``explore`` was asked to ``keep`` some: a uniform sample of the states of every
    #: level it finished (where it holds: every reachable state; rows of the layout, up to VCPU symmetry)
    sample: np.ndarray | None = None

    def stage(self) -> dict[str, Any]:
        """Its row of auto's ``stages``."""
        return {"route": "explicit", "bounds": self.bounds.as_dict(), "method": "breadth-first search",
                "families_in": None, "families_kept": None, "seconds": round(self.seconds, 2),
                "states": self.states, "depth": self.depth, "result": self.status,
                **({"reason": self.reason} if self.reason else {})}

    def verdict(self) -> str:
        """What it showed, as a sentence (the JSON's ``exhaustive`` field, a clause of an unknown)."""
        if self.status == "holds":
            return (f"holds at exactly {self.bounds.short()}: every reachable state ({self.states:,} up to VCPU "
                    f"symmetry, {self.depth} levels) checked by the explicit search; no inductive invariant, "
                    "nothing claimed for other bounds")
        if self.status == "violated":
            return f"{self.prop} violated in {self.depth} steps (shortest, breadth-first)"
        return f"no violation within {self.depth} steps ({self.states:,} states; {self.reason})"


class Reservoir:
    """A uniform sample of at most ``cap`` of the states a search's levels give it (each key a seeded random
    priority, the ``cap`` smallest kept: the same search, the same sample, whatever the load);
    :meth:`rows` unpacks it, None where a level was not given (its keys went to disk)."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.rng = np.random.default_rng(0)
        self.keys: np.ndarray | None = None
        self.priority = np.zeros(0)
        self.packer: Any = None
        self.whole = True

    def __call__(self, keys: np.ndarray | None, packer: Any) -> None:
        """A level's keys (the search's ``on_level``)."""
        self.packer = packer
        if keys is None:
            self.whole = False
            return
        if not keys.shape[0]:
            return
        drawn = self.rng.random(keys.shape[0])
        if self.keys is not None and self.keys.shape[0] >= self.cap:  # only keys drawn below the kept ones' highest
            below = drawn < self.priority.max()
            keys, drawn = keys[below], drawn[below]
        both = keys.copy() if self.keys is None else np.concatenate([self.keys, keys])
        priority = np.concatenate([self.priority, drawn])
        if both.shape[0] > self.cap:
            kept = np.sort(np.argpartition(priority, self.cap)[:self.cap])
            both, priority = both[kept], priority[kept]
        self.keys, self.priority = both, priority

    def rows(self) -> np.ndarray | None:
        return None if not self.whole or self.keys is None else self.packer.unpack(self.keys)


def explore(protocol: Protocol, bounds: Bounds, budget: float,
            note: Callable[[str], None] | None = None, exhaust_only: bool = False, keep: int = 0,
            basis_of: Callable[[Bounds], str | None] | None = None) -> Exhaustive:
    """The breadth-first search of ``protocol``'s invariants at ``bounds`` within ``budget`` seconds.
    ``exhaust_only``: stop too when the extrapolated total will not be stored in the box (where a
    deeper level is of little worth: the smallest instance was exhausted with no violation). ``keep``:
    with no violation, a uniform sample of that many of the states of the levels it finished (``Exhaustive.sample``).
    ``basis_of``: what renaming VCPUs at these bounds rests on, as the caller found it (:func:`check_symmetry`; None
    where they are not alike), not proved again."""
    from deferral.checks.explicit.search import search

    say = note or (lambda text: None)
    began = time.monotonic()
    only = protocol.invariants_only()  # same steps and name: no liveness pass
    levels: list[int] = [1]
    last = [0.0]  # the elapsed seconds at the last level's end
    why: list[str] = []

    def stop(p: Progress, violated: bool) -> bool:
        """After each level: stop at a violation, or when the next level would not end in the box."""
        if violated:
            return True
        levels.append(p.states - sum(levels))
        took, last[0] = p.elapsed_s - last[0], p.elapsed_s
        # states a second: the last level's pace (the first levels pay the start-up), at least the mean
        rate = max(p.states / max(p.elapsed_s, 1e-3), levels[-1] / took if took > 0.2 else 0.0)
        if len(levels) < 3 or levels[-2] <= 0:
            return False
        following = levels[-1] * levels[-1] / levels[-2]  # the last level's growth once more
        total = project_states(levels)
        if exhaust_only and total is not None and (total - p.states) / rate > budget - p.elapsed_s:
            why.append(f"its estimate (about {total:,.0f} states in all, {(total - p.states) / rate:.0f} s more at "
                       f"{rate:,.0f} states/s, past its {budget:.0f} s)")
            return True
        if following / rate > budget - p.elapsed_s:
            all_of_it = "" if total is None else f"; about {total:,.0f} states in all"
            why.append(f"its estimate (the next level about {following:,.0f} states, {following / rate:.0f} s at "
                       f"{rate:,.0f} states/s, past its {budget:.0f} s{all_of_it})")
            return True
        return False

    say(f"auto: explicit search at {bounds.short()} (at most {budget:.0f} s)")
    try:
        from deferral.checks.explicit.symmetry_guard import check_symmetry
        from deferral.model.variants import AsymmetricProtocol

        try:  # the published protocols at once; a variant proved by Z3 (sampled where Z3 cannot evaluate it)
            basis: str | None = check_symmetry(protocol, bounds) if basis_of is None else basis_of(bounds)
        except AsymmetricProtocol:  # VCPUs not alike: searched without symmetry, same counterexamples
            basis = None
        reservoir = Reservoir(keep) if keep > 0 else None
        r = search(only, bounds, symmetry=basis is not None, symmetry_basis=basis, time_limit=budget,
                   memory_limit=EXPLICIT_MEMORY, stop=stop,
                   **({"on_level": reservoir} if reservoir is not None else {}))
    except (VariantError, StepError) as exc:  # VCPUs not alike, a step's error: bmc and the lemmas decide
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Exhaustive("unknown", bounds, 0, 0, time.monotonic() - began, reason=f"not used ({first})")
    seconds = time.monotonic() - began
    bad = next((o for o in r.outcomes if o.status == "violated" and o.path is not None), None)
    if bad is not None:
        assert bad.path is not None
        return Exhaustive("violated", bounds, r.states, len(bad.path) - 1, seconds, path=bad.path, prop=bad.name)
    sample = None if reservoir is None or r.engine != "vectorized" else reservoir.rows()
    if r.complete and all(o.status == "holds" for o in r.outcomes):
        return Exhaustive("holds", bounds, r.states, r.depth, seconds, sample=sample)
    reason = why[0] if why else {"time-limit": f"its time box of {budget:.0f} s",
                                 "memory-limit": f"its memory limit of {EXPLICIT_MEMORY / 2**30:.0f} GiB",
                                 "max-states": "the most states it stores"}.get(r.stopped_by or "",
                                                                               r.stopped_by or "stopped")
    return Exhaustive("unknown", bounds, r.states, r.depth, seconds, reason=f"stopped by {reason}", sample=sample)
