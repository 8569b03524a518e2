"""Random simulation: many seeded random walks at once, invariants checked in every state.

For bounds too big to explore exhaustively. A batch of walkers starts at the initial
state; at each step every walker takes one enabled step instance chosen uniformly at
random (the guards and effects are the search's compiled numpy kernels, over the whole
batch), and every invariant is checked in every state reached. Workers are forked
processes, each running its own batches from its own seed stream. A violation is
shrunk (:func:`shrink`): cycles cut, single steps dropped while the violation stays,
then a breadth-first search from the initial state, bounded in states, looks for a
shorter one. A simulation never shows that a property holds: finding nothing is
"unknown".
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue as queue_mod
import signal
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from deferral.checks.explicit.expand import Expander, locate
from deferral.checks.explicit.limits import usable_cpus
from deferral.checks.explicit.packing import blas_threads
from deferral.checks.explicit.search import search_reduced_if_alike
from deferral.checks.results import Path
from deferral.model.concrete import Action, Model, State
from deferral.model.context import StepError

#: Walkers advanced together in one batch (per :data:`ACTIONS_PER_BATCH` step instances, see
#: :func:`batch_size`).
BATCH = 4096
#: A batch has :data:`BATCH` walkers per this many step instances (at least one BATCH): each step
#: runs every chosen instance's effect over its walkers, a few hundred numpy operations whatever
#: their number; with 420 instances (6,3,3,3, three spaces) 4,096 walkers gave about 17 a call.
ACTIONS_PER_BATCH = 64


def batch_size(n_actions: int) -> int:
    """Walkers a batch for a model of ``n_actions`` step instances."""
    return BATCH * max(1, n_actions // ACTIONS_PER_BATCH)
#: States a shrinking BFS may store before it gives up looking for a shorter violation (it searches
#: the violated property alone and stops at the level that violates it: a few seconds at most).
BFS_BUDGET = 10_000_000
#: ... and the seconds and resident bytes it may take.
BFS_S, BFS_MEMORY = 10.0, 2**30
#: Steps of history a batch allocates first; it doubles as the walks go deeper (up to ``--depth``),
#: so a depth beyond what the time allows costs nothing: the history is 2 bytes per walk and step
#: taken (4 with 65,536 step instances or more), not ``--depth`` steps per walk up front.
HISTORY_ROWS = 256


@dataclass
class SimProgress:
    walks: int
    states: int
    elapsed_s: float


@dataclass
class Violation:
    prop: str
    actions: list[int]  # action indices from the initial state
    batch: int
    walker: int


@dataclass
class SimResult:
    variant: str
    bounds: Any
    seed: int
    depth: int
    workers: int
    walks: int = 0
    states: int = 0  # states visited (every state of every walk, repeats included)
    deadlocks: int = 0  # walks that ended early: no step enabled
    elapsed_s: float = 0.0
    prop: str | None = None
    found_length: int | None = None  # the walk's length up to the violation
    path: Path | None = None  # the shrunk counterexample
    shrink_log: list[str] = field(default_factory=list)
    #: Ctrl-C (or SIGTERM) while the violation was shrunk: ``path`` is the shortest found before it
    interrupted: KeyboardInterrupt | None = None

    @property
    def violated(self) -> bool:
        return self.path is not None

    @property
    def exit_code(self) -> int:
        """1 a violation found; 3 none found (unknown: a simulation proves nothing)."""
        return 1 if self.violated else 3


# ---- walking ---------------------------------------------------------------------------
class Walker:
    """One process's batches of random walks over a compiled model."""

    def __init__(self, model: Model, depth: int) -> None:
        self.model = model
        self.depth = depth
        self.ex = Expander(model, symmetry=False)
        self.invariants = model.invariants
        self.start = self.ex.packer.rows_of([model.initial])
        self.walkers = batch_size(len(model.actions))

    def prepare(self, deadline: float | None = None) -> bool:
        """Trace and compile every kernel now (the invariants first, then each step instance's
        guard and effect), stopping once ``deadline`` (time.monotonic) passes; whether all are
        compiled. Done before the workers fork, they inherit them: each compiled them again (at
        6,3,3,3 with three spaces, 420 instances: about 7 s of CPU each), and a batch's first
        step, compiling them, did not look at the deadline (``--time-limit 2`` ended after 14 s)."""
        for prop in self.invariants:
            if deadline is not None and time.monotonic() > deadline:
                return False
            self.ex.prop_kernel(prop.name)
        for action in self.model.actions:
            if deadline is not None and time.monotonic() > deadline:
                return False
            self.ex.kernel(action.index)
        return True

    def _masks(self, rows: np.ndarray) -> np.ndarray:
        masks = np.zeros((len(self.model.actions), rows.shape[0]), dtype=bool)
        for action in self.model.actions:
            try:
                masks[action.index] = self.ex.guard(rows, action)
            except StepError:
                locate(self.model, rows, action.index)  # the concrete model's error, naming the state
                raise
        return masks

    def _apply(self, rows: np.ndarray, choice: np.ndarray, alive: np.ndarray) -> None:
        live = np.flatnonzero(alive)
        order = live[np.argsort(choice[live], kind="stable")]  # walkers grouped by chosen action
        chosen = choice[order]
        starts = np.flatnonzero(np.r_[True, chosen[1:] != chosen[:-1]]) if chosen.size else chosen
        ends = np.r_[starts[1:], chosen.size]
        for s, e in zip(starts.tolist(), ends.tolist()):
            a = int(chosen[s])
            idx = order[s:e]
            try:
                out = self.ex.apply(rows, idx, self.model.actions[a])
            except StepError:
                locate(self.model, rows[idx], a)
                raise
            rows[idx] = out

    def step(self, rows: np.ndarray, alive: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
        """Every live walk takes one enabled step chosen uniformly (``rows`` and ``alive`` updated
        in place: a walk with none enabled dies); the chosen action per walk, or None if none lives."""
        masks = self._masks(rows)
        counts = masks.sum(axis=0)
        alive &= counts > 0
        if not alive.any():
            return None
        pick = np.minimum((rng.random(rows.shape[0]) * counts).astype(np.int16), np.maximum(counts - 1, 0))
        choice = np.argmax(np.cumsum(masks, axis=0, dtype=np.int16) > pick, axis=0)
        self._apply(rows, choice, alive)
        return choice

    def _first_bad(self, rows: np.ndarray, alive: np.ndarray) -> tuple[str, int] | None:
        for prop in self.invariants:
            bad = alive & ~self.ex.holds(rows, prop)
            if bad.any():
                return prop.name, int(np.flatnonzero(bad)[0])
        return None

    def batch(self, rng: np.random.Generator, batch_no: int, walkers: int | None = None,
              deadline: float | None = None) -> tuple[int, int, Violation | None]:
        """One batch: (states visited, deadlocked walks, the first violation or None).

        The walks stop early (shorter) when ``deadline`` (time.monotonic) passes."""
        walkers = self.walkers if walkers is None else walkers
        rows = np.repeat(self.start, walkers, axis=0)
        alive = np.ones(walkers, dtype=bool)
        small = len(self.model.actions) <= np.iinfo(np.uint16).max
        history = np.zeros((min(self.depth, HISTORY_ROWS), walkers), dtype=np.uint16 if small else np.int32)
        bad = self._first_bad(rows, alive)
        if bad is not None:
            return walkers, 0, Violation(bad[0], [], batch_no, bad[1])
        visited = walkers
        for t in range(self.depth):
            if deadline is not None and time.monotonic() > deadline:
                break
            choice = self.step(rows, alive, rng)
            if choice is None:
                break
            if t == history.shape[0]:  # deeper than allocated: twice the steps (at most the depth)
                grown = np.zeros((min(self.depth, 2 * t), walkers), dtype=history.dtype)
                grown[:t] = history
                history = grown
            history[t] = choice
            visited += int(alive.sum())
            bad = self._first_bad(rows, alive)
            if bad is not None:
                return visited, int((~alive).sum()), Violation(bad[0], history[:t + 1, bad[1]].tolist(),
                                                                batch_no, bad[1])
        return visited, int((~alive).sum()), None


def _work(walker: Walker, seed: int, worker: int, workers: int, max_batches: int | None,
          deadline: float, out: Any) -> None:
    """A worker process: batches worker, worker+workers, ... each seeded by (seed, batch)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the parent's unwinding handler is not for a worker
    try:
        with blas_threads(1):
            batch_no = worker
            last = time.monotonic()
            walks = states = deadlocks = 0
            while (max_batches is None or batch_no < max_batches) and (batch_no == worker or time.monotonic() < deadline):
                rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(batch_no,)))
                visited, dead, violation = walker.batch(rng, batch_no, deadline=deadline)
                walks += walker.walkers
                states += visited
                deadlocks += dead
                if violation is not None:
                    out.put(("violation", worker, walks, states, deadlocks, violation))
                    return
                if time.monotonic() - last > 0.5:
                    out.put(("progress", worker, walks, states, deadlocks, None))
                    walks = states = deadlocks = 0
                    last = time.monotonic()
                batch_no += workers
            out.put(("done", worker, walks, states, deadlocks, None))
    except Exception as exc:  # reported to the parent, which re-raises it
        out.put(("error", worker, 0, 0, 0, _portable(exc)))


def _portable(exc: Exception) -> bytes | str:
    """``exc`` pickled when it comes back whole (the parent raises the same error, so a user's
    step that fails in a worker is the variant's error, as with one worker), else its text."""
    try:
        data = pickle.dumps(exc)
        back = pickle.loads(data)
    except Exception:
        return f"{type(exc).__name__}: {exc}"
    return data if type(back) is type(exc) and str(back) == str(exc) else f"{type(exc).__name__}: {exc}"


def _end_workers(procs: list[Any]) -> None:
    """End the workers still running: SIGKILL, which no handler can delay. A worker may still be
    under the parent's inherited SIGTERM handler (forked, not yet in :func:`_work`), or unwind on
    it and block for ever at exit on the result queue's lock, held by a sibling killed mid-write:
    the parent then waited for ever in ``join``. Workers hold nothing that needs cleaning up."""
    for p in procs:
        if p.is_alive():
            p.kill()
    for p in procs:
        p.join()


def simulate(model: Model, *, seed: int = 0, depth: int = 100, walks: int | None = None,
             time_limit: float = 10.0, workers: int | None = None,
             progress: Callable[[SimProgress], None] | None = None,
             bfs_budget: int = BFS_BUDGET) -> SimResult:
    """Random walks of ``depth`` steps until ``walks`` walks are done or ``time_limit`` passes."""
    n = max(1, int(workers if workers is not None else usable_cpus()))
    start = time.monotonic()
    deadline = start + time_limit
    result = SimResult(model.protocol.name, model.bounds, seed, depth, n)
    found: Violation | None = None
    walker = Walker(model, depth)  # compiled once; forked workers inherit it
    max_batches = None if walks is None else max(1, -(-walks // walker.walkers))
    if n == 1 or "fork" not in multiprocessing.get_all_start_methods():
        result.workers = 1
        batch_no = 0
        last = start
        with blas_threads(1):
            walker.prepare(deadline)
            # the first batch even past the deadline: its walks' initial states are checked
            while (max_batches is None or batch_no < max_batches) and (batch_no == 0 or time.monotonic() < deadline):
                rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(batch_no,)))
                visited, dead, found = walker.batch(rng, batch_no, deadline=deadline)
                result.walks += walker.walkers
                result.states += visited
                result.deadlocks += dead
                if found is not None:
                    break
                if progress and time.monotonic() - last > 1:
                    last = time.monotonic()
                    progress(SimProgress(result.walks, result.states, last - start))
                batch_no += 1
    else:
        with blas_threads(1):
            walker.prepare(deadline)  # once, before the workers fork: they inherit the kernels
        ctx = multiprocessing.get_context("fork")
        out = ctx.Queue()
        procs = [ctx.Process(target=_work, args=(walker, seed, k, n, max_batches, deadline, out),
                             daemon=True) for k in range(n)]
        for p in procs:
            p.start()
        running = n
        last = start
        try:
            while running:
                try:
                    kind, _, w, s, d, extra = out.get(timeout=0.5)
                except queue_mod.Empty:
                    if not any(p.is_alive() for p in procs):
                        raise RuntimeError("a simulation worker died") from None
                    continue
                result.walks += w
                result.states += s
                result.deadlocks += d
                if kind == "error":
                    if isinstance(extra, bytes):
                        raise pickle.loads(extra)
                    raise RuntimeError(f"simulation worker failed: {extra}")
                if kind == "violation":
                    found = extra
                    break
                if kind == "done":
                    running -= 1
                if progress and time.monotonic() - last > 1:
                    last = time.monotonic()
                    progress(SimProgress(result.walks, result.states, last - start))
        finally:
            _end_workers(procs)
    result.elapsed_s = time.monotonic() - start
    if found is not None:
        result.prop = found.prop
        path = replay_actions(model, found.actions)
        result.found_length = len(path) - 1
        result.path = path
        try:  # interrupted, the shortest path found so far is the result (the command reports it)
            for shorter in shrinking(model, path, found.prop, result.shrink_log, bfs_budget=bfs_budget):
                result.path = shorter
        except KeyboardInterrupt as exc:
            result.interrupted = exc
            result.shrink_log.append(f"interrupted: the shortest found until then, {len(result.path) - 1} steps")
    return result


# ---- shrinking ------------------------------------------------------------------------
def replay_actions(model: Model, actions: list[int]) -> Path:
    """The concrete path of a walk (the numpy kernels and the concrete model agree)."""
    state = model.initial
    path: Path = [(None, state)]
    for a in actions:
        action = model.actions[a]
        nxt = model.apply(state, action)
        if nxt is None:  # pragma: no cover - would mean the kernels and the model disagree
            raise AssertionError(f"simulated step {action.label()} is not enabled in the model")
        state = nxt
        path.append((action, state))
    return path


def _violates(model: Model, prop: str, state: State) -> bool:
    return bool(model.failing(model.protocol.prop(prop), state))


def _follow(model: Model, actions: list[Action], prop: str) -> Path | None:
    """Replay ``actions`` from the initial state; the path up to the first state violating
    ``prop``, or None (a step not enabled, or no violation)."""
    state = model.initial
    path: Path = [(None, state)]
    if _violates(model, prop, state):
        return path
    for action in actions:
        nxt = model.apply(state, action)
        if nxt is None:
            return None
        state = nxt
        path.append((action, state))
        if _violates(model, prop, state):
            return path
    return None


def shrink(model: Model, path: Path, prop: str, log: list[str], *, bfs_budget: int = BFS_BUDGET,
           max_passes: int = 8) -> Path:
    """A shorter path to a violation of ``prop``: cycles cut, steps dropped, then BFS."""
    for path in shrinking(model, path, prop, log, bfs_budget=bfs_budget, max_passes=max_passes):
        pass
    return path


def shrinking(model: Model, path: Path, prop: str, log: list[str], *, bfs_budget: int = BFS_BUDGET,
              max_passes: int = 8) -> Iterator[Path]:
    """:func:`shrink`, each shorter path to a violation of ``prop`` yielded as it is found (the
    last is the result; an interrupted caller keeps the one it has)."""
    log.append(f"found: {len(path) - 1} steps")
    # 1. cut cycles: a state seen before means the steps between can go
    first: dict[State, int] = {}
    kept: Path = []
    for action, state in path:
        if state in first:
            kept = kept[:first[state] + 1]
            first = {s: i for i, (_, s) in enumerate(kept)}
            continue
        first[state] = len(kept)
        kept.append((action, state))
    path = _follow(model, [a for a, _ in kept[1:]], prop) or path  # type: ignore[misc]
    log.append(f"cycles cut: {len(path) - 1} steps")
    yield path
    # 2. drop single steps while the violation stays
    for _ in range(max_passes):
        changed = False
        j = len(path) - 1
        while j >= 1:
            actions = [a for a, _ in path[1:]]
            candidate = _follow(model, actions[:j - 1] + actions[j:], prop)  # type: ignore[arg-type]
            if candidate is not None and len(candidate) < len(path):
                path = candidate
                changed = True
                yield path
            j -= 1
        if not changed:
            break
    log.append(f"steps dropped: {len(path) - 1} steps")
    # 3. a bounded breadth-first search for anything shorter
    if len(path) > 2:
        found = search_reduced_if_alike(model.protocol.checking_only([prop]), model.bounds, max_states=bfs_budget,
                                        workers=1, until_all_violated=True, time_limit=BFS_S, memory_limit=BFS_MEMORY)
        outcome = next((o for o in found.outcomes if o.name == prop), None)
        if outcome is not None and outcome.status == "violated" and outcome.path is not None \
                and len(outcome.path) < len(path):
            path = outcome.path
            log.append(f"breadth-first search ({found.states:,} states): {len(path) - 1} steps, the shortest")
            yield path
        elif outcome is not None and outcome.status == "violated":
            log.append(f"breadth-first search ({found.states:,} states): nothing shorter")
        else:
            log.append(f"breadth-first search: no violation within {found.states:,} states")
    return path
