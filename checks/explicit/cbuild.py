"""Generated C compiled by the system's ``cc`` into a shared library, cached, loaded with ctypes.

The explicit search's fused loop (:mod:`deferral.checks.explicit.fused`) is C source
generated per model. :func:`load` compiles it once per machine (``cc -O2 -shared -fPIC``)
into the cache folder (``$DEFERRAL_CACHE``, else ``$XDG_CACHE_HOME/deferral``, else
``~/.cache/deferral``), named by the hash of the source and the compiler command, and loads
it with :mod:`ctypes` (a foreign call releases the GIL, so worker threads run it in
parallel; loading costs about a megabyte, not numba's 110 MiB). No compiler, an unwritable
cache or a failed compilation give None: the caller keeps its numpy path. A build may be
cancelled (``cancel``, an event another thread sets): the compiler is killed and nothing is
cached. A build survives its process: the compiler runs in a session of its own and writes a
temporary file that it renames into the cache when done, so a build a time-limited search left
going (see :class:`~deferral.checks.explicit.fused.LazyFused`) lands in the cache after the
process ends (at the lowest priority, nice 19, from the process's exit on). While it runs, a lock
file beside the library (``fused-<hash>.lock``, the compiler's process id) tells another process
to wait for that build rather than start its own; the key's entry is written when the compiler
starts, so that process need not generate the C either (:func:`wait_for_key`). A lock whose
process is gone (a killed build) or older than the build's timeout is stale: removed, and the
library built again.
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
_compiling: set[int] = set()  # the process groups of the compilers running (at nice 19 from the exit on)


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
    it, or leaves it going for the next search); one still running at exit goes on (at nice 19) and
    lands in the cache. Another process's build of the same library (its lock file) is waited for."""
    _last.built = False
    cc = compiler()
    if cc is None:
        return Loaded(None, missing() if build else None)
    digest = _digest(cc, source)
    folder = cache_dir() if folder is None else folder
    lib = folder / f"fused-{digest}.so"
    with _lock_of(digest):  # two threads of one search build it once
        for _ in range(2):  # another process's build first (waited for), then this one's own
            if lib.exists() or not build or (cancel is not None and cancel.is_set()):
                break
            import subprocess  # only to compile: a search whose libraries are cached does not load it

            try:
                folder.mkdir(parents=True, exist_ok=True)
                if not _await_build(lib, timeout, cancel):  # cancelled while another process builds it
                    return Loaded(None)
                if lib.exists() or not _take_lock(lib, timeout):
                    continue  # built meanwhile, or another process took the lock first: wait for it
                if key is not None:  # before the library: a process that finds the key waits for it
                    _remember(folder, key, lib.name, meta)
                code, stderr = _compile(cc, source, lib, timeout, cancel, low)
                if code is None:  # cancelled
                    return Loaded(None)
                if code != 0 or not lib.exists():
                    first = (stderr.strip().splitlines() or [f"exit {code}"])[0]
                    return Loaded(None, f"{cc} failed on the generated C: {first[:200]}")
                _last.built = True
            except subprocess.TimeoutExpired:
                return Loaded(None, f"{cc} took more than {timeout:.0f} s")
            except (OSError, subprocess.SubprocessError) as exc:
                return Loaded(None, f"cannot build in the cache folder {folder} "
                                    f"({type(exc).__name__}: {exc}; set $DEFERRAL_CACHE to a writable folder)")
        if not lib.exists():
            return Loaded(None)
        try:
            loaded = Loaded(ctypes.CDLL(str(lib)))
        except OSError as exc:
            return Loaded(None, f"cannot load {lib}: {exc}")
        if key is not None:
            _remember(folder, key, lib.name, meta)
        return loaded


def _lock_of_lib(lib: Path) -> Path:
    return lib.with_suffix(".lock")


#: A lock file this young with no process id in it yet is its builder's, starting.
LOCK_STARTING_S = 5.0


