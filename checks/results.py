"""What a check reports: per-property outcomes, counterexample paths, search figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from deferral.model.bounds import Bounds
from deferral.model.concrete import Action, Model, State
from deferral.model.variants import AsymmetricProtocol

#: A path: the initial state, then (action, state after it) pairs.
Path = list[tuple[Action | None, State]]


def path_from_parents(model: Model, parent: Sequence[int], via: Sequence[int], n: int, *,
                      symmetry: bool, start: State | None = None) -> Path:
    """A shortest path to stored state ``n`` of a breadth-first search, over real states.

    Every explorer numbers its stored states with the start as state 0 and keeps, per
    state, its BFS ``parent`` and the action index ``via`` that reached it; this is the one
    place such a record becomes a :data:`Path`. The stored states are found again by
    replaying the recorded actions from ``start`` (default: the initial state), then
    :func:`concretize` maps them to real VCPU numbers.
    """
    chain = [n]
    while n != 0:
        n = int(parent[n])
        chain.append(n)
    chain.reverse()
    actions = [int(via[m]) for m in chain[1:]]
    canon: Callable[[State], State] = model.canonical if symmetry else (lambda s: s)
    stored = [canon(model.initial if start is None else start)]
    for a in actions:
        nxt = model.apply(stored[-1], model.actions[a])
        assert nxt is not None, "recorded action not enabled in its stored parent"
        stored.append(canon(nxt))
    return concretize(model, stored, actions, symmetry)


def concretize(model: Model, stored: Sequence[State], actions: Sequence[int], symmetry: bool) -> Path:
    """Turn a BFS path of stored (maybe canonical) states into a path over real states.

    ``stored[0]`` is the initial state and ``stored[j+1]`` was reached by action
    ``actions[j]`` from (a VCPU renaming of) ``stored[j]``. Without symmetry the stored
    states are real already. With it, each step is found again from the real current
    state: the enabled action whose successor has the stored canonical form.
    """
    current = model.initial
    path: Path = [(None, current)]
    for j, target in enumerate(stored[1:]):
        if not symmetry:
            action = model.actions[actions[j]]
            current = model.apply(current, action)  # type: ignore[assignment]
            assert current == target, "stored path does not replay"
            path.append((action, current))
            continue
        for action, succ in model.successors(current):
            if model.canonical(succ) == target:
                current = succ
                path.append((action, current))
                break
        else:  # the reduced search explored another system: the protocol's VCPUs are not alike
            raise AsymmetricProtocol(model.protocol.name, f"step {j + 1} of a path found up to VCPU symmetry "
                                     "has no counterpart on the real states")
    return path


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
    spilled: int = 0  # bytes the search has written to its work folder (--work-dir)
    phase: str = ""  # what a long level is doing now, when not expanding ("merging: ...")
    checkpoint: str = ""  # the last checkpoint written (--checkpoint): "depth 12, 4 min ago"


ProgressFn = Callable[[Progress], None]


@dataclass
class Coverage:
    """What a search exercised: per step, transitions and the states enabling it; per
    property, the states it was evaluated in.

    Counts are over stored states (orbits under symmetry). An invariant is evaluated in
    every state up to the end of the BFS level where it is first violated; a liveness
    goal in every state of a complete search (0 when a limit stopped it).
    """

    transitions: dict[str, int]  # step name -> transitions it produced
    enabled_in: dict[str, int]  # step name -> states where some instance of it is enabled
    checked: dict[str, int]  # property name -> states it was evaluated in

    def never_enabled(self) -> list[str]:
        return [name for name, n in self.enabled_in.items() if n == 0]

    def to_json(self) -> dict[str, Any]:
        return {"steps": [{"name": name, "transitions": self.transitions[name], "enabled_in": n}
                          for name, n in self.enabled_in.items()],
                "properties": [{"name": name, "states_checked": n} for name, n in self.checked.items()]}


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
    stopped_by: str | None  # None, "max-states", "time-limit", "memory-limit", "disk-full", "stopped" (a stop
    # hook) or ALL_VIOLATED (every property checked is an invariant found violated)
    outcomes: list[Outcome]
    engine: str = "concrete"
    workers: int = 1
    stats: dict[str, Any] = field(default_factory=dict)
    coverage: Coverage | None = None
    #: the protocol and bounds the search ran on (what its paths and counts are over)
    model: Model | None = field(default=None, repr=False, compare=False)
    #: with symmetry, why the reduction is exact: "published", "proved" (by Z3 at these bounds),
    #: "checked" (Z3 could not evaluate the steps: every state the search expanded checked against
    #: every renaming) or "sampled" (the same, past 4 VCPUs: checked on sampled states), None where not checked
    symmetry_basis: str | None = None

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


def never_enabled_warnings(result: SearchResult) -> list[str]:
    """One warning per step that no reachable state enables; one line in all after an
    incomplete search (plain text: ``check --json`` prints them without loading rich)."""
    if result.coverage is None:
        return []
    never = result.coverage.never_enabled()
    if not never:
        return []
    if not result.complete:  # a search stopped by a limit: a step may fire later, say so once
        return [f"{len(never)} step(s) not enabled in the {result.states:,} states explored before the search "
                f"stopped ({', '.join(never)}): the search is incomplete, this is not a finding about the variant"]
    return [f"step {name} is never enabled in any reachable state at {result.bounds.short()}: a step that never "
            "fires checks nothing (a bug in the variant, or bounds too small for it)" for name in never]


#: ``stopped_by`` of a search that stopped because every property it checks is an invariant
#: found violated: nothing left to decide (each counterexample found is a shortest one).
ALL_VIOLATED = "all-violated"


def every_verdict_in(enabled: bool, invariants: Sequence[Any], liveness: Sequence[Any],
                     first_bad: Mapping[str, int]) -> bool:
    """Whether a search asked to stop once decided (``enabled``) can stop after this level:
    it checks invariants only and each has a violating state already."""
    return (enabled and not liveness and bool(invariants)
            and all(prop.name in first_bad for prop in invariants))


class SearchLimit(Exception):
    """Raised inside a search when --max-states or --time-limit is reached."""
