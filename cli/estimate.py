"""The size of a search, on stderr: a bound from the layout before it starts, an estimate after its first levels.

Before a search whose layout allows more than :data:`ANNOUNCE_FROM` states, ``check`` says
so (the product of the variables' domains, divided by N! under VCPU symmetry: an upper
bound, far above what is reachable). Once the search has stored :data:`ESTIMATE_FROM`
states, it prints once an estimate of its final size, extrapolated from the growth of its
BFS levels (:func:`~deferral.checks.explicit.limits.project_states`), and the memory that
takes at the bytes per state used so far; when that passes ``--memory-limit`` a warning
says the search will likely stop with exit 3 before it ends (with ``--work-dir``, a note that
it will spill). Estimates, never counts:
the counts come from the search.
"""

from __future__ import annotations

from typing import Callable

from deferral.checks.explicit.limits import layout_bound, project_states, rss_bytes
from deferral.checks.results import Progress, ProgressFn
from deferral.model.bounds import Bounds
from deferral.model.protocol import Protocol

#: Layout bound above which the size is said before the search starts.
ANNOUNCE_FROM = 10**13
#: Stored states before the extrapolated estimate is printed (earlier, it is far too rough).
ESTIMATE_FROM = 250_000


def _mib(n: float) -> str:
    return f"{n / 2**30:,.1f} GiB" if n >= 2**30 else f"{n / 2**20:,.0f} MiB"


class SizeNotes:
    """Says the bound before the search (:meth:`before`) and the estimate during it (:meth:`wrap`)."""

    def __init__(self, protocol: Protocol, bounds: Bounds, symmetry: bool, memory_limit: int | None,
                 say: Callable[[str], None], spills: bool = False) -> None:
        self.bound = layout_bound(tuple(protocol.layout(bounds).sizes),
                                  getattr(bounds, "vcpus", 1) if symmetry else 1)
        self.memory_limit = memory_limit
        self.spills = spills  # a work folder: past the limit the search spills, it does not stop
        self.say = say
        self.rss_start = rss_bytes()
        self.levels: list[int] = [1]  # states per BFS level; level 0 is the initial state
        self.stored = 1
        self.done = False

    def before(self) -> None:
        if self.bound > ANNOUNCE_FROM:
            self.say(f"size: at most {self.bound:.3g} states by the layout (the product of the variables' "
                     f"domains); an estimate follows once {ESTIMATE_FROM:,} states are stored")

    def wrap(self, forward: ProgressFn | None) -> ProgressFn:
        def note(p: Progress) -> None:
            if p.depth >= len(self.levels) and p.states > self.stored:  # a level finished
                self.levels.append(p.states - self.stored)
                self.stored = p.states
                if not self.done and p.states >= ESTIMATE_FROM:
                    self.estimate(p.states)
            if forward is not None:
                forward(p)
        return note

    def estimate(self, states: int) -> None:
        total = project_states(self.levels)
        if total is None:
            return  # the levels still grow faster each time: no end in sight yet, try at the next one
        self.done = True
        total = min(max(total, states), self.bound)
        per_state = max(0, rss_bytes() - self.rss_start) / states
        memory = self.rss_start + per_state * total
        limit = f"; memory limit {_mib(self.memory_limit)}" if self.memory_limit else ""
        self.say(f"estimate: about {total:,.0f} states in all (extrapolated from the growth of BFS levels "
                 f"1..{len(self.levels) - 1}; rough, low early in a search), about {_mib(memory)} at "
                 f"{per_state:,.0f} bytes a state so far{limit}")
        if self.memory_limit and memory > self.memory_limit and self.spills:
            self.say(f"note: the estimate passes --memory-limit {_mib(self.memory_limit)}: the search will "
                     "spill to --work-dir and go on (slower; the disk must hold the spilled part)")
        elif self.memory_limit and memory > self.memory_limit:
            self.say(f"warning: the estimate passes --memory-limit {_mib(self.memory_limit)}: the search will "
                     "likely stop with exit 3 before it ends (use smaller bounds, or --checkpoint DIR and "
                     "--resume on a bigger machine)")
