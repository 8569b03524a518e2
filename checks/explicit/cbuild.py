"""Generated C compiled by the system's ``cc`` into a shared library, cached, loaded with ctypes.

The explicit search's fused loop (:mod:`deferral.checks.explicit.fused`) is C source
generated per model. :func:`load` compiles it once per machine (``cc -O2 -shared -fPIC``)
into the cache folder (``$DEFERRAL_CACHE``, else ``$XDG_CACHE_HOME/deferral``, else
``~/.cache/deferral``), named by the hash of the source and the compiler command, and loads
it with :mod:`ctypes` (a foreign call releases the GIL, so worker threads run it in
parallel; loading costs about a megabyte, not numba's 110 MiB). No compiler, an unwritable
cache or a failed compilation give None: the caller keeps its numpy path. A build may be
cancelled (``cancel``, an event another thread sets): the compiler is killed and nothing is
cached. A compiler still running when the process exits (a build a search left going in the
background, see :class:`~deferral.checks.explicit.fused.LazyFused`) is killed by an exit
handler, so none outlives the process.
"""

from __future__ import annotations

import atexit
import ctypes
import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path
from typing import NamedTuple

#: ``DEFERRAL_CC``: the C compiler (default ``cc``); ``DEFERRAL_CC=0`` switches compiled C off.
ENV_CC = "DEFERRAL_CC"
FLAGS = ("-O2", "-shared", "-fPIC", "-std=c99", "-w")
_lock = threading.Lock()  # guards _locks
_locks: dict[str, threading.Lock] = {}  # one a library: a build of one never holds up a load of another
_last = threading.local()  # per thread: whether its last load compiled (see built_last)
_compiling: set[int] = set()  # the process groups of the compilers running (killed at exit)


def _lock_of(digest: str) -> threading.Lock:
    with _lock:
        return _locks.setdefault(digest, threading.Lock())


def switched_off() -> bool:
    """Whether compiled C is switched off (``DEFERRAL_CC=0``): no PATH lookup."""
    return os.environ.get(ENV_CC, "cc").strip().lower() in ("", "0", "no", "false", "off")


def compiler() -> str | None:
    """The C compiler's path, or None (none installed, or switched off)."""
    if switched_off():
        return None
    return shutil.which(os.environ.get(ENV_CC, "cc").strip())


def cache_dir() -> Path:
    """Where compiled libraries are kept."""
    explicit = os.environ.get("DEFERRAL_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "deferral"


class Loaded(NamedTuple):
    """A compiled library, or why there is none (``problem``: None when C is switched off)."""

    lib: ctypes.CDLL | None
    problem: str | None = None


def missing() -> str | None:
    """Why no compiler is used where one was wanted (None: there is one, or it is switched off)."""
    name = os.environ.get(ENV_CC, "cc").strip()
    if switched_off() or shutil.which(name):
        return None
    return f"no C compiler: {name!r} is not on PATH (install one, or name it in ${ENV_CC})"


def load(source: str, timeout: float = 120.0, *, build: bool = True, key: str | None = None,
         meta: object = None, cancel: threading.Event | None = None, folder: Path | None = None,
         low: threading.Event | None = None) -> Loaded:
    """``source`` compiled (or found in the cache) and loaded, or why that is not possible;
    ``build=False``: only from the cache (not there: no library and no problem). ``key``:
    a cheap key standing for ``source`` (see :mod:`deferral.checks.explicit.fusedkey`), under
    which the library and ``meta`` (JSON) are remembered for :func:`load_key`. ``cancel``
    set before or while the compiler runs: it is not started or killed, no library (and no
    problem). ``folder``: the cache folder (default :func:`cache_dir`, read now). ``low`` set
    before or while the compiler runs: it runs at the lowest priority (nice 19).

    The compiler runs while the calling thread waits for it (a search's background build
    thread, see :class:`~deferral.checks.explicit.fused.LazyFused`, which waits for it, cancels
    it, or leaves it going for the next search); one still running at exit is killed."""
    _last.built = False
    cc = compiler()
    if cc is None:
        return Loaded(None, missing() if build else None)
    digest = _digest(cc, source)
    folder = cache_dir() if folder is None else folder
    lib = folder / f"fused-{digest}.so"
    with _lock_of(digest):  # two threads of one search build it once
        if not lib.exists():
            if not build or (cancel is not None and cancel.is_set()):
                return Loaded(None)
            import subprocess  # only to compile: a search whose libraries are cached does not load it

            try:
                folder.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=folder) as tmp:
                    c_file = Path(tmp) / "fused.c"
                    c_file.write_text(source)
                    built = Path(tmp) / "fused.so"
                    code, stderr = _compile(cc, c_file, built, timeout, cancel, low)
                    if code is None:  # cancelled
                        return Loaded(None)
                    if code != 0 or not built.exists():
                        first = (stderr.strip().splitlines() or [f"exit {code}"])[0]
                        return Loaded(None, f"{cc} failed on the generated C: {first[:200]}")
                    os.replace(built, lib)  # atomic: another process sees all of it or nothing
                    _last.built = True
            except subprocess.TimeoutExpired:
                return Loaded(None, f"{cc} took more than {timeout:.0f} s")
            except (OSError, subprocess.SubprocessError) as exc:
                return Loaded(None, f"cannot build in the cache folder {folder} "
                                    f"({type(exc).__name__}: {exc}; set $DEFERRAL_CACHE to a writable folder)")
        try:
            loaded = Loaded(ctypes.CDLL(str(lib)))
        except OSError as exc:
            return Loaded(None, f"cannot load {lib}: {exc}")
        if key is not None:
            _remember(folder, key, lib.name, meta)
        return loaded


