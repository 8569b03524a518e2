"""SIGTERM as an orderly end: the command unwinds, then the process dies of SIGTERM.

Without a handler, SIGTERM (what ``timeout``, CI runners, systemd and ``kill`` send) ends
Python at once: no ``finally`` runs, so a ``--work-dir`` spill folder (tens of GB on a big
search), a compiler's scratch folder or a half-written temporary output stays behind. Under
:func:`sigterm_unwinds` the signal raises :class:`Terminated` in the main thread instead,
the command's clean-up runs as for Ctrl-C, the one-line report says ``terminated``, and
:func:`die_as_terminated` then ends the process by SIGTERM itself, so whoever sent it sees
the status it expects (a death by signal 15, 143 in a shell), never a verdict's exit code.

A process started with SIGTERM ignored keeps ignoring it (as with SIGINT and ``nohup``).
"""

from __future__ import annotations

import os
import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwind like an interrupt (every ``finally`` runs), then die of it."""

    def __init__(self) -> None:
        super().__init__("terminated (SIGTERM)")


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated()


@contextmanager
def sigterm_unwinds() -> Iterator[None]:
    """While inside, SIGTERM raises :class:`Terminated` in the main thread (if it was at its
    default action there; otherwise nothing changes). The previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def die_as_terminated() -> None:
    """End this process by SIGTERM at its default action (the report is already written)."""
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    os._exit(128 + signal.SIGTERM)  # not reached unless the signal is held off