def _building(lib: Path, timeout: float) -> bool:
    """Whether a build of ``lib`` is running (in any process): its lock file names a live process and
    is younger than ``timeout`` (plus a margin). A stale lock (its process gone: a killed build; or
    too old) is removed."""
    lock = _lock_of_lib(lib)
    got = _read_lock(lock)
    if got is None:
        return False
    fields, age = got
    try:
        pid = int(fields[0])
    except (ValueError, IndexError):
        alive = age < LOCK_STARTING_S  # being written
    else:
        alive = _alive(pid) and age < timeout + 60
    if not alive:
        _unlink(lock)
    return alive


def _read_lock(path: Path) -> tuple[list[str], float] | None:
    """A lock or claim file's whitespace-separated fields and its age in seconds; None: there is none."""
    try:
        return path.read_text().split(), time.time() - path.stat().st_mtime
    except OSError:
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's: alive
        return True
    return True


def _await_build(lib: Path, timeout: float, cancel: threading.Event | None) -> bool:
    """Wait while another build of ``lib`` runs (at most ``timeout`` seconds); False if ``cancel``
    was set meanwhile (the other build goes on)."""
    end = time.monotonic() + timeout
    while not lib.exists() and _building(lib, timeout) and time.monotonic() < end:
        if cancel is not None and cancel.is_set():
            return False
        time.sleep(0.1)
    return True


def _take_lock(lib: Path, timeout: float) -> bool:
    """Create ``lib``'s lock file (this process's id until the compiler's is known); False if another
    process holds it (a live build: :func:`_building`)."""
    lock = _lock_of_lib(lib)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _building(lib, timeout):
                return False
            continue  # stale: removed, try again
        with os.fdopen(fd, "w") as f:
            f.write(f"{os.getpid()}\n")
        return True
    return False


def _digest(cc: str, source: str) -> str:
    return hashlib.sha256("\0".join((cc, *FLAGS, source)).encode()).hexdigest()[:24]


def built_last() -> bool:
    """Whether the calling thread's last :func:`load` compiled its library (not found in the cache)."""
    return bool(getattr(_last, "built", False))


#: The detached build: name itself in the lock (the build's own process, alive as long as it runs; written
#: by the shell, not after Popen returns, where a build already ended would leave a stale lock behind),
#: compile in its folder, rename the library into the cache, remove the lock; the folder is removed when
#: it succeeded (else its ``err`` is read by the process that started it).
_SCRIPT = ('echo $$ >"$DEFERRAL_LOCK"; cd "$1" || exit 1; shift; "$@" -o fused.so fused.c 2>err; code=$?; '
           'if [ $code -eq 0 ] && [ -s fused.so ]; then mv -f fused.so "$DEFERRAL_LIB"; fi; '
           'rm -f fused.c "$DEFERRAL_LOCK"; '
           'if [ $code -eq 0 ]; then cd / && rm -rf "$DEFERRAL_TMP"; fi; exit $code')