def _digest(cc: str, source: str) -> str:
    return hashlib.sha256("\0".join((cc, *FLAGS, source)).encode()).hexdigest()[:24]


def built_last() -> bool:
    """Whether the calling thread's last :func:`load` compiled its library (not found in the cache)."""
    return bool(getattr(_last, "built", False))


def _compile(cc: str, c_file: Path, out: Path, timeout: float, cancel: threading.Event | None,
             low: threading.Event | None = None) -> tuple[int | None, str]:
    """Run the compiler: (its exit code, its stderr); (None, "") when ``cancel`` was set first;
    at nice 19 (its whole process group, the passes it starts too) once ``low`` is set."""
    import subprocess

    # in a process group of its own, killed as a whole: killing the driver alone leaves cc1 running
    with subprocess.Popen([cc, *FLAGS, "-o", str(out), str(c_file)], stdout=subprocess.DEVNULL,
                          stderr=subprocess.PIPE, text=True, process_group=0) as proc:
        _compiling.add(proc.pid)
        niced = False
        try:
            end = time.monotonic() + timeout
            while True:
                try:
                    if low is not None and low.is_set() != niced:  # lowered, or raised again (best effort)
                        niced = low.is_set()
                        set_priority(os.PRIO_PGRP, proc.pid, 19 if niced else 0)
                    _, stderr = proc.communicate(timeout=0.05 if cancel is not None else timeout)
                    return proc.returncode, stderr
                except subprocess.TimeoutExpired:
                    stop = cancel is not None and cancel.is_set()
                    if stop or time.monotonic() >= end:
                        _kill_group(proc.pid)
                        proc.communicate()
                        if stop:
                            return None, ""
                        raise
        finally:
            _compiling.discard(proc.pid)


def set_priority(which: int, who: int, nice: int) -> None:
    """``nice`` for a process group (``os.PRIO_PGRP``) or a thread (``os.PRIO_PROCESS`` and its native
    id, which Linux takes per thread): 19 for work nobody waits for, which yields the cores to work
    someone does; 0 again when someone waits for it (where allowed: raising it needs privileges)."""
    try:
        os.setpriority(which, who, nice)
    except OSError:  # ended meanwhile, or not allowed
        pass


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except OSError:  # ended meanwhile
        pass


@atexit.register
def kill_compilers() -> None:
    """Kill the compilers still running (their process groups): at exit, a build left going in the
    background (see :meth:`~deferral.checks.explicit.fused.LazyFused.finish`) ends with the process."""
    for pgid in list(_compiling):
        _kill_group(pgid)


def _remember(folder: Path, key: str, lib_name: str, meta: object) -> None:
    """Write the key's entry (atomically; an unwritable folder only loses the shortcut)."""
    try:
        with tempfile.NamedTemporaryFile("w", dir=folder, suffix=".tmp", delete=False) as f:
            json.dump({"lib": lib_name, "meta": meta}, f)
        os.replace(f.name, folder / f"key-{key}.json")
    except OSError:
        pass


def load_key(key: str, folder: Path | None = None) -> tuple[ctypes.CDLL, object] | None:
    """The library remembered under ``key`` (in ``folder``, default :func:`cache_dir`) and its
    ``meta``; None: none (or C switched off)."""
    if compiler() is None:
        return None
    folder = cache_dir() if folder is None else folder
    try:
        entry = json.loads((folder / f"key-{key}.json").read_text())
        name = entry["lib"]
        if not isinstance(name, str) or "/" in name or not name.startswith("fused-"):
            return None
        return ctypes.CDLL(str(folder / name)), entry.get("meta")
    except (OSError, ValueError, KeyError, TypeError):
        return None
