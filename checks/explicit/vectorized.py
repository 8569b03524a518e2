"""The fast explicit-state search: breadth-first, a whole BFS level at a time, in numpy.

For each BFS level the frontier (rows of slot values, canonical under symmetry) is cut
into fixed-size chunks. For each chunk and each action (step instance) the protocol's own
guard is evaluated over the chunk, the effect runs on the enabled rows (both compiled once
per search into straight-line numpy code by :mod:`deferral.checks.explicit.kernels`, or, for what
cannot be traced, run through :class:`~deferral.checks.explicit.numpy_ops.NumpyOps`), and the
successor rows get canonical keys
(:mod:`deferral.checks.explicit.packing`: least key over the images whose VCPU order fits the VCPUs'
signatures). Each
chunk's keys are deduplicated by sorting and looked up in the visited runs
(:mod:`deferral.checks.explicit.visited`); the chunks' new candidates are merged with a stable sort
and numbered in key order. Each state keeps
its BFS parent and the action that reached it, so a counterexample is a shortest path,
replayed into real states by :func:`deferral.checks.results.path_from_parents`. For AG EF only
the edges out of states not yet known to reach a goal state are stored.
:func:`reachable_levels` is the same search keeping every key (used by
:mod:`deferral.checks.compare.behaviours`).

Reports match :func:`deferral.checks.explicit.explore.explore` exactly (states, transitions, depth,
verdicts, shortest lengths) for every number of workers: chunks are of a fixed size and
their results are combined in chunk order, so the worker count changes nothing but speed.
Workers are threads of this process (:mod:`deferral.checks.explicit.parallel`): a chunk's
heavy work is numpy with the GIL released, and threads share the frontier and the visited
set without copies and cannot outlive the process. Limits (:mod:`deferral.checks.explicit.limits`)
are polled while chunks run; checkpoints (:mod:`deferral.checks.explicit.checkpoint`) are
taken at level boundaries. When the protocol uses a state value in Python control
flow it cannot run on arrays: the plain explorer runs instead and ``stats["notice"]`` says so.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Callable, Generator

import numpy as np

from deferral.checks.explicit import checkpoint, levelc, packing
from deferral.checks.explicit import fused as fused_loop
from deferral.checks.explicit.backreach import edges_by_source, unreachable_goal_pieces, unreachable_goal_streamed
from deferral.checks.explicit.explore import explore
from deferral.checks.explicit.limits import (Limits, LimitReached, command_deadline, expansion_bytes,
                                              peak_rss_bytes, return_freed_memory, rss_bytes, usable_cpus)
from deferral.checks.explicit.expand import Expander, locate
from deferral.checks.explicit.numpy_ops import NotVectorizable
from deferral.checks.explicit.packing import Packer, blas_threads
from deferral.checks.explicit.parallel import ordered_map
from deferral.checks.explicit import levelmerge
from deferral.checks.explicit.levelruns import LevelRuns
from deferral.checks.explicit.spill import Column, DiskRuns, KeysFile, Parked, SpillError, WorkDir
from deferral.checks.results import (ALL_VIOLATED, Coverage, Outcome, Path, Progress, ProgressFn, SearchResult,
                                     every_verdict_in, path_from_parents)
from deferral.checks.explicit.visited import Run, Visited, block_size
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model, State
from deferral.model.context import StepError
from deferral.model.protocol import Protocol

#: Frontier rows per chunk (fixed: results must not depend on the number of workers). A chunk's
#: expansion holds reused buffers of about 90 bytes a successor (keys, parents, actions, the
#: dedup's sort and hash table) in each worker: at 2**14 rows and 6-7 successors a row, about
#: 10 MiB a worker (2**16 rows held 38 MiB a worker, a quarter of the peak at 3,1,2,2).
CHUNK_ROWS = 1 << 14
#: State numbers are stored as uint32: a search stops (max-states) before this many.
_MAX_IDS = (1 << 32) - 1
#: Temporaries of a level's merge per candidate (keys, orders, groups, numbering), and of a
#: merge of visited runs per key of a block (a merge holds a few blocks, see visited.merge_runs):
#: what the memory limit is checked against first.
_MERGE_BYTES = 64
_VISITED_MERGE_BYTES = 4 * 24
#: Once spilling: candidates a merge piece takes per chunk of the level, and at most a piece
#: (64 bytes of temporaries a candidate: 256 MiB), see ``_Search._merge_piece``.
MERGE_PER_CHUNK = 1 << 10
MERGE_PIECE_MAX = 1 << 22
#: A level's chunks are merged in groups of about this many candidates as they come (see
#: :mod:`deferral.checks.explicit.levelruns`; at most a 32nd of the memory limit's worth of
#: merge temporaries) when it has more than GROUP_FROM_SPILLED chunks and its arrays go to
#: disk, or more than GROUP_FROM in memory. A group's merge sorts its candidates once more
#: (about 85 ns a candidate); without it the level's merge reads a slice of every chunk for
#: every key range (of PIECE candidates in memory: slices of arrays, cheap; spilled, reads of
#: files): a cost growing with the square of the chunks, larger than the sort's past some
#: 250 chunks spilled and some 4,000 in memory.
GROUP_CANDIDATES = 1 << 22
GROUP_FROM_SPILLED = 1 << 8
GROUP_FROM = 1 << 12
#: With a work folder and no ``spill_above``: spill once the stored structures in memory pass
#: this share of the memory limit (the rest is for a level's expansion and merge).
SPILL_SHARE = 0.25
#: At a spill, the newest visited runs holding at most KEEP_RECENT of the keys in memory stay,
#: and at most KEEP_RECENT_BYTES of ``spill_above``'s bytes (the keys outgrow any memory).
KEEP_RECENT = 0.25
KEEP_RECENT_BYTES = 0.5
#: Memory limits below this run the numpy path, not the compiled loops (see ``_Search.jit``).
JIT_MEMORY_FLOOR = 1 << 30
#: AG EF target codes and state numbers are int32 below this (half the bytes of int64).
_CODES32_BELOW = 1 << 31
#: Seconds between polls of the time and memory limits while chunks run.
POLL_EVERY_S = 0.05
#: Seconds between progress reports inside a long level.
PROGRESS_EVERY_S = 1.0


def explore_vectorized(
    protocol: Protocol,
    bounds: Bounds,
    *,
    symmetry: bool = True,
    max_states: int | None = None,
    time_limit: float | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    memory_limit: int | None = None,
    checkpoint_dir: str | None = None,
    resume_dir: str | None = None,
    checkpoint_every: float = 60.0,
    work_dir: str | None = None,
    spill_above: int | None = None,
    stop: Callable[[Progress, bool], bool] | None = None,
    renamings: Callable[[State, int], None] | None = None,
    until_all_violated: bool = False,
    on_level: Callable[[np.ndarray | None, Packer], None] | None = None,
) -> SearchResult:
    """Explore every reachable state of ``protocol`` at ``bounds``; report each property.

    Same contract as :func:`deferral.checks.explicit.explore.explore`; ``workers`` threads (default:
    every core). A protocol whose steps cannot run on arrays is explored by the plain
    explorer instead, with ``stats["notice"]`` saying why (and ``renamings`` called on each state
    it expands, see :func:`~deferral.checks.explicit.explore.explore`).

    ``memory_limit`` (bytes of resident memory) and ``time_limit`` stop the search, even in
    the middle of a level or of the AG EF pass, with ``stopped_by`` "memory-limit" or
    "time-limit" and the figures reached. ``checkpoint_dir``: save the search there at level
    boundaries (every ``checkpoint_every`` seconds at most, at the end of the search, and when
    a limit stops it); ``resume_dir``: go on from the checkpoint there (a
    :class:`~deferral.checks.explicit.checkpoint.CheckpointError` if it is of another
    protocol, bounds or symmetry, or unreadable).

    ``work_dir``: when the stored structures (visited runs, BFS parents, AG EF edges) pass
    ``spill_above`` bytes (default: :data:`SPILL_SHARE` of ``memory_limit``), or resident
    memory reaches ``memory_limit``, they move to files in a fresh subfolder of ``work_dir``
    (:mod:`deferral.checks.explicit.spill`) and the search goes on with the same results;
    the subfolder is removed at the end. A full disk stops it with ``stopped_by``
    "disk-full"; an unusable ``work_dir`` raises :class:`~deferral.checks.explicit.spill.SpillError`.

    ``stop``: called after each level with its progress and whether an invariant is violated
    so far; True stops the search there (``stopped_by`` "stopped"; a violation found is reported
    with its shortest path). Auto's explicit route (checks/symbolic/exhaust.py) uses it.

    ``until_all_violated``: where every property is an invariant, stop at the end of the level
    where the last of them is first violated (``stopped_by`` :data:`ALL_VIOLATED`): every verdict
    is in and each counterexample is a shortest one; nothing further can change them.

    ``on_level``: called with each level's new keys (the first call: the initial state's) and the
    packer that unpacks them, or None for a level whose keys went to disk (a spill); the plain
    explorer (a protocol the vectorized search cannot run) never calls it. Auto's explicit route keeps
    a sample of the states it exhausted for the lemma learner (checks/symbolic/exhaust.py).
    """
    start = time.monotonic()
    n_workers = max(1, int(workers if workers is not None else usable_cpus()))
    model = Model(protocol, bounds)
    try:
        return _Search(model, symmetry, max_states, time_limit, progress, n_workers, start,
                       memory_limit=memory_limit, checkpoint_dir=checkpoint_dir, resume_dir=resume_dir,
                       checkpoint_every=checkpoint_every, work_dir=work_dir, spill_above=spill_above,
                       stop=stop, until_all_violated=until_all_violated, on_level=on_level).run()
    except NotVectorizable as exc:
        if checkpoint_dir is not None or resume_dir is not None:
            raise checkpoint.CheckpointError(f"checkpoints need the vectorized search, which cannot run "
                                             f"this protocol: {exc}") from None
        if work_dir is not None:
            raise SpillError(f"--work-dir needs the vectorized search, which cannot run this protocol: {exc}") \
                from None
        remaining = None if time_limit is None else max(0.0, time_limit - (time.monotonic() - start))
        result = explore(model, symmetry=symmetry, max_states=max_states, time_limit=remaining,
                         progress=progress, renamings=renamings, until_all_violated=until_all_violated)
        result.elapsed_s = time.monotonic() - start
        result.engine = "concrete"
        result.workers = 1
        result.stats["notice"] = f"vectorized search not possible, used the plain explorer: {exc}"
        return result


def _widen_past_int32(cand_state: list[np.ndarray], numbers_below: int) -> None:
    """Make the candidates' state arrays int64, in place in the list, once the state numbers
    given reach ``numbers_below`` past int32's range (:data:`_CODES32_BELOW`)."""
    if numbers_below > _CODES32_BELOW and cand_state and cand_state[0].dtype == np.int32:
        for j, states in enumerate(cand_state):
            cand_state[j] = states.astype(np.int64)
            del states


