"""An interrupt that a C call (Z3's, through ctypes) turned into its own error, raised as the interrupt again.

A signal's handler runs between bytecodes of the main thread; when that is inside a C call's
argument conversion, ctypes turns what the handler raised (Ctrl-C's ``KeyboardInterrupt``,
SIGTERM's ``Terminated``, a time limit's alarm) into ``ctypes.ArgumentError("argument 2:
KeyboardInterrupt: ")``, an ``Exception``. Code that catches a user's errors while it evaluates
steps over Z3 terms then took an interrupt for a step that failed and went on. Such code calls
:func:`raise_if_interrupt` first.
"""

from __future__ import annotations

import ctypes
import re
import signal
import threading

#: The signal whose handler raises each exception (by its class name, as ctypes' message names it).
_SIGNALLED = {"KeyboardInterrupt": signal.SIGINT, "Terminated": signal.SIGTERM, "TimeLimitReached": signal.SIGALRM}
_NAMED = re.compile(r"argument \d+: (\w+)")


def raise_if_interrupt(exc: BaseException) -> None:
    """If ``exc`` is a ``ctypes.ArgumentError`` standing for a signal's exception, raise that
    exception again: the signal is raised anew, so its own handler raises its own exception
    (``Terminated``: the command ends as terminated, 143; the alarm: the time limit), else
    ``KeyboardInterrupt`` for Ctrl-C. Otherwise return (a user's own error stays one)."""
    if not isinstance(exc, ctypes.ArgumentError):
        return
    named = _NAMED.match(str(exc))
    signum = _SIGNALLED.get(named.group(1)) if named else None
    if signum is None:
        return
    if callable(signal.getsignal(signum)) and threading.current_thread() is threading.main_thread():
        signal.raise_signal(signum)  # the handler's exception comes out of this call
    if signum == signal.SIGINT:
        raise KeyboardInterrupt from exc
