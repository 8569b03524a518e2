"""A BFS level's candidate runs: consecutive chunks' candidates merged in groups as they come.

Each chunk of a level parks its new candidates (sorted unique keys, the frontier rows and
actions that reached them; see :mod:`deferral.checks.explicit.levelmerge`), and the level's
merge reads a slice of every *run* of candidates for each key range it merges. Its cost grows
with the runs times the ranges: on a wide level whose arrays went to disk (3,2,1,2 at depth 17:
about 14,000 chunks, 150 ranges) that was millions of small reads, most of the level's time.

A *grouped* level merges consecutive chunks into one run (:func:`levelmerge.merge_run`) on a
background thread while the next chunks expand, a group closing once it holds
``group_candidates`` candidates, so the level's merge reads one run per few hundred chunks.
A key found by several chunks of a group keeps the earliest chunk's parent and action, as the
level's merge would have chosen: state numbers, counts and shortest paths are unchanged. For
AG EF each grouped chunk also keeps where its candidates went in its run (its *slots*), which
number its edges' targets once the level is merged.

An ungrouped chunk is a run of its own (nothing copied). Whether a level is grouped is the
search's choice (see ``_Search._grouped``); it may start in the middle of a level (the first
spill), and is kept to the level's end.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

from deferral.checks.explicit import levelmerge
from deferral.checks.explicit.spill import Parked

#: Keys a compressed block of a grouped run on disk: a range of the level's merge reads some
#: thousands of keys of each run, and placing a splitter decodes one block.
RUN_BLOCK = 1 << 12


class LevelRuns:
    """One level's runs of candidates (a chunk's own, or a group's merge), in chunk order."""

    def __init__(self, parked: Parked, group_candidates: int, slots: bool) -> None:
        self.parked = parked
        self.group_candidates = max(1, group_candidates)
        self.slots = slots  # AG EF: keep each grouped chunk's slots
        self.sizes: list[int] = []  # per run: its distinct candidates
        self.samples: list[np.ndarray] = []  # per run: levelmerge.sample of its keys
        self.run_of: list[int] = []  # per chunk: its run
        self.grouping = False  # read by the worker threads: hold a chunk's arrays for its group
        self._names: list[tuple[object, object, object]] = []  # per run: its parked arrays
        self._left: list[int] = []  # per run: chunks not yet numbered (see done_with)
        self._pending: list[int] = []  # chunks of the group being filled
        self._pending_candidates = 0
        self._job: Future[None] | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    @staticmethod
    def chunk_names(chunk: int) -> tuple[object, object, object]:
        """The names a chunk parks its candidates under (keys, parent rows, actions)."""
        return ("keys", chunk), ("parents", chunk), ("actions", chunk)

    def add(self, chunk: int, candidates: int, sample: np.ndarray) -> None:
        """Chunk ``chunk`` (the next, in order) has parked its ``candidates`` candidates
        (``sample``: :func:`levelmerge.sample` of its keys)."""
        if not self.grouping:
            self._close_group()
            self.run_of.append(len(self.sizes))
            self._new_run(self.chunk_names(chunk), candidates, sample, chunks=1)
            return
        self.run_of.append(-1)  # set when its group closes
        self._pending.append(chunk)
        self._pending_candidates += candidates
        if self._pending_candidates >= self.group_candidates:
            self._close_group()

    def finish(self) -> None:
        """The level's chunks are all added: merge the last group, wait for the merges."""
        self._close_group()
        self._wait()
        self._stop_pool()

    def close(self) -> None:
        """A level cut short: wait for a group merge in flight (its errors dropped)."""
        self._pending = []
        try:
            self._wait()
        except Exception:  # noqa: BLE001 - the level is abandoned; its arrays are cleared next
            pass
        self._stop_pool()

    def read(self, run: int, a: int, b: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidates ``a..b-1`` of ``run``: keys, parent rows, actions (a levelmerge reader)."""
        keys, parents, actions = self._names[run]
        return self.parked.get(keys, a, b), self.parked.get(parents, a, b), self.parked.get(actions, a, b)

    def read_keys(self, run: int, a: int, b: int) -> np.ndarray:
        return self.parked.get(self._names[run][0], a, b)

    def drop(self) -> None:
        """Forget the runs' arrays (merged: not read back)."""
        for names in self._names:
            for name in names:
                if name in self.parked:
                    self.parked.drop(name)

    def chunk_states(self, chunk: int, run_states: np.ndarray) -> np.ndarray:
        """Per candidate of ``chunk``, its entry of ``run_states`` (per candidate of its run)."""
        if ("slot", chunk) in self.parked:
            return run_states[self.parked.pop(("slot", chunk))]
        return run_states

    def done_with(self, chunk: int) -> bool:
        """``chunk`` is numbered: True once every chunk of its run is (its states may go)."""
        run = self.run_of[chunk]
        with self._lock:
            self._left[run] -= 1
            return self._left[run] == 0

    # ---- groups ----------------------------------------------------------------------------
    def _new_run(self, names: tuple[object, object, object], size: int, sample: np.ndarray,
                 chunks: int) -> None:
        self._names.append(names)
        self.sizes.append(size)
        self.samples.append(sample)
        self._left.append(chunks)

    def _close_group(self) -> None:
        """Merge the pending chunks into the next run, on the background thread (after the
        merge before it: at most one group is merged while the next fills)."""
        if not self._pending:
            return
        chunks = self._pending
        run = len(self.sizes)
        self._new_run((("run-keys", run), ("run-parents", run), ("run-actions", run)), 0, np.zeros(0),
                      chunks=len(chunks))
        for chunk in chunks:
            self.run_of[chunk] = run
        self._pending, self._pending_candidates = [], 0
        self._wait()
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="deferral-group-merge")
        self._job = self._pool.submit(self._merge_group, run, chunks)

    def _merge_group(self, run: int, chunks: list[int]) -> None:
        parked = self.parked
        parts = [tuple(parked.pop(name) for name in self.chunk_names(chunk)) for chunk in chunks]
        keys, parents, actions, slots = levelmerge.merge_run(parts)  # type: ignore[arg-type]
        del parts
        names = self._names[run]
        parked.put(names[0], keys, sorted_keys=True, block=RUN_BLOCK)
        parked.put(names[1], parents)
        parked.put(names[2], actions)
        if self.slots:
            for chunk, slot in zip(chunks, slots):
                parked.put(("slot", chunk), slot)
        self.samples[run] = levelmerge.sample(keys)
        self.sizes[run] = keys.shape[0]

    def _wait(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            job.result()

    def _stop_pool(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False)