@dataclass
class Levels:
    """Every state reached by the search (canonical under symmetry), in BFS numbering."""

    packer: Packer
    keys: np.ndarray  # key of state n
    parent: np.ndarray  # BFS parent of state n (state 0, the start, is its own)
    via: np.ndarray  # action index that reached state n (0 for the start)
    depth: int
    stopped_by: str | None  # "max-states" when the limit cut the search short


def reachable_levels(model: Model, *, start: State | None = None, symmetry: bool = True,
                     max_states: int | None = None, workers: int = 1, time_limit: float | None = None) -> Levels:
    """The same level-synchronous search, keeping every state's key; no property checked.

    Starts from ``start`` (default: the initial state); ``time_limit`` (seconds) stops it early
    (``stopped_by`` says so). A step that misbehaves raises the
    :class:`StepError` of the concrete model, which names the state; a protocol whose steps
    cannot run on arrays raises :class:`NotVectorizable`.
    """
    search = _Search(model, symmetry, max_states, time_limit, None, max(1, workers), time.monotonic(),
                     start_state=start, keep_keys=True)
    result = search.run()
    return Levels(search.packer, np.concatenate(search.level_keys), search.parent, search.via,
                  result.depth, result.stopped_by)


@dataclass
class _State:
    """The search at a level boundary: everything a checkpoint saves."""

    visited: Visited  # the runs in memory (with a work folder, older ones may be on disk)
    parents: Column  # per state: its BFS parent (uint32 state number), appended a level at a time
    vias: Column  # per state: the action that reached it
    frontier_keys: "np.ndarray | KeysFile"  # keys of the last level's states (the next frontier), sorted
    # per liveness property: the goal flag of each state, OR-ed with "has a goal successor"
    # once the state is expanded; edges are kept only out of states not yet known to
    # reach every property's goal (the others need none for AG EF)
    goals: dict[str, "_Flags"]
    # the AG EF edges kept, grouped by source: per expanded state (in state order) how many,
    # and their targets (state numbers) in that order: 1 byte a state + 4 bytes an edge
    edges_deg: Column
    edges_dst: Column
    first_bad: dict[str, int]  # invariant -> its first violating state
    n_states: int
    base: int  # number of the frontier's first state
    depth: int
    transitions: int
    fired: np.ndarray  # coverage: per action, the transitions it produced
    enabled: np.ndarray  # coverage: per step, the states where some instance of it is enabled


@dataclass
class _Chunk:
    """What one frontier chunk produced."""

    successors: int  # transitions out of the chunk
    keys: np.ndarray  # new candidate keys, sorted, unique in the chunk
    parents: np.ndarray  # frontier row (level-local) first reaching each candidate
    actions: np.ndarray  # and the action it took
    # for AG EF: per successor, the index of its key among the chunk's distinct keys
    # (uint32), and per distinct key its state number, or -(1 + candidate index) if new
    uidx: np.ndarray | None
    ucode: np.ndarray | None
    all_parents: np.ndarray | None  # per successor: level-local frontier row
    fired: np.ndarray  # per action: transitions it produced from the chunk (coverage)
    enabled: np.ndarray  # per step: chunk rows where some instance of it is enabled
    # per liveness property, per chunk row: a successor already known to be a goal state
    # (set by _drop_goal_sources, which dropped the AG EF successors of rows done with)
    hits: np.ndarray | None = None
    # set once the worker thread parked the arrays above (then dropped here)
    n_cand: int = 0
    sample: np.ndarray | None = None


