"""Ordered parallel map over forked worker processes (true parallelism for Python-heavy work).

The step functions are Python code evaluated over numpy batches, so threads would hold
the GIL for much of the time. Instead a BFS level forks ``workers`` processes that
inherit everything (protocol, frontier, visited set: copy-on-write, nothing pickled on
the way in, which also lets a user's variant with lambdas run in parallel); each computes
every ``workers``-th task and sends the results back through a pipe. Results are yielded
in task order, so the caller sees exactly what a sequential loop would produce.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from multiprocessing.connection import Connection, wait
from typing import Any, Callable, Iterator, Sequence, TypeVar

from deferral.model.context import StepError

T = TypeVar("T")


def fork_available() -> bool:
    return "fork" in mp.get_all_start_methods()


def ordered_map(task: Callable[[int], T], n: int, workers: int) -> Iterator[T]:
    """``task(0), ..., task(n-1)``, computed by ``workers`` forked processes, in order."""
    if workers <= 1 or n <= 1 or not fork_available():
        for i in range(n):
            yield task(i)
        return
    ctx = mp.get_context("fork")
    procs: list[Any] = []
    conns: list[Connection] = []
    try:
        for w in range(min(workers, n)):
            recv, send = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_serve, args=(task, range(w, n, workers), send), daemon=True)
            proc.start()
            send.close()
            procs.append(proc)
            conns.append(recv)
        buffered: dict[int, Any] = {}
        alive = list(conns)
        for i in range(n):
            while i not in buffered:
                if not alive:
                    raise RuntimeError("a search worker process exited without its results")
                for conn in wait(alive):
                    try:
                        kind, j, payload = conn.recv()  # type: ignore[union-attr]
                    except EOFError:
                        alive.remove(conn)  # type: ignore[arg-type]
                        continue
                    if kind == "error":
                        raise payload
                    buffered[j] = payload
            yield buffered.pop(i)
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join()
        for conn in conns:
            conn.close()


def _serve(task: Callable[[int], Any], indexes: Sequence[int], conn: Connection) -> None:
    try:
        for i in indexes:
            conn.send(("ok", i, task(i)))
    except BaseException as exc:  # report anything to the parent, which re-raises it
        err: BaseException = exc if isinstance(exc, StepError) or type(exc).__name__ == "NotVectorizable" \
            else RuntimeError(f"search worker: {type(exc).__name__}: {exc}")
        try:
            conn.send(("error", -1, err))
        except Exception:
            conn.send(("error", -1, RuntimeError(f"search worker: {type(exc).__name__}: {exc}")))
    finally:
        conn.close()
        # leave at once: no stdout flush or atexit handlers that could wait on a lock another
        # thread of the parent (e.g. a live progress display) held when we were forked
        os._exit(0)
