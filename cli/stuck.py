"""Ctrl-C and SIGTERM end a command even while it waits in native code (a Z3 query, a C loop).

Python runs a signal's handler only between bytecodes of the main thread, so while the main
thread is inside one long native call (a Z3 query of a bounded model check at large bounds can
run for many minutes without a limit) SIGINT and SIGTERM do nothing: ``kill`` and Ctrl-C were
ignored for the whole query. Under :func:`signals_reach_native_code` the signal's C-level handler
also wakes a watcher thread (``signal.set_wakeup_fd``), which at once interrupts Z3's main
context (the query returns "canceled" and the handler runs as usual: the command unwinds,
cleans up and reports ``interrupted`` or ``terminated``); if the handler still has not run
``grace`` seconds later (a call Z3 cannot interrupt, another library's loop), the watcher
reports it in one line and ends the process itself: exit 130 for SIGINT, 143 for SIGTERM,
never a verdict's code.

A signal's exception raised while Python runs a finalizer (a Z3 object's ``__del__`` calling
the C API when the collector frees it) is printed and dropped by the interpreter ("Exception
ignored in"), and the command went on to a verdict: under :func:`signals_reach_native_code` such
a dropped interrupt is sent again a moment later, until it lands where it unwinds the command.
"""

from __future__ import annotations

import os
import select
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from deferral.cli.exits import EXIT_INTERRUPTED, EXIT_TERMINATED

#: Seconds the watcher waits for the main thread to take the signal before it ends the process.
STUCK_GRACE_S = 5.0
_WATCHED = {int(signal.SIGINT): EXIT_INTERRUPTED, int(signal.SIGTERM): EXIT_TERMINATED}
_STOP = 0  # the byte that ends the watcher (no signal has number 0)
_AGAIN = 128  # a byte of _AGAIN + signum: the signal's exception was dropped in a finalizer, send it again
_AGAIN_AFTER_S = 0.2
#: What the report of a process the watcher ends adds to "interrupted" / "terminated (SIGTERM)".
STUCK_NOTE = "the work was inside native code and did not stop, so the process ends without its clean-up"


def ctrl_c_is_pythons() -> None:
    """Tell Z3 not to take SIGINT itself. By default a Z3 query catches Ctrl-C and returns
    "unknown" (interrupted from keyboard), which a command would report as a verdict it could not
    reach (exit 3) and go on with its next route; without it the signal reaches Python's handler
    (and the watcher, which interrupts the query), so the command ends as interrupted (exit 130).
    For the commands that run Z3 (it loads Z3, about 0.1 s, which they pay anyway)."""
    import z3

    z3.set_param("ctrl_c", False)


def interrupt_native_work() -> None:
    """Ask the native work under way to return: Z3's main context, if Z3 is loaded (a no-op otherwise)."""
    z3 = sys.modules.get("z3")
    if z3 is None:
        return
    try:
        z3.main_ctx().interrupt()
    except Exception:  # noqa: BLE001 - the process is ending; the grace period covers the rest
        pass


