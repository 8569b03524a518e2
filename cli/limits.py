"""Time limits that hold even when a user's step never returns: a SIGALRM deadline and a last resort.

A search or proof checks its own time limit as it goes and stops with partial figures. That
cannot help when the time is spent inside a user's step, procedure or variant file (a
``while True:``), so every subcommand that runs user code does its work inside
:func:`deadline`: at the limit plus a grace period, SIGALRM raises :class:`TimeLimitReached`
in the main thread, which the CLI reports in one line with exit code 3. The alarm repeats
every second, so a step that swallows one (``except BaseException``) gets the next; if the
process still runs ``HARD_STOP_S`` seconds after the alarm (code stuck in C, or swallowing
every alarm), a watchdog thread ends it with exit code 3.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from deferral.checks.explicit.limits import command_ends_by
from deferral.cli.exits import EXIT_UNKNOWN

#: Seconds after the first alarm before the watchdog ends the process outright.
HARD_STOP_S = 10.0


class TimeLimitReached(BaseException):
    """The deadline passed while the work was still running (BaseException: user code's
    ``except Exception`` must not swallow it)."""

    def __init__(self, what: str, seconds: float) -> None:
        super().__init__(f"{what}: time limit of {seconds:g} s reached")
        self.what = what
        self.seconds = seconds
        self.where = ""  # what was running, when no frame of a user's file says it


def grace_for(limit: float) -> float:
    """How long after ``limit`` the alarm fires: the work's own limit check goes first."""
    return 2.0 + 0.05 * limit


@contextmanager
def deadline(seconds: float | None, what: str, *, grace: float = 0.0) -> Iterator[None]:
    """Run the body with a hard deadline of ``seconds`` (+ ``grace``); None: no deadline.

    Only in the main thread (signals are delivered there); elsewhere it does nothing. Nested
    deadlines keep the earlier one.
    """
    if seconds is None or not math.isfinite(seconds) or threading.current_thread() is not threading.main_thread():
        yield
        return
    total = max(0.001, seconds + grace)
    outer_left, outer_interval = signal.getitimer(signal.ITIMER_REAL)
    if outer_left and outer_left <= total:  # an enclosing deadline comes first: keep it
        yield
        return

    fired: list[bool] = []

    def on_alarm(signum: int, frame: object) -> None:
        fired.append(True)
        raise TimeLimitReached(what, seconds)  # type: ignore[arg-type]

    def quiet(unraisable: Any) -> None:  # an alarm inside a C callback (Z3's) is "ignored", not a traceback:
        if not isinstance(unraisable.exc_value, TimeLimitReached):  # the next alarm, a second on, lands
            previous_hook(unraisable)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    previous_hook = sys.unraisablehook
    sys.unraisablehook = quiet
    start = time.monotonic()
    stop = threading.Event()
    watchdog = threading.Thread(target=_last_resort, args=(stop, total + HARD_STOP_S, what, seconds),
                                name="deferral-deadline", daemon=True)
    watchdog.start()
    signal.setitimer(signal.ITIMER_REAL, total, 1.0)
    try:
        with command_ends_by(start + seconds):  # a search's end waits for nothing past it (see there)
            yield
    except BaseException as exc:
        # the alarm raised inside a C call's argument conversion comes out as that call's error
        # (ctypes.ArgumentError, then e.g. "bad input" from the encoding): it is the time limit
        if fired and not isinstance(exc, TimeLimitReached):
            raise TimeLimitReached(what, seconds) from exc  # type: ignore[arg-type]
        raise
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        stop.set()
        signal.signal(signal.SIGALRM, previous)
        sys.unraisablehook = previous_hook
        if outer_left:  # give the enclosing deadline back what is left of it
            left = max(0.001, outer_left - (time.monotonic() - start))
            signal.setitimer(signal.ITIMER_REAL, left, outer_interval)


def _last_resort(stop: threading.Event, after: float, what: str, seconds: float) -> None:
    if stop.wait(after):
        return
    sys.stderr.write(f"deferral: {what}: time limit of {seconds:g} s reached and the work does not stop "
                     "(stuck in native code or ignoring the alarm); ending the process\n")
    sys.stderr.flush()
    os._exit(EXIT_UNKNOWN)
