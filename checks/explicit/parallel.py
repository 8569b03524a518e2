"""Ordered parallel map over worker threads of the search process (numpy releases the GIL).

A BFS level is cut into chunks; :func:`ordered_map` computes them in ``workers`` daemon
threads of this process and yields the results in chunk order, so the caller sees exactly
what a sequential loop would produce. Threads, not processes: the heavy work of a chunk
(BLAS products for canonical keys, sorts, ``searchsorted``, gathers, ufunc loops) runs in
numpy with the GIL released, so two threads use two cores, and they share the frontier and
the visited set without copies, page faults or pickling. Being threads, they cannot outlive
the search process, however it ends (SIGKILL included): there are no orphans to reap.

At most ``workers + 1`` chunks are started ahead of the one the caller waits for, which
bounds the memory held by finished but not yet consumed results. While it waits, the
caller's ``poll`` runs every ``poll_every`` seconds (a time or memory limit raises there):
the limit is honoured even while a chunk, or a user's step that never returns, is running.
The threads are daemons, so a step stuck forever does not keep the process alive at exit.

A single task with no ``poll`` runs in the caller's thread: a thread gains nothing there, and
its start and hand-over cost more than a small BFS level's work (2,1,2,2: 19 levels, about
75 threads started for one-chunk levels; 15% of the search's CPU). The threads are kept
between calls (idle ones wait for the next map): a small search makes a few hundred maps
(three a level: the chunks, the invariant pass, the AG EF numbering), and started about 50
threads for them (1,2,1,1 with two spaces), each start a hand-over with the new thread.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")

#: Idle pool threads, each waiting for its next job (a forked child starts with none).
_idle: list["_Worker"] = []
_idle_lock = threading.Lock()
_started = [0]


class _Worker(threading.Thread):
    """A daemon thread that runs one job at a time, then waits idle in the pool."""

    def __init__(self, n: int) -> None:
        super().__init__(name=f"deferral-search-{n}", daemon=True)
        self.job: Callable[[], None] | None = None
        self.wake = threading.Semaphore(0)

    def run(self) -> None:
        while True:
            self.wake.acquire()
            job, self.job = self.job, None
            assert job is not None
            try:
                job()
            except BaseException:  # a job hands its own exceptions over; never kill the pool thread
                pass
            with _idle_lock:
                _idle.append(self)


def _run_in_pool(job: Callable[[], None]) -> None:
    """``job()`` on an idle pool thread, or on a new one when none is idle."""
    with _idle_lock:
        worker = _idle.pop() if _idle else None
        if worker is None:
            _started[0] += 1
            worker = _Worker(_started[0])
            start = True
        else:
            start = False
    worker.job = job
    worker.wake.release()
    if start:
        worker.start()


def _forget_pool() -> None:
    """In a forked child: the parent's threads do not exist there."""
    global _idle_lock
    _idle.clear()
    _idle_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool)


def ordered_map(task: Callable[[int], T], n: int, workers: int,
                poll: Callable[[], None] | None = None, poll_every: float = 0.2) -> Iterator[T]:
    """``task(0), ..., task(n-1)`` computed by ``workers`` threads, yielded in order.

    An exception raised by a task is re-raised here, at that task's turn. Closing the
    generator (or an exception from ``poll``) stops the threads from starting new tasks;
    a task already running finishes in the background and its result is dropped.
    """
    if n <= 0:
        return
    if n == 1 and poll is None:
        yield task(0)
        return
    workers = max(1, min(workers, n))
    window = workers + 1
    cond = threading.Condition()
    results: dict[int, tuple[bool, Any]] = {}
    state = {"next": 0, "consumed": 0, "cancelled": False}

    def work() -> None:
        while True:
            with cond:
                while (not state["cancelled"] and state["next"] < n
                       and state["next"] >= state["consumed"] + window):
                    cond.wait()
                if state["cancelled"] or state["next"] >= n:
                    return
                i = state["next"]
                state["next"] = i + 1
            try:
                out: tuple[bool, Any] = (True, task(i))
            except BaseException as exc:  # handed to the caller, re-raised at task i's turn
                out = (False, exc)
            with cond:
                if not state["cancelled"]:
                    results[i] = out
                cond.notify_all()

    for _ in range(workers):
        _run_in_pool(work)
    try:
        for i in range(n):
            with cond:
                while i not in results:
                    cond.wait(poll_every)
                    if poll is not None and i not in results:
                        poll()
                ok, value = results.pop(i)
                state["consumed"] = i + 1
                cond.notify_all()
            if not ok:
                raise value
            yield value
    finally:
        with cond:
            state["cancelled"] = True
            results.clear()
            cond.notify_all()
