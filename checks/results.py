"""What a check reports: per-property outcomes, counterexample paths, search figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from deferral.model.bounds import Bounds
from deferral.model.concrete import Action, State

#: A path: the initial state, then (action, state after it) pairs.
Path = list[tuple[Action | None, State]]


@dataclass
class Outcome:
    """One property's verdict. ``path`` leads to the violating state (shortest, by BFS)."""

    name: str
    kind: str  # invariant | liveness
    status: str  # holds | violated | unknown
    path: Path | None = None
    trace_file: str | None = None

    @property
    def length(self) -> int | None:
        return None if self.path is None else len(self.path) - 1


@dataclass
class Progress:
    """A progress report during a search (sent once per BFS level, and on long levels)."""

    states: int
    transitions: int
    depth: int
    frontier: int
    elapsed_s: float


ProgressFn = Callable[[Progress], None]


@dataclass
class SearchResult:
    variant: str
    bounds: Bounds
    symmetry: bool
    states: int
    transitions: int
    depth: int
    elapsed_s: float
    complete: bool
    stopped_by: str | None  # None, "max-states" or "time-limit"
    outcomes: list[Outcome]
    engine: str = "concrete"
    workers: int = 1
    stats: dict[str, Any] = field(default_factory=dict)

    def outcome(self, name: str) -> Outcome:
        for o in self.outcomes:
            if o.name == name:
                return o
        raise KeyError(name)

    @property
    def violated(self) -> bool:
        return any(o.status == "violated" for o in self.outcomes)

    @property
    def exit_code(self) -> int:
        """0 every property holds, 1 one is violated, 3 a limit stopped the search first."""
        if self.violated:
            return 1
        if any(o.status == "unknown" for o in self.outcomes):
            return 3
        return 0


class SearchLimit(Exception):
    """Raised inside a search when --max-states or --time-limit is reached."""