def _compile(cc: str, source: str, lib: Path, timeout: float, cancel: threading.Event | None,
             low: threading.Event | None = None) -> tuple[int | None, str]:
    """Compile ``source`` into ``lib`` (its lock taken): (the compiler's exit code, its stderr); (None,
    "") when ``cancel`` was set first (the compiler killed, nothing left). The compiler runs in a
    session of its own (a shell that renames its output into the cache and removes the lock), so
    it outlives this process; at nice 19 (its whole process group) once ``low`` is set."""
    import subprocess

    lock = _lock_of_lib(lib)
    tmp = Path(tempfile.mkdtemp(dir=lib.parent, prefix="tmp"))
    try:
        (tmp / "fused.c").write_text(source)
        env = {**os.environ, "DEFERRAL_LIB": str(lib), "DEFERRAL_LOCK": str(lock), "DEFERRAL_TMP": str(tmp)}
        proc = subprocess.Popen(["/bin/sh", "-c", _SCRIPT, "sh", str(tmp), cc, *FLAGS], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        _unlink(lock)
        raise
    _compiling.add(proc.pid)
    try:
        niced = False
        end = time.monotonic() + timeout
        while proc.poll() is None:
            if low is not None and low.is_set() != niced:  # lowered, or raised again (best effort)
                niced = low.is_set()
                set_priority(os.PRIO_PGRP, proc.pid, 19 if niced else 0)
            stop = cancel is not None and cancel.is_set()
            if stop or time.monotonic() >= end:
                _kill_group(proc.pid)
                proc.wait()
                shutil.rmtree(tmp, ignore_errors=True)
                _unlink(lock)
                if stop:
                    return None, ""
                raise subprocess.TimeoutExpired([cc], timeout)
            time.sleep(0.05)
        try:
            stderr = (tmp / "err").read_text(errors="replace") if proc.returncode else ""
        except OSError:
            stderr = ""
        shutil.rmtree(tmp, ignore_errors=True)
        return proc.returncode, stderr
    finally:
        _compiling.discard(proc.pid)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        pass


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
def lower_compilers() -> None:
    """At exit, the compilers still running (a build a search left going, see
    :meth:`~deferral.checks.explicit.fused.LazyFused.finish`) go on at the lowest priority: each lands
    in the cache for a later process, and yields the cores to work someone waits for."""
    for pgid in list(_compiling):
        set_priority(os.PRIO_PGRP, pgid, 19)


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


def wait_for_key(key: str, folder: Path | None = None, cancel: threading.Event | None = None,
                 timeout: float = 120.0) -> tuple[ctypes.CDLL, object] | None:
    """The library remembered under ``key`` and its ``meta``, waiting (at most ``timeout`` seconds,
    until ``cancel`` is set) while a build of it runs, in this process or another (a build a search
    left going when its process ended); None: none remembered, or its build is not running (failed,
    killed) or did not end in time."""
    if compiler() is None:
        return None
    folder = cache_dir() if folder is None else folder
    try:
        name = json.loads((folder / f"key-{key}.json").read_text())["lib"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(name, str) or "/" in name or not name.startswith("fused-"):
        return None
    if not _await_build(folder / name, timeout, cancel):
        return None
    return load_key(key, folder)


#: A claim on a key (see :func:`claim`) older than this is stale whatever its process (a reused id).
CLAIM_STALE_S = 3600.0


def _claim_file(key: str, folder: Path) -> Path:
    return folder / f"key-{key}.lock"


def claimant(key: str, folder: Path) -> tuple[int, int] | None:
    """``(process id, thread id)`` of the live build of the loop under ``key`` (generating its C or
    compiling it, in this process or another), None: none. A claim whose process or thread is gone
    (a killed build; a thread of this process that ended) is stale: removed."""
    path = _claim_file(key, folder)
    got = _read_lock(path)
    if got is None:
        return None
    fields, age = got
    try:
        pid, tid = (int(x) for x in fields[:2])
    except ValueError:
        if age < LOCK_STARTING_S:  # being written
            return (0, 0)
        pid = tid = -1
    if pid == os.getpid():
        alive = any(t.native_id == tid for t in threading.enumerate())
    else:
        alive = pid > 0 and _alive(pid) and age < CLAIM_STALE_S
    if not alive:
        _unlink(path)
        return None
    return pid, tid


def claim(key: str, folder: Path, cancel: threading.Event | None = None, poll_s: float = 0.1) -> bool:
    """Claim the build of the loop under ``key`` for the calling thread (a file ``key-<key>.lock`` in
    ``folder``), waiting while another build of it runs (its thread is hurried to priority 0: it is
    waited for); False: ``cancel`` was set first, or the folder cannot be written (build anyway).
    One mechanism for a build in this process and in another (a search that a limit stopped leaves
    its build going; the next search waits for it rather than generating the C again)."""
    path = _claim_file(key, folder)
    mine = f"{os.getpid()} {threading.get_native_id()}\n"
    hurried = None
    while True:
        if cancel is not None and cancel.is_set():
            return False
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            other = claimant(key, folder)
            if other is not None:
                if cancel is None and other != hurried and other[1] > 0:
                    set_priority(os.PRIO_PROCESS, other[1], 0)  # a foreground wait: no longer at nice 19
                    hurried = other
                time.sleep(poll_s)
            continue
        except OSError:
            return True  # an unwritable folder: nothing to coordinate (the build says why)
        with os.fdopen(fd, "w") as f:
            f.write(mine)
        return True


def release(key: str, folder: Path) -> None:
    """End the calling thread's claim on ``key`` (see :func:`claim`)."""
    path = _claim_file(key, folder)
    try:
        if path.read_text() == f"{os.getpid()} {threading.get_native_id()}\n":
            path.unlink()
    except OSError:
        pass
