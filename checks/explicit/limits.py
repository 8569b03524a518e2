"""Time and memory limits of a search: polled often, raising :class:`LimitReached` when hit.

The memory limit is on this process's resident memory (its threads included: the search
has no worker processes). Its default is a share of the memory the machine has available
when the search starts, so that a search stops with its partial figures (exit 3) before
the machine, which may have no swap, runs out and the kernel kills it.
"""

from __future__ import annotations

import ctypes
import math
import os
import resource
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity; the machine's count where that is not known)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


#: Default memory limit: this share of the memory available when the search starts.
DEFAULT_MEMORY_SHARE = 0.8
#: glibc's mallopt parameter number for the mmap threshold.
_M_MMAP_THRESHOLD = -3
#: Blocks at least this big get their own mmap and go back to the system when freed.
MMAP_THRESHOLD = 1 << 16


#: Bytes a chunk's expansion holds at its peak per successor (candidate keys, their sort order and
#: sorted copy, parents, actions, visited look-ups, AG EF targets), beyond the chunk's own rows.
SUCCESSOR_BYTES = 56


def expansion_bytes(rows: int, row_bytes: int, fanout: float, in_flight: int = 1) -> int:
    """What expanding ``in_flight`` chunks of ``rows`` frontier states adds to resident memory at
    most: the unpacked rows and one action's successor rows, plus :data:`SUCCESSOR_BYTES` for each
    of the ``fanout`` successors a state has (the last level's average; the action count at first)."""
    return int(in_flight * rows * (2 * row_bytes + fanout * SUCCESSOR_BYTES))


#: When (``time.monotonic``) the command running must have ended: its ``--time-limit`` or
#: ``--timeout``, set by the CLI (:func:`deferral.cli.limits.deadline`); None: no such limit. What
#: may wait past a search's own limits (its end's wait for the compiled loop's build) waits no later.
_command_deadline: list[float | None] = [None]


def command_deadline() -> float | None:
    """When the command running must have ended (``time.monotonic``), or None."""
    return _command_deadline[0]


@contextmanager
def command_ends_by(at: float | None) -> Iterator[None]:
    """Inside, :func:`command_deadline` is ``at`` (or the deadline set outside, when earlier)."""
    outer = _command_deadline[0]
    _command_deadline[0] = at if outer is None or (at is not None and at < outer) else outer
    try:
        yield
    finally:
        _command_deadline[0] = outer


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


def peak_rss_bytes() -> int:
    """Peak resident memory of this process (Linux: ``VmHWM``; elsewhere ``ru_maxrss``).

    Not ``ru_maxrss`` on Linux: a process started by a big one (vfork or fork, then exec)
    inherits the parent's resident size there as its own peak.
    """
    hwm = _proc_bytes("/proc/self/status", b"VmHWM:")
    if hwm is not None:
        return hwm
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak * 1024 if os.uname().sysname != "Darwin" else peak


def available_bytes() -> int | None:
    """Memory the machine can still give (MemAvailable of /proc/meminfo), None if unknown."""
    available = _proc_bytes("/proc/meminfo", b"MemAvailable:")
    if available is not None:
        return available
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

    def check(self, extra: int = 0) -> None:
        """Raise if past the time limit, or if resident memory plus ``extra`` bytes (what
        the caller is about to allocate) passes the memory limit."""
        if self.time_limit is not None and time.monotonic() - self.start > self.time_limit:
            raise LimitReached("time-limit")
        if self.memory_limit is not None and rss_bytes() + extra > self.memory_limit:
            raise LimitReached("memory-limit")

    def remaining_s(self) -> float | None:
        if self.time_limit is None:
            return None
        return max(0.0, self.time_limit - (time.monotonic() - self.start))


def return_freed_memory() -> bool:
    """Make big freed arrays go back to the system at once (glibc; a no-op elsewhere).

    glibc raises its mmap threshold each time a big block is freed, after which arrays up
    to 32 MiB come from the heap and stay resident after numpy frees them: the search's
    per-level temporaries then add up to a third more resident memory. A fixed threshold
    (which also turns off the raising) keeps each big array in its own mapping. This is a
    setting of the process's allocator, idempotent, set once per search.
    """
    try:
        try:  # glibc's usual name first: find_library runs ldconfig in a subprocess (a fork)
            libc = ctypes.CDLL("libc.so.6")
        except OSError:
            from ctypes import util  # imports subprocess: only where glibc's name is not found

            libc = ctypes.CDLL(util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def layout_bound(sizes: tuple[int, ...], symmetric: int = 1) -> int:
    """At most how many states (orbits: divided by ``symmetric``!, the interchangeable VCPUs'
    permutations) a layout with these slot sizes can have: the product of the domains."""
    return max(1, math.prod(sizes) // math.factorial(symmetric))


#: BFS levels whose growth the extrapolation fits.
FIT_LEVELS = 4


def project_states(levels: list[int], max_levels: int = 1000) -> float | None:
    """About how many states a search will store, from the sizes of its levels so far.

    The logarithm of each level's growth (its size over the one before) is fitted by a
    straight line over the last :data:`FIT_LEVELS` levels and followed until the levels die
    out. None while the growth is not slowing (no end in sight yet). A rough estimate: on
    the reference (2,2,1,2; 3,1,2,2; 3,1,1,2) it was 2-10x low before a tenth of the states
    were found, within 0.7-1.05x after.
    """
    if len(levels) < FIT_LEVELS + 2 or min(levels[-FIT_LEVELS - 1:]) <= 0:
        return None
    logs = [math.log(levels[i] / levels[i - 1]) for i in range(len(levels) - FIT_LEVELS, len(levels))]
    mean_x, mean_y = (FIT_LEVELS - 1) / 2, sum(logs) / FIT_LEVELS
    slope = (sum((x - mean_x) * (y - mean_y) for x, y in enumerate(logs))
             / sum((x - mean_x) ** 2 for x in range(FIT_LEVELS)))
    if slope >= 0:
        return None
    total, size = float(sum(levels)), float(levels[-1])
    for x in range(FIT_LEVELS, FIT_LEVELS + max_levels):
        size *= math.exp(mean_y + slope * (x - mean_x))
        if size < 1:
            break
        total += size
    return total


def _proc_bytes(path: str, field: bytes) -> int | None:
    """A ``FIELD: N kB`` line of a /proc file in bytes, None where there is no such file or line."""
    try:
        with open(path, "rb") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None
