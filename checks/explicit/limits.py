"""Time and memory limits of a search: polled often, raising :class:`LimitReached` when hit.

The memory limit is on this process's resident memory (its threads included: the search
has no worker processes). Its default is a share of the memory the machine has available
when the search starts, so that a search stops with its partial figures (exit 3) before
the machine, which may have no swap, runs out and the kernel kills it.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass

#: Default memory limit: this share of the memory available when the search starts.
DEFAULT_MEMORY_SHARE = 0.8


class LimitReached(Exception):
    """A limit stopped the search; ``reason`` is "time-limit" or "memory-limit"."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def rss_bytes() -> int:
    """Resident memory of this process now (Linux /proc; elsewhere its peak so far)."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak * 1024 if os.uname().sysname != "Darwin" else peak


def available_bytes() -> int | None:
    """Memory the machine can still give (MemAvailable of /proc/meminfo), None if unknown."""
    try:
        with open("/proc/meminfo", "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def default_memory_limit() -> int | None:
    """The default limit: :data:`DEFAULT_MEMORY_SHARE` of (available memory + what we hold)."""
    avail = available_bytes()
    if avail is None:
        return None
    return int(DEFAULT_MEMORY_SHARE * (avail + rss_bytes()))


@dataclass
class Limits:
    """A search's limits: ``check()`` raises :class:`LimitReached` once one is passed."""

    start: float  # time.monotonic() when the search started
    time_limit: float | None = None  # seconds
    memory_limit: int | None = None  # bytes of resident memory

    def check(self) -> None:
        if self.time_limit is not None and time.monotonic() - self.start > self.time_limit:
            raise LimitReached("time-limit")
        if self.memory_limit is not None and rss_bytes() > self.memory_limit:
            raise LimitReached("memory-limit")

    def remaining_s(self) -> float | None:
        if self.time_limit is None:
            return None
        return max(0.0, self.time_limit - (time.monotonic() - self.start))
