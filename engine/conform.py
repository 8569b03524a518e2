"""Conformance: single-step the engine along model paths and compare, step by step.

The driver picks each step (the model's action), the engine executes it with its own
code (:meth:`Hypervisor.execute`), and after every step the engine's state, mapped to
the model's vocabulary (:func:`~deferral.engine.tracing.snapshot`), must equal the
model's state. At every state visited, enabledness is compared both ways: every action
the model enables must be possible in the engine, and every step the engine would take
must be enabled in the model. Paths come from

* :func:`conform_depth`: every path up to a depth (iterative-deepening DFS; a model state
  already explored with at least as much depth left is not explored again unless
  ``prune=False``; the engine's state matched the model's there in every field, so this
  assumes only that the engine's future depends on nothing outside its snapshot, e.g.
  not on a ring buffer's head index),
* :func:`conform_random`: seeded random walks,
* :func:`conform_counterexamples`: the variant's shortest counterexamples; there the
  engine's own state must break the property (its online check, or for liveness an
  exhaustive search of the engine's own steps that finds no way out of SdWait).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from itertools import product
from typing import Any, Callable, Iterator

from deferral.checks.explicit.search import search
from deferral.engine.hypervisor import STEP_PARAMS, EngineSpec, Hypervisor, build_engine
from deferral.engine.judge import engine_view, shown_args, with_ghosts
from deferral.engine.tracing import Recorder, snapshot
from deferral.engine.user import engine_error
from deferral.engine.vcpu import Mode
from deferral.model.concrete import Action, Model, State, Violation
from deferral.model.context import StepError
from deferral.traces.format import Trace


class Stepper:
    """A single-stepped engine (no threads, no trace); its state has no ghost variables."""

    def __init__(self, hv: Hypervisor, model_steps: frozenset[str] | None = None) -> None:
        self.hv = hv
        #: the model's step names: a method a user's ENGINE adds is a step only where the model has
        #: one of that name (else it is the ENGINE's own helper, not a step to judge)
        self.model_steps = model_steps

    @classmethod
    def fresh(cls, model: Model, engine: EngineSpec) -> "Stepper":
        return cls(build_engine(engine, model.bounds), frozenset(step.name for step in model.protocol.steps))

    def copy(self) -> "Stepper":
        return Stepper(self.hv.copy(), self.model_steps)

    def state(self) -> dict[str, Any]:
        return snapshot(self.hv)

    def execute(self, name: str, args: dict[str, int]) -> None:
        self.hv.execute(name, args)

    def engine_steps(self) -> Iterator[tuple[str, dict[str, int]]]:
        """Every step instance the engine would take now (its own enumeration)."""
        b = self.hv.bounds
        ranges = {"i": range(b.vcpus), "k": range(b.vcpus), "p": range(b.pages), "f": range(b.frames + 1),
                  "s": range(self.hv.spaces)}
        for name, params in self.hv.steps().items():
            if any(p not in ranges for p in params):  # a user's step over another sort: not enumerated here
                continue
            if name not in STEP_PARAMS and self.model_steps is not None and name not in self.model_steps:
                continue  # a helper method of the ENGINE, not a step
            for values in product(*(ranges[p] for p in params)):
                args = dict(zip(params, values))
                if self.hv.can(name, args):
                    yield name, args


def model_args(action: Action) -> dict[str, int]:
    return shown_args(action)


def _label(name: str, args: dict[str, int]) -> str:
    return f"{name}({','.join(str(v) for v in args.values())})"


def field_diff(expected: dict[str, Any], actual: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Leaf differences of two JSON states: {"shadow[1][0]": (expected, actual)}; queues whole."""
    out: dict[str, tuple[Any, Any]] = {}

    def walk(path: str, e: Any, a: Any, var: str, depth: int) -> None:
        whole_queue = var == "queue" and depth == 1
        if isinstance(e, list) and isinstance(a, list) and len(e) == len(a) and not whole_queue:
            for n, (x, y) in enumerate(zip(e, a)):
                walk(f"{path}[{n}]", x, y, var, depth + 1)
        elif e != a:
            out[path] = (e, a)

    for key in sorted(set(expected) | set(actual)):
        walk(key, expected.get(key), actual.get(key), key, 0)
    return out