class _Search:
    """One run of the level-synchronous search (state lives here, not in globals)."""

    def __init__(self, model: Model, symmetry: bool, max_states: int | None, time_limit: float | None,
                 progress: ProgressFn | None, workers: int, start: float, *,
                 start_state: State | None = None, keep_keys: bool = False, memory_limit: int | None = None,
                 checkpoint_dir: str | None = None, resume_dir: str | None = None,
                 checkpoint_every: float = 60.0, work_dir: str | None = None,
                 spill_above: int | None = None, stop: Callable[[Progress, bool], bool] | None = None,
                 until_all_violated: bool = False,
                 on_level: Callable[[np.ndarray | None, Packer], None] | None = None) -> None:
        self.model = model
        self.stop = stop
        self.on_level = on_level
        self.until_all_violated = until_all_violated
        #: the search has returned: a chunk still running in a worker thread (a limit stopped the
        #: level while it traced the steps' kernels, seconds at big bounds) stops at its next step
        #: instance instead of using the CPU of what the caller does next (prove's next route)
        self.ended = False
        self.layout = model.layout
        self.symmetry = symmetry
        # state numbers are uint32
        self.max_states = min(max_states, _MAX_IDS) if max_states is not None else _MAX_IDS
        self.time_limit = time_limit
        self.limits = Limits(start, time_limit, memory_limit)
        self.fanout = float(len(model.actions))  # successors per state: the last level's average, for the limit
        self.checkpoint_dir = checkpoint_dir if checkpoint_dir is not None else resume_dir
        self.resume_dir = resume_dir
        self.checkpoint_every = checkpoint_every
        self.checkpoint_write_s = 0.0
        self.checkpoints_written = 0
        self.checkpoint_bytes = 0
        self.checkpoint_linked_bytes = 0
        self.checkpoint_error: str | None = None
        self.checkpointed: tuple[int, float] | None = None  # the last checkpoint's depth and time
        # disk spill: the work folder is made when the search starts, removed when it ends
        self.work_dir = work_dir
        self.spill_above = (spill_above if spill_above is not None else
                            int(SPILL_SHARE * memory_limit) if memory_limit is not None and work_dir is not None
                            else None)
        self.work: WorkDir | None = None
        self.disk: DiskRuns | None = None
        self.spills = 0
        self.parked = Parked(None)  # a level's chunk arrays until its end (see levelmerge)
        self.runs: LevelRuns | None = None  # the level's runs of candidates (see levelruns)
        self.spill_lock = threading.Lock()
        self.st: _State | None = None  # the search state, for a spill from a poll
        self.spill_error: str | None = None
        self.code_dtype: Any = np.int64
        self.progress = progress
        self.workers = workers
        self.start = start
        # keep_keys: a plain enumeration (behaviours): keys kept, no property checked,
        # a misbehaving step located on concrete states
        self.keep_keys = keep_keys
        self.start_state = model.initial if start_state is None else start_state
        self.invariants = [] if keep_keys else model.invariants
        self.lives = [] if keep_keys else model.liveness
        self.level_keys: list[np.ndarray] = []
        # the compiled loops' code is resident at once when first used (about 45 MiB): under a
        # tight memory limit that jump could pass the limit between two polls, so the numpy path
        self.jit = None if memory_limit is None or memory_limit >= JIT_MEMORY_FLOOR else False
        self.ex = Expander(model, symmetry, properties=(*self.invariants, *self.lives), jit=self.jit)
        self.packer = self.ex.packer
        self.build_from = fused_loop.build_from(many_orders=len(self.packer.perms) > 24)
        self.action_dtype = self.ex.action_dtype
        # actions as stored (and parked): one byte while there are fewer than 256
        self.narrow_actions: Any = np.uint8 if len(model.actions) < 256 else self.action_dtype
        self.parent = np.zeros(0, dtype=np.uint32)
        self.via = np.zeros(0, dtype=self.action_dtype)
        # coverage: each action's step, and per property the states it was evaluated in
        self.step_names, self.step_of = self.ex.step_names, self.ex.step_of
        self.checked = {p.name: 0 for p in model.protocol.properties}

    @functools.cached_property
    def identity(self) -> dict[str, Any]:
        """What a checkpoint of this search must match (hashed only when a checkpoint is
        written or read: a few ms of a small search otherwise)."""
        return checkpoint.protocol_identity(self.model, self.symmetry)

    # ---- successor generation ----------------------------------------------------------
    def transitions(self, keys: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                   np.ndarray, np.ndarray]:
        """Every transition out of the states ``keys`` (level-local rows from ``offset``):
        successor keys grouped by action (rows ascending in each), parent rows (uint32),
        actions, transitions per action, rows where some instance of each step is enabled.

        By the fused C loop (:mod:`deferral.checks.explicit.fused`) when there is one, else
        a step instance at a time over the unpacked rows (and where the fused loop meets a
        value outside a domain, so that the step's own error is raised)."""
        loop = self.ex.fused(keys.shape[0])
        if loop is not None:
            got = loop.successors(keys, offset)
            if got is not None:
                return got
        rows = self.packer.unpack(keys)
        key_parts, parents, actions = [], [], []
        fired = np.zeros(len(self.model.actions), dtype=np.int64)
        enabled = np.zeros((len(self.step_names), rows.shape[0]), dtype=bool)
        # successor rows keyed a block at a time, the actions' rows together up to a block: one
        # key call per action cost as much as one per block (at 6 VCPUs a call walks 720 orders)
        pending: list[np.ndarray] = []
        n_pending = 0
        for action in self.model.actions:
            if self.ended:  # a chunk left running when a limit ended the search: its result is dropped
                raise LimitReached("ended")
            try:
                idx = self.ex.enabled(rows, action)
                if idx.size == 0:
                    continue
                fired[action.index] = idx.size
                enabled[self.step_of[action.index], idx] = True
                out = self.ex.apply(rows, idx, action)
            except StepError:  # the concrete model's error, which names the state (raised if it has one)
                locate(self.model, rows, action.index)
                raise
            if n_pending and n_pending + out.shape[0] > packing.BLOCK_ROWS:
                key_parts.append(self.packer.canonical_keys(_joined(pending)))
                pending, n_pending = [], 0
            pending.append(out)
            n_pending += out.shape[0]
            del out
            parents.append((idx + offset).astype(np.uint32))  # level-local rows: below 2**32
            actions.append(np.full(idx.size, action.index, dtype=self.action_dtype))
        if pending:
            key_parts.append(self.packer.canonical_keys(_joined(pending)))
        del pending
        per_step = enabled.sum(axis=1)
        if not key_parts:
            return (np.zeros(0, self.packer.key_dtype), np.zeros(0, np.uint32),
                    np.zeros(0, self.action_dtype), fired, per_step)
        return np.concatenate(key_parts), np.concatenate(parents), np.concatenate(actions), fired, per_step

    def expand(self, frontier_keys: np.ndarray, offset: int, visited: Visited) -> "_Chunk":
        """Successors of a chunk: new candidate keys (sorted, deduplicated, not yet visited)
        with the first (parent, action) reaching each, and every successor's target."""
        loop = self.ex.fused(frontier_keys.shape[0])
        if loop is not None and loop.dedup is not None:  # all of it in C, on reused buffers
            done = loop.expand(frontier_keys, offset, visited.runs(), bool(self.lives), self.code_dtype)
            if done is not None:
                return _Chunk(*done)
        keys, par, act, fired, per_step = self.transitions(frontier_keys, offset)
        if keys.shape[0] == 0:
            return _Chunk(0, np.zeros(0, self.packer.key_dtype), np.zeros(0, np.uint32),
                          np.zeros(0, self.action_dtype), None, None, None, fired, per_step)
        order = np.argsort(keys, kind="stable")  # faster here: successors come in sorted runs
        sorted_keys = keys[order]
        first = np.ones(keys.shape[0], dtype=bool)
        first[1:] = sorted_keys[1:] != sorted_keys[:-1]
        starts = np.flatnonzero(first)
        uniq = sorted_keys[starts]
        first_pos = np.minimum.reduceat(order, starts)  # earliest successor with each key
        known = visited.lookup(uniq)
        fresh = known < 0
        pos = first_pos[fresh]
        cand = uniq[fresh]
        del uniq, sorted_keys, first_pos
        uidx = None
        if self.lives:  # successor -> its distinct key -> state number, or -(1 + candidate index)
            uidx = np.empty(keys.shape[0], dtype=np.uint32)
            uidx[order] = np.cumsum(first, dtype=np.uint32) - np.uint32(1)
            known[fresh] = -1 - np.arange(cand.shape[0])
            known = known.astype(self.code_dtype)  # int32 while state numbers allow: half the bytes
        return _Chunk(keys.shape[0], cand, par[pos], act[pos], uidx, known if self.lives else None,
                      par if self.lives else None, fired, per_step)

    def _put_chunk(self, i: int, chunk: _Chunk) -> None:
        """Put chunk ``i``'s arrays aside until the level's end (see levelmerge): in memory, or,
        once spilling, written to the work folder here, by the worker thread that made them;
        the chunk keeps its candidate count and merge sample, and drops the arrays."""
        parked, narrow = self.parked, self.narrow_actions
        chunk.n_cand = chunk.keys.shape[0]
        chunk.sample = levelmerge.sample(chunk.keys)
        names: list[object] = list(LevelRuns.chunk_names(i))
        # held in memory (not spilled) when their group is to merge them soon
        hold = self.runs is not None and self.runs.grouping
        parked.put(("keys", i), chunk.keys, sorted_keys=True, hold=hold)
        parked.put(("parents", i), chunk.parents, hold=hold)
        parked.put(("actions", i), chunk.actions.astype(narrow, copy=False), hold=hold)
        if self.lives:
            assert chunk.uidx is not None and chunk.ucode is not None and chunk.all_parents is not None
            parked.put(("uidx", i), chunk.uidx)
            parked.put(("ucode", i), chunk.ucode)
            names += [("uidx", i), ("ucode", i), ("all_parents", i)]
            if chunk.hits is not None:
                parked.put(("hits", i), chunk.hits.ravel())  # flat: parked arrays are 1-D
                names.append(("hits", i))
            # as chunk-relative rows: two bytes while CHUNK_ROWS <= 2**16
            # in place: the chunk's own array, dropped below
            local = np.subtract(chunk.all_parents, np.uint32(i * CHUNK_ROWS), out=chunk.all_parents)
            parked.put(("all_parents", i), local.astype(np.uint16 if CHUNK_ROWS <= 1 << 16 else np.uint32))
            del local
        empty = np.zeros(0, dtype=np.uint8)
        chunk.keys = chunk.parents = chunk.actions = empty
        chunk.uidx = chunk.ucode = chunk.all_parents = chunk.hits = None
        if self.spills and self._parked_over_budget():
            parked.spill(names)

    def _parked_over_budget(self) -> bool:
        """Once spilling: whether what is stored in memory and the level's parked arrays pass
        ``spill_above`` (then a chunk's arrays go to disk as they come; below it they stay in
        memory until the level's end, as before the first spill). Without ``spill_above``
        (spills at the memory limit only) they always go."""
        if self.spill_above is None or self.st is None:
            return True
        return self._over_spill_above()

    def _over_spill_above(self) -> bool:
        """Whether what is stored in memory and the level's parked arrays pass ``spill_above``
        (False without one)."""
        return (self.spill_above is not None and self.st is not None
                and self._stored_in_memory(self.st) + self.parked.memory_bytes > self.spill_above)

    def _chunk_results(self, frontier_keys: "np.ndarray | KeysFile", visited: Visited) -> Generator["_Chunk", None, None]:
        """Each chunk's results, in chunk order (computed by ``workers`` threads); the limits
        are polled while waiting, so they stop a level in the middle."""
        n = -(-frontier_keys.shape[0] // CHUNK_ROWS)
        # the goal flags of the frontier's states (not written while the chunks run)
        goals = [] if self.st is None else [g.view() for g in self.st.goals.values()]
        base = 0 if self.st is None else self.st.base
        # the fused loop is built (or found in the cache) for a level, not a chunk, this wide; the
        # limits are polled while it is built (generating its C takes tens of seconds at 6,3,3,3,S=3)
        self.ex.fused(frontier_keys.shape[0], poll=self._poll)

        def task(i: int) -> _Chunk:
            a = i * CHUNK_ROWS
            # what the chunks now running will allocate is counted before this one starts
            rows = min(CHUNK_ROWS, frontier_keys.shape[0] - a)
            self._poll(expansion_bytes(rows, self.packer.n_slots * np.dtype(self.packer.dtype_rows).itemsize,
                                       self.fanout, min(self.workers, n - i)))
            # the frontier is kept as keys (8 bytes a state), unpacked to rows a chunk at a time
            chunk = _drop_goal_sources(self.expand(frontier_keys[a:a + CHUNK_ROWS], a, visited), goals, base, a, rows)
            self._put_chunk(i, chunk)
            return chunk

        # one chunk in this thread, unless a time limit must be polled while it runs (a step that
        # never returns); a memory limit is checked before it (a chunk allocates about 10 MiB)
        poll = self._poll if n > 1 or self.time_limit is not None else None
        yield from ordered_map(task, n, self.workers, poll=poll, poll_every=POLL_EVERY_S)

    # ---- limits and the disk spill -------------------------------------------------------
    def _poll(self, extra: int | Callable[[], int] = 0) -> None:
        """Check the limits (``extra``: bytes about to be allocated, or a function giving
        them); at the memory limit, with a work folder, spill what is stored and check again."""
        try:
            self.limits.check(extra() if callable(extra) else extra)
        except LimitReached as stop:
            if stop.reason != "memory-limit" or not self._spill():
                raise
            self.limits.check(extra() if callable(extra) else extra)

    def _spill(self) -> bool:
        """Move the stored structures in memory (visited runs, parents, actions, AG EF edges)
        to the work folder; False if there is none or nothing to move. The newest visited runs
        (at most :data:`KEEP_RECENT` of the keys in memory) stay while there is something
        else to move: most duplicate successors are of the last levels, and a chunk that finds
        them in memory does not make them candidates of its level's merge. Safe beside running
        chunks: they see the visited runs in memory before or after (a key they miss is found
        on disk at the level's merge)."""
        st = self.st
        if self.disk is None or st is None:
            return False
        with self.spill_lock:
            runs = st.visited.sorted_runs()
            kept, size, kept_bytes = len(runs), 0, 0
            # (and, as a share of all the keys grows past memory, at most a share of the budget)
            budget = (KEEP_RECENT_BYTES * self.spill_above if self.spill_above is not None else
                      KEEP_RECENT_BYTES * SPILL_SHARE * self.limits.memory_limit if self.limits.memory_limit is not None
                      else float("inf"))
            while (kept and size + runs[kept - 1].size <= KEEP_RECENT * len(st.visited)
                   and kept_bytes + runs[kept - 1].nbytes <= budget):
                kept -= 1
                size += runs[kept].size
                kept_bytes += runs[kept].nbytes
            columns = [c for c in (st.parents, st.vias, st.edges_deg, st.edges_dst) if c.memory_bytes]
            parked = self.parked.memory_bytes
            if kept == 0 and not columns and not parked:
                kept = len(runs)  # nothing else to move: the newest runs too
                if kept == 0:
                    return False
            for run in runs[:kept]:  # on disk first, then dropped from memory
                self.disk.add(run)
            st.visited.set_runs(runs[kept:])
            for column in columns:
                column.spill()
            self.parked.spill()  # the level's chunk arrays, and those to come (see _park)
            self.spills += 1
            return True

    def _park(self) -> None:
        """With a work folder: once spilling, the level's chunk arrays go to disk as they come
        while they and what is stored pass ``spill_above``; before, a spill when they do."""
        if self.disk is None:
            return
        if self.spills:
            if self._parked_over_budget():
                self.parked.spill()
        elif self._over_spill_above():
            self._spill()

    def _mid_level_progress(self, last: float, transitions: int, frontier_rows: int, phase: str = "") -> float:
        """Report progress inside a level (its expansion, its merge), at most every
        :data:`PROGRESS_EVERY_S`; the time of the last report."""
        now = time.monotonic()
        if not self.progress or now - last <= PROGRESS_EVERY_S:
            return last
        st = self.st
        self.progress(Progress(st.n_states, st.transitions + transitions, st.depth, frontier_rows,
                               now - self.start, self._spilled_bytes(), phase=phase,
                               checkpoint=self._checkpoint_note(now)))
        return now

    def _merge_level(self, runs: LevelRuns, n_chunks: int, n_states: int, base: int, new_blocks: list[np.ndarray],
                     next_file: KeysFile | None, cand_state: list[np.ndarray], last_report: float,
                     level_transitions: int, frontier_rows: int) -> tuple[int, bool, float]:
        """Merge the level's runs a key range at a time (the earliest chunk wins), number the new
        states in key order, append their parents and actions, and put their keys into
        ``new_blocks`` or, spilling, into ``next_file`` and the visited set; per run candidate
        its state (``cand_state``, for AG EF). Returns the new states, whether --max-states cut
        them, and the time of the last progress report."""
        st = self.st
        assert st is not None
        n_new, cut = 0, False
        for piece in levelmerge.pieces(runs.sizes, runs.samples, runs.read, piece=self._merge_piece(n_chunks),
                                       workers=self.workers, read_keys=runs.read_keys):
            keys = piece.keys
            # with runs on disk: the candidates are looked up there (a range at a time, in order)
            state = np.full(keys.shape[0], -1, dtype=np.int64)
            if self.disk is not None and len(self.disk):
                self.disk.lookup(keys, state)
            fresh = np.flatnonzero(state < 0)
            take = min(fresh.shape[0], max(0, self.max_states - n_states - n_new))
            if take < fresh.shape[0]:
                cut = True
            fresh = fresh[:take]
            state[fresh] = np.arange(n_states + n_new, n_states + n_new + take)
            if self.lives:
                _widen_past_int32(cand_state, n_states + n_new + take)
                for i, a, b, group in piece.slices:
                    cand_state[i][a:b] = state[group]
            st.parents.append((piece.parents[fresh].astype(np.int64) + base).astype(np.uint32))
            st.vias.append(piece.actions[fresh])
            if next_file is None:
                new_blocks.append(keys[fresh])
            elif take:
                # a later range's lookups cannot meet these keys (ranges are disjoint), so they
                # join the visited set (and may spill with it) at once
                block = keys[fresh]
                next_file.append([block])
                st.visited.add(block, np.arange(n_states + n_new, n_states + n_new + take, dtype=np.uint32))
                del block
                self._spill_when_over()
            n_new += take
            del piece, keys, state, fresh
            last_report = self._mid_level_progress(  # a wide level's merge takes minutes
                last_report, level_transitions, frontier_rows,
                phase=f"merging level {st.depth + 1}: {n_new:,} new states so far")
        return n_new, cut, last_report

    def _spill_when_over(self) -> None:
        """In a level's merge, where no limit stops the search: spill what is stored once it
        passes ``spill_above``, or once resident memory passes the memory limit."""
        if self.disk is None or self.st is None:
            return
        over = self._over_spill_above()
        if not over and self.limits.memory_limit is not None:
            over = rss_bytes() > self.limits.memory_limit
        if over:
            self._spill()

    def _grouped(self, n_chunks: int) -> bool:
        """Whether a level of ``n_chunks`` chunks merges them in groups as they come (see
        levelruns): past :data:`GROUP_FROM_SPILLED` chunks once its arrays go to disk (a merge
        reading thousands of chunk files a key range at a time is mostly small reads), or past
        :data:`GROUP_FROM` in memory."""
        return n_chunks > (GROUP_FROM_SPILLED if self.spills > 0 else GROUP_FROM)

    def _group_candidates(self) -> int:
        """Candidates a group of chunks merges at a time (see :data:`GROUP_CANDIDATES`)."""
        if self.limits.memory_limit is None:
            return GROUP_CANDIDATES
        return max(1 << 12, min(GROUP_CANDIDATES, self.limits.memory_limit // (32 * _MERGE_BYTES)))

    def _merge_piece(self, n_chunks: int) -> int:
        """Candidates a piece of the level's merge (about). In memory :data:`levelmerge.PIECE`;
        once the chunks' arrays are parked on disk, a piece reads a slice of each chunk's
        (a few positioned reads), so pieces grow with the chunks (:data:`MERGE_PER_CHUNK`
        candidates a chunk, up to :data:`MERGE_PIECE_MAX` and a 32nd of the memory limit):
        a wide level's reads stay near a few thousand a chunk, not one a chunk a piece."""
        if not self.spills:
            return levelmerge.PIECE
        top = MERGE_PIECE_MAX
        if self.limits.memory_limit is not None:
            top = min(top, self.limits.memory_limit // (32 * _MERGE_BYTES))
        return max(levelmerge.PIECE, min(top, n_chunks * MERGE_PER_CHUNK))

    @staticmethod
    def _stored_in_memory(st: "_State") -> int:
        return (st.visited.nbytes + st.parents.memory_bytes + st.vias.memory_bytes
                + st.edges_deg.memory_bytes + st.edges_dst.memory_bytes)

    def _spilled_bytes(self) -> int:
        return self.work.bytes_written if self.work is not None else 0

    def _columns(self) -> tuple[Column, Column, Column, Column]:
        """Empty parent, action and edge columns (backed by the work folder if there is one).

        Actions and out-degrees are one byte while there are fewer than 256 actions."""
        narrow = self.narrow_actions
        return (Column(np.uint32, self.work, "parents"), Column(narrow, self.work, "vias"),
                Column(narrow, self.work, "edges-deg"), Column(np.uint32, self.work, "edges-dst"))

    # ---- the search ----------------------------------------------------------------------
    def run(self) -> SearchResult:
        """The search, with one BLAS thread (see :func:`deferral.checks.explicit.packing.blas_threads`)."""
        return_freed_memory()  # peak resident memory near the live arrays (see limits)
        if self.work_dir is not None:
            self.work = WorkDir(self.work_dir)
            self.disk = DiskRuns(self.work, self.packer.key_dtype)
            self.parked = Parked(self.work)
        result: SearchResult | None = None
        held = checkpoint.in_use(self.checkpoint_dir) if self.checkpoint_dir is not None else nullcontext()
        try:
            with held, blas_threads(1):
                result = self._run()
                return result
        finally:  # removed at the end, whatever the result (a kill leaves it)
            self.ended = True
            # a background build of the compiled loop: finished (cached for the next search) when
            # the search ran to its end or to --max-states; left going when another limit stopped it
            # (the next search in this process waits for it: cancelled, the next time-boxed search
            # built it again); cancelled (its compiler killed) when an exception ended the search
            finished = result is not None and result.stopped_by in (None, "max-states")
            left = self._time_left()  # a wait past the search's time limit or the command's is cut short
            self.ex.finish_fused(wait=finished, timeout=fused_loop.FINISH_WAIT_S if left is None else left,
                                 detach=result is not None and (not finished or left is not None))
            if result is not None:  # "built": compiled by this search (cached for the next one)
                result.stats["c_loop"] = ("built" if self.ex.fused_compiled else
                                          "cached" if self.ex.fused_loaded else "none")
            if self.work is not None:
                self.work.close()

    def _time_left(self) -> float | None:
        """Seconds left before the search's time limit or the command's (whichever comes first);
        None: neither, or more than :data:`~deferral.checks.explicit.fused.FINISH_WAIT_S`."""
        ends = [t for t in (None if self.time_limit is None else self.start + self.time_limit,
                            command_deadline()) if t is not None]
        left = min(ends) - time.monotonic() if ends else None
        return None if left is None or left >= fused_loop.FINISH_WAIT_S else max(0.0, left)

    def _start(self) -> "_State":
        """The search state before the first level: the start state alone."""
        packer = self.packer
        init_key = packer.canonical_keys(packer.rows_of([self.start_state]))
        visited = Visited(packer.key_dtype, jit=self.jit)
        visited.add(init_key, np.zeros(1, dtype=np.uint32))
        parents, vias, edges_deg, edges_dst = self._columns()
        parents.append(np.zeros(1, dtype=np.uint32))
        vias.append(np.zeros(1, dtype=self.action_dtype))
        st = _State(visited, parents, vias, init_key, {p.name: _Flags() for p in self.lives},
                    edges_deg, edges_dst, {}, 1, 0, 0, 0,
                    np.zeros(len(self.model.actions), dtype=np.int64),
                    np.zeros(len(self.step_names), dtype=np.int64))
        self._check(init_key, 0, st.first_bad, st.goals)
        return st

    def _run(self) -> SearchResult:
        packer = self.packer
        st = self._start() if self.resume_dir is None else self._load_checkpoint(self.resume_dir)
        self.st = st
        if self.keep_keys:
            self.level_keys.append(st.frontier_keys)
        if self.on_level is not None:
            self.on_level(st.frontier_keys if isinstance(st.frontier_keys, np.ndarray) else None, packer)
        frontier = st.frontier_keys
        visited, goals = st.visited, st.goals
        stopped_by: str | None = None
        last_report = time.monotonic()
        last_saved = time.monotonic()
        level_transitions = 0
        level_fired = np.zeros(len(self.model.actions), dtype=np.int64)
        level_enabled = np.zeros(len(self.step_names), dtype=np.int64)
        while frontier.shape[0] and stopped_by is None:
            n_chunks = 0
            parked = self.parked
            level_chunks = -(-frontier.shape[0] // CHUNK_ROWS)
            # the level's runs of candidates: each chunk's, or its group's (see levelruns)
            runs = self.runs = LevelRuns(parked, self._group_candidates(), slots=bool(self.lives))
            runs.grouping = self._grouped(level_chunks)
            # AG EF target codes of the chunks (a known state's number, or -(1 + candidate in
            # the chunk)): int32 while the known states' numbers fit (see numbered_dtype)
            self.code_dtype = np.int32 if st.n_states < _CODES32_BELOW else np.int64
            level_transitions = 0
            level_fired = np.zeros(len(self.model.actions), dtype=np.int64)
            level_enabled = np.zeros(len(self.step_names), dtype=np.int64)
            try:
                for i, chunk in enumerate(self._chunk_results(frontier, visited)):
                    n_chunks += 1
                    assert chunk.sample is not None  # its arrays parked by the worker thread
                    runs.add(i, chunk.n_cand, chunk.sample)
                    level_transitions += chunk.successors
                    level_fired += chunk.fired
                    level_enabled += chunk.enabled
                    del chunk
                    self._park()
                    self._poll()
                    runs.grouping = runs.grouping or self._grouped(level_chunks)  # spilling from now
                    last_report = self._mid_level_progress(last_report, level_transitions, frontier.shape[0])
                runs.finish()
            except LimitReached as stop:
                stopped_by = stop.reason
                break
            except SpillError as exc:
                stopped_by, self.spill_error = "disk-full", str(exc)
                break
            self.fanout = level_transitions / max(1, frontier.shape[0])
            self.ex.release_scratch()  # not held through the merge and the AG EF pass
            # ---- merge the chunks' candidates, a key range at a time (the earliest chunk wins) ----
            n_states, base = st.n_states, st.base
            try:  # stop before the merge if its temporaries would pass the memory limit
                # (the runs' merge comes after the level's, whose temporaries are freed by then)
                candidates = sum(runs.sizes)
                total = len(visited) + candidates
                piece = self._merge_piece(n_chunks)
                # AG EF: and the state of every candidate, held until the chunks are numbered (int32
                # while the known states' numbers fit: widened during the merge only if the new
                # states' numbers pass it, see _widen_past_int32)
                states_bytes = (4 if n_states < _CODES32_BELOW else 8) * candidates if self.lives else 0
                self._poll(lambda: states_bytes + max(_MERGE_BYTES * min(candidates, piece),
                                                      _VISITED_MERGE_BYTES * min(total, block_size(total))))
            except LimitReached as stop:
                stopped_by = stop.reason
                break
            except SpillError as exc:
                stopped_by, self.spill_error = "disk-full", str(exc)
                break
            # per run candidate: the state it is (known, new, or -1: cut by --max-states); int32
            # while the known states' numbers fit, widened in the merge if the new ones do not (the
            # bound n_states + candidates would take 8 bytes a candidate for levels that never
            # number that far: 8 GB at 3,2,1,2's level 20)
            numbered_dtype = np.int32 if n_states < _CODES32_BELOW else np.int64
            cand_state = [np.empty(n, dtype=numbered_dtype) for n in runs.sizes] if self.lives else []
            new_blocks: list[np.ndarray] = []
            n_new = 0
            # once spilling, the new states go to the next frontier's file and into the visited set
            # a key range at a time, and what is stored spills when it passes its budget: a wide
            # level's new keys are never all in memory (the merge cannot stop at a limit)
            next_file: KeysFile | None = None
            try:
                if self.spills and self.work is not None:
                    next_file = KeysFile(self.work, [], packer.key_dtype)
                n_new, cut, last_report = self._merge_level(runs, n_chunks, n_states, base, new_blocks, next_file,
                                                            cand_state, last_report, level_transitions,
                                                            frontier.shape[0])
            except SpillError as exc:
                stopped_by, self.spill_error = "disk-full", str(exc)
                break
            if cut:
                stopped_by = "max-states"
            if any(c.dtype != numbered_dtype for c in cand_state):
                numbered_dtype = np.int64  # widened by the merge
            runs.drop()  # merged: not read back
            level_rows = frontier.shape[0]
            if isinstance(frontier, KeysFile):
                frontier.close()
            # the next frontier: in memory, or in a file once spilling (then its keys are in the
            # visited set already: the chunks' AG EF arrays are on disk)
            ids = np.arange(n_states, n_states + n_new, dtype=np.uint32)
            spilling = next_file is not None and n_new > 0
            if spilling:
                assert next_file is not None
                frontier = next_file
                new_keys = None
            else:
                if next_file is not None:
                    next_file.close()
                new_keys = (new_blocks[0] if len(new_blocks) == 1 else np.concatenate(new_blocks) if new_blocks
                            else np.zeros(0, packer.key_dtype))
                frontier = new_keys
            del new_blocks
            if self.keep_keys:
                self.level_keys.append(new_keys if new_keys is not None else frontier[0:n_new])
            if self.on_level is not None:
                self.on_level(new_keys, packer)
            self._check_level(frontier, n_states, st.first_bad, goals)
            if self.lives:
                def number(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
                    """Chunk i's edge targets as state numbers (-1: cut by --max-states), in place;
                    with its transitions' distinct-key indices and source rows (read back here,
                    on a worker thread, when they were parked on disk)."""
                    code = parked.pop(("ucode", i)).astype(numbered_dtype, copy=False)
                    run = runs.run_of[i]
                    states = runs.chunk_states(i, cand_state[run])  # per candidate of the chunk
                    if not levelc.number_codes(code, states):  # in C, in place; else numpy
                        new = code < 0
                        code[new] = states[-1 - code[new]]
                    del states
                    if runs.done_with(i):
                        cand_state[run] = np.zeros(0, numbered_dtype)
                    lo = i * CHUNK_ROWS
                    return code, parked.pop(("uidx", i)), parked.pop(("all_parents", i)).astype(np.uint32) + np.uint32(lo)

                # numbered by the worker threads, pruned and stored here in chunk order (a
                # chunk's pruning reads the goal flags the chunks before it set)
                for i, (code, uidx, all_parents) in enumerate(ordered_map(number, n_chunks, self.workers)):
                    lo, hi = i * CHUNK_ROWS, min(level_rows, (i + 1) * CHUNK_ROWS)
                    loop = self.ex.fused(hi - lo)
                    kept = None if loop is None or loop.prune is None else loop.prune(
                        uidx, code, all_parents, base, lo, hi, [g.view() for g in goals.values()])
                    if kept is not None:  # the same, in C (the sources made chunk-local in place)
                        store_edges(np.subtract(kept[0], np.uint32(base + lo), out=kept[0]), kept[1], hi - lo,
                                    st.edges_deg, st.edges_dst)
                    else:
                        dst = code[uidx]
                        keep = dst >= 0
                        self._prune_edges(all_parents[keep], dst[keep].astype(np.uint32, copy=False), base,
                                          lo, hi, goals, st.edges_deg, st.edges_dst)
                        del dst, keep
                    if ("hits", i) in parked:  # the goal successors of the rows whose edges were dropped
                        for g, hit in zip(goals.values(), parked.pop(("hits", i)).reshape(len(goals), -1)):
                            g.view()[base + lo:base + hi] |= hit
                    del code, uidx, all_parents, kept
                    self._park()
            del cand_state
            parked.clear()
            if not spilling:  # added (a merge of runs, maybe) once the chunks' AG EF arrays are freed
                visited.add(new_keys, ids)
            del ids
            st.transitions += level_transitions
            st.fired += level_fired
            st.enabled += level_enabled
            level_transitions = 0
            level_fired[:] = 0
            level_enabled[:] = 0
            st.frontier_keys = frontier
            st.base = n_states
            st.n_states = n_states + n_new
            if n_new:
                st.depth += 1
            if st.n_states >= self.build_from:  # small but not tiny: the compiled loop, beside the search
                self.ex.start_fused()
            if self.spill_above is not None and self._stored_in_memory(st) > self.spill_above:
                try:
                    self._spill()
                except SpillError as exc:
                    stopped_by, self.spill_error = "disk-full", str(exc)
            if self.progress or self.stop:
                last_report = time.monotonic()
                done = Progress(st.n_states, st.transitions, st.depth, frontier.shape[0],
                                last_report - self.start, self._spilled_bytes(),
                                checkpoint=self._checkpoint_note(last_report))
                if self.progress:
                    self.progress(done)
                if self.stop is not None and frontier.shape[0] and self.stop(done, bool(st.first_bad)):
                    stopped_by = "stopped"
            if (stopped_by is None and frontier.shape[0]
                    and every_verdict_in(self.until_all_violated, self.invariants, self.lives, st.first_bad)):
                stopped_by = ALL_VIOLATED
            if self.checkpoint_dir is not None and stopped_by is None:
                now = time.monotonic()
                if frontier.shape[0] == 0 or now - last_saved >= self.checkpoint_every:
                    self._save_checkpoint(st)
                    last_saved = time.monotonic()
        if self.runs is not None:  # a level cut short: its group merge in flight ends first
            self.runs.close()
            self.runs = None
        self.parked.clear()  # a level cut short leaves its chunks' arrays
        if stopped_by in ("time-limit", "memory-limit") and self.checkpoint_dir is not None:
            self._save_checkpoint(st)  # the last finished level: --resume goes on from there
        transitions = st.transitions + level_transitions  # a cut level's expansions included
        st_fired, st_enabled = st.fired + level_fired, st.enabled + level_enabled
        n_states, depth, first_bad = st.n_states, st.depth, st.first_bad
        edges_deg, edges_dst = st.edges_deg, st.edges_dst
        complete = stopped_by is None
        for prop in self.lives:
            self.checked[prop.name] = n_states if complete else 0
        edge_bytes = len(edges_deg) * edges_deg.dtype.itemsize + len(edges_dst) * edges_dst.dtype.itemsize
        visited_bytes = visited.nbytes + (self.disk.disk_bytes if self.disk is not None else 0)
        # the visited set is not needed past the search: freed before the parents are
        # joined and before the AG EF pass (its 12 bytes a state are not in their peak)
        st.visited = Visited(packer.key_dtype, jit=self.jit)
        del visited
        parent, via = st.parents.array(), st.vias.array()  # memory maps once spilled
        self.parent, self.via = parent, via
        stored_bytes = (visited_bytes + parent.nbytes + via.nbytes
                        + edge_bytes
                        + sum(g.nbytes for g in goals.values()))
        del frontier, st
        self.st = None
        outcomes: list[Outcome] = []
        liveness_stop: str | None = None
        for prop in ([] if self.keep_keys else self.model.protocol.properties):
            if prop.kind == "invariant":
                if prop.name in first_bad:
                    path = self._path(parent, via, first_bad[prop.name])
                    outcomes.append(Outcome(prop.name, "invariant", "violated", path))
                else:
                    outcomes.append(Outcome(prop.name, "invariant", "holds" if complete else "unknown"))
            elif not complete or liveness_stop is not None:
                outcomes.append(Outcome(prop.name, "liveness", "unknown"))
            else:
                # the edges are consumed (freed) by the first liveness property: keep a copy
                # only when there are more to check
                more = sum(p.kind == "liveness" for p in self.model.protocol.properties) > 1
                try:
                    if self._streamed_ag_ef(n_states, len(edges_dst)):  # the edges read again and again
                        stuck = unreachable_goal_streamed(n_states, edges_deg.slice, edges_dst.slice,
                                                          goals[prop.name].view(), poll=self.limits.check)
                    else:
                        pieces = edges_by_source(edges_deg.read(consume=not more),
                                                 edges_dst.read(consume=not more))
                        stuck = unreachable_goal_pieces(n_states, pieces, len(edges_dst), goals[prop.name].view(),
                                                        poll=self.limits.check)
                except LimitReached as stop:
                    liveness_stop = stop.reason
                    outcomes.append(Outcome(prop.name, "liveness", "unknown"))
                    continue
                if stuck is None:
                    outcomes.append(Outcome(prop.name, "liveness", "holds"))
                else:
                    outcomes.append(Outcome(prop.name, "liveness", "violated",
                                            self._path(parent, via, stuck)))
        stats: dict[str, Any] = {
            "bytes_per_state": round(stored_bytes / max(1, n_states), 1),
            "edge_bytes_per_state": round(edge_bytes / max(1, n_states), 1),
            "key_bytes": packer.bytes_per_key,
            "peak_rss_bytes": peak_rss_bytes(),
            "chunk_rows": CHUNK_ROWS,
            "actions": len(self.model.actions),
        }
        if self.ex.fused_problem is not None:
            stats["notice"] = (f"the compiled C loop was not used ({self.ex.fused_problem}): "
                               "the numpy path ran, same results, about twice the time")
        if self.limits.memory_limit is not None:
            stats["memory_limit_bytes"] = self.limits.memory_limit
        if self.resume_dir is not None:
            stats["resumed_from"] = str(self.resume_dir)
        if self.work is not None:
            stats["spills"] = self.spills
            stats["spilled_bytes"] = self.work.bytes_written
            if self.disk is not None and len(self.disk):  # the visited keys on disk, compressed
                stats["spilled_key_bytes_per_key"] = round(self.disk.key_bytes / len(self.disk), 2)
        if self.spill_error is not None:
            stats["spill_error"] = self.spill_error
        if self.checkpoint_error is not None:
            stats["checkpoint_error"] = self.checkpoint_error
        if self.checkpoints_written:
            stats["checkpoints_written"] = self.checkpoints_written
            stats["checkpoint_bytes"] = self.checkpoint_bytes
            stats["checkpoint_linked_bytes"] = self.checkpoint_linked_bytes
            stats["checkpoint_seconds"] = round(self.checkpoint_write_s, 3)  # all checkpoints written
        if liveness_stop is not None:
            stats["liveness_stopped_by"] = liveness_stop
            stopped_by = stopped_by or liveness_stop
        fired, enabled = st_fired, st_enabled
        per_step = {name: 0 for name in self.step_names}
        for a, n in enumerate(fired.tolist()):
            per_step[self.step_names[self.step_of[a]]] += n
        coverage = Coverage(per_step, dict(zip(self.step_names, enabled.tolist())), dict(self.checked))
        return SearchResult(self.model.protocol.name, self.model.bounds, self.symmetry, n_states,
                            transitions, depth, time.monotonic() - self.start, complete, stopped_by,
                            outcomes, engine="vectorized", workers=self.workers, stats=stats,
                            coverage=coverage, model=self.model)

    def _streamed_ag_ef(self, n_states: int, n_edges: int) -> bool:
        """Whether the AG EF pass reads the spilled edges again and again (a byte a state in
        memory) instead of building their CSR (8 bytes an edge, 4 a state): with a work
        folder, when the CSR would pass the memory limit."""
        if self.work is None or self.limits.memory_limit is None:
            return False
        csr = 8 * n_edges + 4 * (n_states + 1) + n_states
        return rss_bytes() + csr > self.limits.memory_limit

    # ---- checkpoints ------------------------------------------------------------------------
    def _save_checkpoint(self, st: "_State") -> None:
        """Save the search state at a level boundary (see :mod:`deferral.checks.explicit.checkpoint`).

        A checkpoint that cannot be written (a full disk) leaves the previous one and the
        search goes on; ``stats["checkpoint_error"]`` says why."""
        try:
            self._write_checkpoint(st)
        except (OSError, SpillError) as exc:
            reason = exc.strerror or exc if isinstance(exc, OSError) else exc
            self.checkpoint_error = f"checkpoint in {self.checkpoint_dir} not written: {reason}"

    def _checkpoint_note(self, now: float) -> str:
        """The last checkpoint, for a progress line: its depth and age, or why none was written."""
        if self.checkpoint_error is not None:
            return "not written, see checkpoint_error"
        if self.checkpointed is None:
            return ""
        depth, at = self.checkpointed
        age = now - at
        return f"depth {depth}, " + (f"{age:.0f} s ago" if age < 120 else f"{age / 60:.0f} min ago")

    def _write_checkpoint(self, st: "_State") -> None:
        assert self.checkpoint_dir is not None
        t0 = time.monotonic()
        arrays: dict[str, np.ndarray] = {"fired": st.fired, "enabled": st.enabled}
        # what the work folder holds is linked, not copied (see checkpoint): the spilled runs,
        # the columns (their pieces in memory written out first) and the frontier's file
        files: dict[str, checkpoint.SpilledFile] = {}
        for name, column in zip(("parent", "via", "edges_deg", "edges_dst"),
                                (st.parents, st.vias, st.edges_deg, st.edges_dst)):
            if column.path is not None:
                column.spill()
            if column.on_disk:
                files[name] = checkpoint.SpilledFile(column.path, column.dtype, column.on_disk)
            else:
                arrays[name] = column.array()
        if isinstance(st.frontier_keys, KeysFile):
            files["frontier_keys"] = checkpoint.SpilledFile(st.frontier_keys.path, st.frontier_keys.dtype,
                                                            st.frontier_keys.shape[0])
        else:
            arrays["frontier_keys"] = st.frontier_keys
        runs = st.visited.sorted_runs()
        blocks = [(keys, ids) for run in runs for keys, ids in zip(run.keys, run.ids)]
        disk_runs = self.disk.runs if self.disk is not None else []  # as they are: compressed
        for i, run in enumerate(disk_runs):
            files[f"disk_keys_{i}"] = checkpoint.SpilledFile(run.keys_path, np.dtype(np.uint8), int(run.offsets[-1]))
            files[f"disk_ids_{i}"] = checkpoint.SpilledFile(run.ids_path, run.ids_dtype, run.n)
            arrays[f"disk_offsets_{i}"], arrays[f"disk_fence_{i}"] = run.offsets, run.fence
        for i, (keys, ids) in enumerate(blocks):
            arrays[f"visited_keys_{i}"] = keys
            arrays[f"visited_ids_{i}"] = ids
        goal_names = sorted(st.goals)
        for i, name in enumerate(goal_names):
            arrays[f"goal_{i}"] = st.goals[name].view()
        header = {"identity": self.identity, "states": st.n_states, "base": st.base, "depth": st.depth,
                  "transitions": st.transitions, "first_bad": st.first_bad, "visited_runs": len(blocks),
                  "visited_blocks": [len(run.keys) for run in runs], "disk_runs": len(disk_runs),
                  "disk_counts": [r.n for r in disk_runs], "disk_ids_dtype": [r.ids_dtype.str for r in disk_runs],
                  "goals": goal_names, "checked": self.checked, "key_dtype": np.dtype(self.packer.key_dtype).str,
                  "action_dtype": np.dtype(self.action_dtype).str}
        self.checkpoint_bytes, self.checkpoint_linked_bytes = checkpoint.save(self.checkpoint_dir, header,
                                                                              arrays, files)
        self.checkpoints_written += 1
        self.checkpoint_write_s += time.monotonic() - t0
        self.checkpointed = (st.depth, time.monotonic())

    def _load_checkpoint(self, directory: str) -> "_State":
        """The search state saved in ``directory`` (refused if it is of another search).

        With a work folder, the visited runs and the parent, action and edge columns go to
        disk as they are read, an array at a time: a resume needs memory for the largest
        array and what always stays in memory (goal flags, the frontier), not the whole."""
        header, arrays = checkpoint.load(directory, self.identity)
        try:
            return self._state_from(directory, header, arrays)
        finally:
            arrays.close()

    def _state_from(self, directory: str, header: dict[str, Any], arrays: checkpoint.Members) -> "_State":
        """The search state of a checkpoint's header and arrays (see :meth:`_load_checkpoint`)."""
        on_disk = 0
        try:
            if header["key_dtype"] != np.dtype(self.packer.key_dtype).str or \
                    header["goals"] != sorted(p.name for p in self.lives):
                raise checkpoint.CheckpointError(f"checkpoint in {directory} does not fit this search")
            visited = Visited(self.packer.key_dtype, jit=self.jit)
            n_blocks = int(header["visited_runs"])
            runs, at = [], 0
            for count in header.get("visited_blocks", [1] * n_blocks):  # blocks per run
                run = Run()
                for i in range(at, at + int(count)):
                    keys, ids = arrays[f"visited_keys_{i}"], arrays[f"visited_ids_{i}"]
                    if self.disk is not None:  # each block a run on disk
                        self.disk.add(Run([keys], [ids]))
                        on_disk += keys.shape[0]
                    else:
                        run.keys.append(keys)
                        run.ids.append(ids)
                    del keys, ids
                runs.append(run)
                at += int(count)
            on_disk += self._disk_runs_from(header, arrays, runs)
            visited.set_runs(runs)
            goals = {}
            for i, name in enumerate(header["goals"]):
                flags = _Flags()
                flags.extend(arrays[f"goal_{i}"])
                goals[name] = flags
            n_states = int(header["states"])
            columns = self._columns()
            # the search appends to its columns: copied, or linked where it resumes into the
            # checkpoint's own folder (which it holds: no other search appends to them)
            in_place = self.checkpoint_dir is not None and \
                os.path.realpath(self.checkpoint_dir) == os.path.realpath(directory)
            for column, name in zip(columns, ("parent", "via", "edges_deg", "edges_dst")):
                if arrays.is_linked(name) and column.path is not None:
                    column.adopt(functools.partial(arrays.copy_to, name, append_in_place=in_place),
                                 arrays.count(name))
                    continue
                part = arrays[name]
                if part.size:
                    column.append(part)
                    column.spill()  # to the work folder, if there is one
                del part
            frontier: np.ndarray | KeysFile
            if arrays.is_linked("frontier_keys") and self.work is not None:  # only read: linked again
                frontier = KeysFile.adopt(self.work, self.packer.key_dtype,
                                          functools.partial(arrays.copy_to, "frontier_keys", link=True),
                                          arrays.count("frontier_keys"))
            else:
                frontier = arrays["frontier_keys"]
            st = _State(visited, columns[0], columns[1], frontier, goals, columns[2], columns[3],
                        {str(k): int(v) for k, v in header["first_bad"].items()},
                        n_states, int(header["base"]), int(header["depth"]), int(header["transitions"]),
                        arrays["fired"].astype(np.int64), arrays["enabled"].astype(np.int64))
            if st.fired.shape != (len(self.model.actions),) or st.enabled.shape != (len(self.step_names),):
                raise checkpoint.CheckpointError(f"checkpoint in {directory} does not fit this search")
            for name, count in header["checked"].items():
                if name in self.checked:
                    self.checked[name] = int(count)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, checkpoint.CheckpointError):
                raise
            raise checkpoint.CheckpointError(f"checkpoint in {directory} is incomplete: {exc!r}") from None
        if (len(visited) + on_disk != n_states or len(st.parents) != n_states
                or any(g.nbytes != n_states for g in goals.values())):
            raise checkpoint.CheckpointError(f"checkpoint in {directory} is inconsistent "
                                             f"(array sizes do not match {n_states} states)")
        return st

    def _disk_runs_from(self, header: dict[str, Any], arrays: checkpoint.Members, runs: list[Run]) -> int:
        """The checkpoint's spilled runs (compressed keys): copied into the work folder as they
        are, a chunk at a time, or without one decoded into ``runs`` in memory; their key count."""
        count = 0
        for i in range(int(header.get("disk_runs", 0))):
            offsets, fence = arrays[f"disk_offsets_{i}"], arrays[f"disk_fence_{i}"]
            ids_dtype = np.dtype(header["disk_ids_dtype"][i])
            n = int(header["disk_counts"][i])
            if self.disk is not None:
                self.disk.adopt(functools.partial(arrays.copy_to, f"disk_keys_{i}", link=True),
                                functools.partial(arrays.copy_to, f"disk_ids_{i}", link=True),
                                offsets, fence, n, ids_dtype)
            else:
                keys = DiskRuns.decoded(arrays[f"disk_keys_{i}"], offsets, self.packer.key_dtype)
                ids = arrays[f"disk_ids_{i}"]
                cuts = np.cumsum([0] + [k.shape[0] for k in keys])
                runs.append(Run(keys, [ids[a:b] for a, b in zip(cuts[:-1], cuts[1:])]))
                continue  # in memory: counted with the runs
            count += n
        return count

    def _prune_edges(self, src: np.ndarray, dst: np.ndarray, base: int, lo: int, hi: int,
                     goals: dict[str, "_Flags"], edges_deg: Column, edges_dst: Column) -> None:
        """Store the edges out of one chunk (level-local source rows ``lo..hi-1``; target
        state numbers, uint32) that AG EF needs.

        A source that is a goal state, or has a goal successor, can reach the goal: its flag
        is set and its edges are dropped (for every liveness property, it is kept if any
        property still needs it). Self-loops never help and are dropped too.
        """
        needed = np.zeros(hi - lo, dtype=bool)
        local = src - np.uint32(lo)
        for flags in goals.values():
            g = flags.view()
            hit = np.zeros(hi - lo, dtype=bool)
            hit[local[g[dst]]] = True
            mine = g[base + lo:base + hi]
            mine |= hit
            needed |= ~mine
        keep = needed[local]
        del needed
        src += np.uint32(base)  # state numbers (below 2**32), in place: ``src`` is the caller's copy
        keep &= dst != src
        local, dst = local[keep], dst[keep]
        del keep, src
        store_edges(local, dst, hi - lo, edges_deg, edges_dst)

    def _check(self, keys: np.ndarray, base: int, first_bad: dict[str, int],
               goals: dict[str, "_Flags"]) -> None:
        """Record the first violating state of each invariant, and liveness goal flags, over
        the states ``keys`` (numbered from ``base``): by the fused loop, or unpacked."""
        if keys.shape[0] == 0:
            return
        self._record(self._masks(keys, first_bad), keys.shape[0], base, first_bad, goals)

    def _check_level(self, keys: np.ndarray, base: int, first_bad: dict[str, int],
                     goals: dict[str, "_Flags"]) -> None:
        """:meth:`_check` over a level's new states, a chunk at a time: the properties are
        evaluated by the worker threads (the fused loop runs without the GIL), recorded in order."""
        n = -(-keys.shape[0] // CHUNK_ROWS)

        def task(i: int) -> dict[str, np.ndarray]:
            return self._masks(keys[i * CHUNK_ROWS:(i + 1) * CHUNK_ROWS], first_bad)

        for i, masks in enumerate(ordered_map(task, n, self.workers)):
            rows = min(CHUNK_ROWS, keys.shape[0] - i * CHUNK_ROWS)
            self._record(masks, rows, base + i * CHUNK_ROWS, first_bad, goals)

    def _masks(self, keys: np.ndarray, first_bad: dict[str, int]) -> dict[str, np.ndarray]:
        """Where each property still to check holds over the states ``keys``."""
        holds = self.ex.checker(keys)
        return {p.name: holds(p) for p in (*self.invariants, *self.lives)
                if p.kind != "invariant" or p.name not in first_bad}

    def _record(self, masks: dict[str, np.ndarray], rows: int, base: int, first_bad: dict[str, int],
                goals: dict[str, "_Flags"]) -> None:
        """Record ``masks`` (of ``rows`` states numbered from ``base``): see :meth:`_check`."""
        for prop in self.invariants:
            if prop.name not in first_bad:
                self.checked[prop.name] += rows
                ok = masks[prop.name]
                if not ok.all():
                    first_bad[prop.name] = base + int(np.flatnonzero(~ok)[0])
        for prop in self.lives:
            goals[prop.name].extend(masks[prop.name])

    def _path(self, parent: np.ndarray, via: np.ndarray, n: int) -> Path:
        """A shortest path to state ``n``: stored states by replaying the recorded actions."""
        return path_from_parents(self.model, parent, via, n, symmetry=self.symmetry, start=self.start_state)


def store_edges(local: np.ndarray, dst: np.ndarray, rows: int, edges_deg: Column, edges_dst: Column) -> None:
    """Append the kept edges out of ``rows`` consecutive states (``local``: each edge's source
    among them, ``dst``: its target) grouped by source (stable): the sources are stored as
    the out-degree of each of the ``rows`` states (a byte a state), the targets in that order."""
    grouped = levelc.group_by_source(local, dst, rows)  # in C: one counting pass
    if grouped is not None:
        edges_dst.append(grouped[0])
        edges_deg.append(grouped[1])
        return
    edges_dst.append(dst[np.argsort(local, kind="stable")])
    edges_deg.append(np.bincount(local, minlength=rows))


def _drop_goal_sources(chunk: _Chunk, goals: list[np.ndarray], base: int, lo: int, rows: int) -> _Chunk:
    """The chunk with the AG EF successors dropped out of every source (the states numbered
    ``base + lo`` on, ``rows`` of them) known already to reach each liveness property's goal:
    a goal state, or one with a successor that is an already numbered goal state. The level's
    pruning (see ``_Search._prune_edges``) drops their edges anyway; it sets the flags of the
    second kind, so these are kept in ``chunk.hits`` (per property, per row) and OR-ed into
    the flags after the chunk's pruning: the same flags and kept edges. At 3,2,1,2 these
    transitions are most of the 8 bytes a transition a level puts aside until its end."""
    if chunk.uidx is None or chunk.all_parents is None or chunk.ucode is None or not goals:
        return chunk
    # in C, one pass with no temporaries of a transition (their pages were a quarter of the
    # search's page faults at 3,1,2,2); the chunk's uidx and parents are its own, overwritten
    done_c = levelc.drop_goal_sources(chunk.uidx, chunk.all_parents, chunk.ucode, goals, base, lo, rows)
    if done_c is not None:
        chunk.uidx, chunk.all_parents, chunk.hits = done_c
        return chunk
    rows_of = chunk.all_parents - np.uint32(lo)
    dst = chunk.ucode[chunk.uidx]
    known = np.flatnonzero(dst >= 0)
    done = np.ones(rows, dtype=bool)
    hits = np.zeros((len(goals), rows), dtype=bool)
    for p, g in enumerate(goals):
        hits[p, rows_of[known[g[dst[known]]]]] = True
        done &= g[base + lo:base + lo + rows] | hits[p]
    del dst, known
    chunk.hits = hits
    if done.any():
        keep = ~done[rows_of]
        chunk.uidx, chunk.all_parents = chunk.uidx[keep], chunk.all_parents[keep]
    return chunk


class _Flags:
    """A growable bool array (amortized doubling), indexed by state number."""

    def __init__(self) -> None:
        self._data = np.zeros(1024, dtype=bool)
        self._n = 0

    def extend(self, values: np.ndarray) -> None:
        need = self._n + values.shape[0]
        if need > self._data.shape[0]:
            grown = np.zeros(max(need, 2 * self._data.shape[0]), dtype=bool)
            grown[:self._n] = self._data[:self._n]
            self._data = grown
        self._data[self._n:need] = values
        self._n = need

    def view(self) -> np.ndarray:
        return self._data[:self._n]

    @property
    def nbytes(self) -> int:
        return self._n


def _joined(parts: list[np.ndarray]) -> np.ndarray:
    """``parts`` as one array (the one part itself, not a copy)."""
    return parts[0] if len(parts) == 1 else np.concatenate(parts)
