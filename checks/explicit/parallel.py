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
75 threads started for one-chunk levels; 15% of the search's CPU).
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Iterator, TypeVar

T = TypeVar("T")


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

    for w in range(workers):
        threading.Thread(target=work, name=f"deferral-search-{w}", daemon=True).start()
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