@dataclass
class Mismatch:
    kind: str  # state | enabled-in-model-only | enabled-in-engine-only | engine-error
    step_number: int  # steps taken before (enabledness) or including (state) the mismatch
    step: str
    path: list[str]
    reason: str
    expected: dict[str, Any] = field(default_factory=dict)
    actual: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def describe(self) -> str:
        where = f"after {' ; '.join(self.path) or 'the initial state'}"
        return f"{self.kind} at step {self.step_number} {self.step}: {self.reason} ({where})"


@dataclass
class ConformReport:
    mode: str
    variant: str
    bounds: dict[str, int]
    paths: int = 0
    steps: int = 0
    states_checked: int = 0
    enabled_checks: int = 0
    complete: bool = True
    stopped_by: str | None = None
    elapsed_s: float = 0.0
    mismatch: Mismatch | None = None
    counterexamples: list[dict[str, Any]] = field(default_factory=list)
    #: --counterexamples: properties the model's search stopped before deciding (no counterexample driven)
    undecided: list[str] = field(default_factory=list)
    #: --counterexamples: what the model's search covered ({"states", "depth", "complete"})
    model_search: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.mismatch is None and all(c.get("engine_violates") for c in self.counterexamples)

    def to_json(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["mismatch"] = None if self.mismatch is None else self.mismatch.to_json()
        out["conforms"] = self.mismatch is None
        out["ok"] = self.ok
        return out


class _Checker:
    """Shared comparison logic for every mode."""

    def __init__(self, model: Model, engine: EngineSpec, report: ConformReport) -> None:
        self.model = model
        self.engine = engine
        self.report = report

    def compare_state(self, state: State, st: Stepper, number: int, label: str, path: list[str]) -> bool:
        self.report.states_checked += 1
        expected, actual = engine_view(self.model, state), st.state()
        if expected == actual:
            return True
        diff = field_diff(expected, actual)
        self.report.mismatch = Mismatch("state", number, label, path,
                                        "the engine's state differs from the model's",
                                        {k: a for k, (a, _) in diff.items()},
                                        {k: b for k, (_, b) in diff.items()})
        return False

    def compare_enabled(self, state: State, st: Stepper, number: int, path: list[str]) -> bool:
        self.report.enabled_checks += 1
        for action in self.model.actions:
            args = model_args(action)
            m = self.model.enabled(state, action)
            reason = st.hv.why_not(action.step.name, args)
            if m and reason is not None:
                self.report.mismatch = Mismatch("enabled-in-model-only", number, action.label(), path,
                                                f"the model enables it but the engine refuses: {reason}")
                return False
            if not m and reason is None:
                self.report.mismatch = Mismatch("enabled-in-engine-only", number, action.label(), path,
                                                "the engine would take it but the model does not enable it")
                return False
        return True

    def drive(self, st: Stepper, choose: Callable[[State], Action | None], steps: int,
              stop: Callable[[], bool] = lambda: False) -> None:
        """From the initial state, take up to ``steps`` actions that ``choose`` picks in both the
        model and the engine: the states are compared at the start and after each step, the
        enabled steps before each step and at the end; the first disagreement is recorded.
        ``stop()`` true before a step ends the path there (a work limit)."""
        state, path = self.model.initial, []
        if not self.compare_state(state, st, 0, "initial", []):
            return
        for _ in range(steps):
            if not self.compare_enabled(state, st, len(path), path):
                return
            if stop():
                return
            action = choose(state)
            if action is None:
                return
            nxt = self.take(state, st, action, len(path) + 1, path)
            if nxt is None:
                return
            state = nxt
            path.append(action.label())
        self.compare_enabled(state, st, len(path), path)

    def take(self, state: State, st: Stepper, action: Action, number: int, path: list[str]) -> State | None:
        """Execute ``action`` in both; None (and a recorded mismatch) if they disagree."""
        nxt = self.model.apply(state, action)
        assert nxt is not None
        try:
            st.execute(action.step.name, model_args(action))
        except Exception as exc:  # the engine refused or crashed: report it, do not propagate
            crash = engine_error(exc)
            if crash:  # the user's ENGINE raised: a broken variant file (exit 2), not a divergence
                raise StepError(f"{crash} (ENGINE, at step {number} {action.label()})") from exc
            self.report.mismatch = Mismatch("engine-error", number, action.label(), path,
                                            f"{type(exc).__name__}: {exc}")
            return None
        self.report.steps += 1
        if not self.compare_state(nxt, st, number, action.label(), path + [action.label()]):
            return None
        return nxt


def _start(model: Model, engine: EngineSpec, mode: str) -> tuple[ConformReport, _Checker, Stepper, float]:
    report = ConformReport(mode, model.protocol.name, model.bounds.as_dict())
    checker = _Checker(model, engine, report)
    st = Stepper.fresh(model, engine)
    checker.compare_state(model.initial, st, 0, "initial", [])
    return report, checker, st, time.monotonic()


def conform_depth(model: Model, engine: EngineSpec, depth: int, *, max_steps: int = 200_000,
                  time_limit: float | None = None, prune: bool = True) -> ConformReport:
    """Every model path up to ``depth`` steps (bounded by ``max_steps`` engine steps).

    Iterative deepening (depth 1, 2, ..., ``depth``), so a mismatch is reported on a
    shortest path that shows it.
    """
    report, checker, root, t0 = _start(model, engine, "depth")
    counted = 0

    def limit() -> bool:
        if report.steps >= max_steps:
            report.stopped_by = "max-steps"
        elif time_limit is not None and time.monotonic() - t0 > time_limit:
            report.stopped_by = "time-limit"
        return report.stopped_by is not None

    def dfs(state: State, st: Stepper, path: list[str], bound: int, explored: dict[State, int]) -> bool:
        nonlocal counted
        left = bound - len(path)
        if prune:
            if explored.get(state, -1) >= left:
                return True
            explored[state] = left
        if not checker.compare_enabled(state, st, len(path), path):
            return False
        successors = [a for a in model.actions if model.enabled(state, a)] if left else []
        if not successors:
            counted += 1
        for action in successors:
            if limit():
                return True
            child = st.copy()
            nxt = checker.take(state, child, action, len(path) + 1, path)
            if nxt is None or not dfs(nxt, child, path + [action.label()], bound, explored):
                return False
        return True

    if report.mismatch is None:
        for bound in range(1, depth + 1):
            counted = 0
            if not dfs(model.initial, root, [], bound, {}) or report.stopped_by:
                break
    report.paths = counted
    report.complete = report.stopped_by is None and report.mismatch is None
    report.elapsed_s = round(time.monotonic() - t0, 3)
    return report


def record(model: Model, engine: EngineSpec, actions: list[Action], *, snapshots: bool = True) -> Trace:
    """The engine's own trace (recorded by its tracing layer) of single-stepping ``actions``."""
    hv = build_engine(engine, model.bounds)
    recorder = Recorder(hv, model, snapshots=snapshots, check=False)
    for action in actions:
        hv.execute(action.step.name, model_args(action))
    return recorder.trace()


def conform_random(model: Model, engine: EngineSpec, walks: int, length: int, seed: int, *,
                   max_steps: int | None = None, time_limit: float | None = None) -> ConformReport:
    """``walks`` seeded random walks of up to ``length`` steps each, stopped (``stopped_by``)
    after ``max_steps`` engine steps or ``time_limit`` seconds; ``paths`` counts the walks begun."""
    report, checker, _, t0 = _start(model, engine, "random-walks")
    rng = random.Random(f"deferral-conform/{seed}")

    def pick(state: State) -> Action | None:
        enabled = [a for a in model.actions if model.enabled(state, a)]
        return rng.choice(enabled) if enabled else None

    def limit() -> bool:
        if max_steps is not None and report.steps >= max_steps:
            report.stopped_by = "max-steps"
        elif time_limit is not None and time.monotonic() - t0 > time_limit:
            report.stopped_by = "time-limit"
        return report.stopped_by is not None

    for _ in range(walks):
        if report.mismatch is not None or limit():
            break
        checker.drive(Stepper.fresh(model, engine), pick, length, limit)
        report.paths += 1
    report.complete = report.mismatch is None and report.stopped_by is None
    report.elapsed_s = round(time.monotonic() - t0, 3)
    return report


def follow(model: Model, engine: EngineSpec, actions: list[Action], report: ConformReport | None = None
           ) -> tuple[ConformReport, Stepper]:
    """Drive the engine along ``actions`` from the initial state, comparing at each step."""
    if report is None:
        report = ConformReport("path", model.protocol.name, model.bounds.as_dict())
    checker = _Checker(model, engine, report)
    st = Stepper.fresh(model, engine)
    remaining = iter(actions)
    checker.drive(st, lambda state: next(remaining, None), len(actions))
    report.paths += 1
    return report, st


def counterexample_actions(model: Model, prop: str, *, max_states: int | None = None,
                           time_limit: float | None = None) -> list[Action] | None:
    """The actions of the model's shortest counterexample to ``prop`` (None if it holds)."""
    result = search(model.protocol, model.bounds, max_states=max_states, time_limit=time_limit)
    outcome = result.outcome(prop)
    if outcome.path is None:
        return None
    return [a for a, _ in outcome.path[1:] if a is not None]


def end_state(model: Model, actions: list[Action]) -> State:
    state = model.initial
    for action in actions:
        nxt = model.apply(state, action)
        if nxt is None:
            break
        state = nxt
    return state


def engine_failing(model: Model, st: Stepper, model_state: State, prop: str) -> list[Violation]:
    """Instances of invariant ``prop`` that fail on the engine's own state, with the ghost
    variables of ``model_state`` (the model's state at the same point of the path)."""
    return model.failing(model.protocol.prop(prop), with_ghosts(model, st.state(), model_state))


def engine_can_leave_wait(st: Stepper, *, max_states: int = 50_000) -> bool | None:
    """Can the engine, by its own steps, reach a state with no VCPU in SdWait? None: too big."""
    seen = {repr(st.state())}
    frontier = [st]
    while frontier:
        nxt = []
        for node in frontier:
            if all(v.mode is not Mode.SDWAIT for v in node.hv.vcpus):
                return True
            for name, args in list(node.engine_steps()):
                child = node.copy()
                child.execute(name, args)
                key = repr(child.state())
                if key not in seen:
                    seen.add(key)
                    nxt.append(child)
                    if len(seen) > max_states:
                        return None
        frontier = nxt
    return False


def conform_counterexamples(model: Model, engine: EngineSpec, *, max_states: int = 4_000_000,
                            time_limit: float | None = 120.0) -> ConformReport:
    """Drive the engine along the variant's shortest counterexample(s) and judge the engine.

    The counterexamples come from the model checker's search (shortest by BFS, mapped
    back to real VCPU numbers); the engine then takes exactly those steps.
    """
    report = ConformReport("counterexamples", model.protocol.name, model.bounds.as_dict())
    t0 = time.monotonic()
    result = search(model.protocol, model.bounds, max_states=max_states, time_limit=time_limit)
    report.model_search = {"states": result.states, "depth": result.depth, "complete": result.complete}
    for outcome in result.outcomes:
        if outcome.status == "unknown":
            report.complete = False
            report.stopped_by = result.stopped_by
            report.undecided.append(outcome.name)
        if outcome.status != "violated" or not outcome.path:
            continue
        actions = [a for a, _ in outcome.path[1:] if a is not None]
        report, st = follow(model, engine, actions, report)
        entry: dict[str, Any] = {"property": outcome.name, "kind": outcome.kind, "length": len(actions),
                                 "path": [a.label() for a in actions]}
        if outcome.kind == "invariant":
            bad = engine_failing(model, st, end_state(model, actions), outcome.name)
            entry.update(engine_violates=bool(bad) and report.mismatch is None,
                         engine_stale=[list(v.args) for v in bad])
        else:
            leaves = engine_can_leave_wait(st)
            entry.update(engine_stuck=[v.index for v in st.hv.vcpus if v.mode is Mode.SDWAIT],
                         engine_can_leave_wait=leaves,
                         engine_violates=leaves is False and report.mismatch is None)
        report.counterexamples.append(entry)
    report.elapsed_s = round(time.monotonic() - t0, 3)
    return report