@contextmanager
def signals_reach_native_code(on_stuck: Callable[[int], None], grace: float = STUCK_GRACE_S) -> Iterator[None]:
    """While inside, SIGINT and SIGTERM (where they have Python handlers) reach work stuck in native
    code, see the module's docstring. ``on_stuck(signum)`` writes the report of a process the
    watcher ends (with :data:`STUCK_NOTE`). Only in the main thread; elsewhere it does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handled = threading.Event()
    wrapped: dict[int, Any] = {}
    for signum in _WATCHED:
        previous = signal.getsignal(signum)
        if callable(previous):  # SIG_DFL / SIG_IGN: nothing runs in Python, nothing to reach
            wrapped[signum] = previous
            signal.signal(signum, _noting(handled, previous))
    if not wrapped:
        yield
        return
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    try:
        old_fd = signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    except ValueError:  # not the main thread of the main interpreter
        old_fd = None
    watcher = threading.Thread(target=_watch, args=(read_end, handled, on_stuck, grace, set(wrapped)),
                               name="deferral-signals", daemon=True)
    watcher.start()
    previous_hook = sys.unraisablehook

    def dropped(unraisable: Any) -> None:
        """An interrupt raised in a finalizer is dropped by the interpreter: have it sent again."""
        signum = _signal_of(unraisable.exc_value)
        if signum is None or signum not in wrapped:
            previous_hook(unraisable)
            return
        try:
            os.write(write_end, bytes([_AGAIN + signum]))
        except OSError:
            pass

    sys.unraisablehook = dropped
    try:
        yield
    finally:
        sys.unraisablehook = previous_hook
        if old_fd is not None:
            signal.set_wakeup_fd(old_fd)
        for signum, previous in wrapped.items():
            signal.signal(signum, previous)
        try:
            os.write(write_end, bytes([_STOP]))
        except OSError:
            pass
        watcher.join(timeout=1.0)
        os.close(write_end)
        if not watcher.is_alive():
            os.close(read_end)


def _noting(handled: threading.Event, previous: Callable[..., Any]) -> Callable[[int, Any], Any]:
    def handler(signum: int, frame: Any) -> Any:
        handled.set()  # the main thread took it: its unwinding and clean-up may take their time
        return previous(signum, frame)
    return handler


def _watch(read_end: int, handled: threading.Event, on_stuck: Callable[[int], None], grace: float,
           watched: set[int]) -> None:
    taken: int | None = None  # the last signal whose handler ran while the command still runs
    while True:
        if taken is not None:  # its exception may have been swallowed (see resend_after)
            ready, _, _ = select.select([read_end], [], [], resend_after(grace))
            if not ready:
                handled.clear()  # sent again: watched as a new signal (the handler sets it)
                os.kill(os.getpid(), taken)
        try:
            data = os.read(read_end, 64)
        except OSError:
            return
        if not data or _STOP in data:
            return
        for again in {b - _AGAIN for b in data if b - _AGAIN in watched}:
            time.sleep(_AGAIN_AFTER_S)  # out of the finalizer by then, most likely; else it comes back here
            handled.clear()  # not taken after all: watched again as a new signal (the handler sets it)
            os.kill(os.getpid(), again)
        hits = [b for b in data if b in watched]
        if hits and handled.is_set():  # the handler ran already
            taken = hits[0]
        if not hits or handled.is_set():
            continue
        interrupt_native_work()
        if handled.wait(grace):
            taken = hits[0]
            continue
        signum = hits[0]
        try:
            on_stuck(signum)
        finally:
            os._exit(_WATCHED[signum])


def resend_after(grace: float) -> float:
    """Seconds after a signal's handler ran, with the command still running, before the signal is
    sent again, and again after as long: its exception may have been swallowed on the way, as a
    ctypes.ArgumentError (raised inside a C call's argument conversion) that code catching a user's
    errors took for one, and the command went on for good. Longer than any clean-up should take
    (a clean-up cut by it still ends the command by the same signal)."""
    return 2 * grace


def _signal_of(exc: BaseException | None) -> int | None:
    """The signal whose handler raised ``exc`` (also as the ctypes error a C call's argument
    conversion turns it into), or None."""
    from deferral.cli.terminate import Terminated

    seen = exc
    for _ in range(4):  # the exception, and what it was raised from or during
        if seen is None:
            return None
        if isinstance(seen, Terminated):
            return int(signal.SIGTERM)
        if isinstance(seen, KeyboardInterrupt):
            return int(signal.SIGINT)
        text = str(seen)
        if type(seen).__name__ == "ArgumentError" and ("Terminated" in text or "KeyboardInterrupt" in text):
            return int(signal.SIGTERM) if "Terminated" in text else int(signal.SIGINT)
        seen = seen.__cause__ or seen.__context__
    return None
