"""Containing a user's variant file: a trial run in a child process, and process exits turned into errors.

Python code can end its process where no exception handler sees it: ``os._exit(0)``,
``os.kill(os.getpid(), ...)``, an ``os.exec*`` of another program, libc's ``exit`` through
ctypes. Were such a call to end ``deferral``, the exit status would be the one the code
chose, 0 ("holds") included. Two layers keep a variant file from ending a command with a
verdict's exit code:

1. :func:`trial`: before this process loads the file, a forked child loads it and runs its
   steps and properties on the first states of a breadth-first search at the protocol's
   default bounds (at most :data:`TRIAL_STATES` states, :data:`TRIAL_S` seconds). The child
   tells this process through a pipe how far it got; a child that ends in any other way (an
   exit of its own, a signal) makes the file bad input (exit 2), naming what was running.
   Errors Python sees (an exception, ``sys.exit``) are left to this process, which reports
   them as usual when it loads and runs the file itself.
2. :func:`guarded_exits`: while a command runs, ``os._exit``, ``os.kill``/``os.killpg`` aimed at
   this process and the ``os.exec*`` family, called from outside deferral's own code in this
   process, raise :class:`~deferral.model.context.ProcessExit` (a ``SystemExit``), which the
   step wrappers report as the variant's error: exit 2 naming file, step and call.

Out of reach: native code (ctypes, a C extension) ending the process in a state the trial
did not reach. Then the exit status is the one that code chose (README, "Exit codes").
"""

from __future__ import annotations

import math
import os
import select
import signal
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from deferral.cli.limits import TimeLimitReached
from deferral.model.context import ProcessExit

#: States of the trial's breadth-first search, and seconds it may run after the file loaded.
TRIAL_STATES = 64
TRIAL_S = 1.0
#: deferral's own code: calls from there are never the variant's.
_OURS = str(Path(__file__).resolve().parents[1])
_EXEC = ("execl", "execle", "execlp", "execlpe", "execv", "execve", "execvp", "execvpe")
_REAL_EXIT = os._exit


class TrialFailed(Exception):
    """The variant file ended the trial's process, or did not finish loading in time."""


def trial(path: str, load_limit: float) -> None:
    """Load and first-run the variant file at ``path`` in a child process (see the module's
    docstring); raise :class:`TrialFailed` if it ended that process or did not load within
    ``load_limit`` seconds. Nothing happens where ``fork`` is missing."""
    if not hasattr(os, "fork") or not Path(path).is_file():
        return  # the in-process load reports a missing file
    read_end, write_end = os.pipe()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(path, write_end)
    os.close(write_end)
    lines: list[str] = []
    try:
        try:
            _read_lines(read_end, load_limit, lines)
        finally:
            os.close(read_end)
            if not (lines and lines[-1] in ("done", "error")):
                _kill(pid)
            _, status = os.waitpid(pid, 0)
    except TimeLimitReached as stop:  # the command's limit passed while the trial ran: say where
        stop.where = f"{path}, {_running(lines) or 'loading it'} (in a trial run of its first states)"
        raise
    last = lines[-1] if lines else ""
    if last in ("done", "error", "timeout"):  # a step that loops: the time limit of the command stops it
        return
    if last == "too-slow":
        raise TrialFailed(f"variant file {path}: does not finish loading within {load_limit:g} s")
    if "loaded" not in lines:
        raise TrialFailed(f"variant file {path}: ended the process while it loaded ({_how(status)}); "
                          "a variant file only defines functions and VARIANT")
    running = _running(lines)
    raise TrialFailed(f"variant file {path}: ended the process ({_how(status)})"
                      f"{' in ' + running if running else ''}, in a trial run of its first states; "
                      "a step, procedure or property must return (or raise), never end the process")


def _running(lines: list[str]) -> str:
    """The step or property the child last started, from its lines."""
    return next((line for line in reversed(lines) if line.startswith(("step ", "property "))), "")


def _how(status: int) -> str:
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = str(sig)
        return f"killed by {name}"
    return f"exit status {os.WEXITSTATUS(status)}"


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _read_lines(fd: int, load_limit: float, lines: list[str]) -> None:
    """Append the child's lines to ``lines`` until it closes the pipe; at most ``load_limit`` s until
    "loaded", then :data:`TRIAL_S` more (plus a second of slack: the child stops its own trial in time)."""
    buffer = b""
    deadline = time.monotonic() + load_limit
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            lines.append("timeout" if "loaded" in lines else "too-slow")
            return
        ready, _, _ = select.select([fd], [], [], left if math.isfinite(left) else None)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        buffer += chunk
        *complete, buffer = buffer.split(b"\n")
        for raw in complete:
            line = raw.decode("utf-8", "replace")
            if line == "loaded":
                deadline = time.monotonic() + TRIAL_S + 1.0
                alarm = signal.getitimer(signal.ITIMER_REAL)[0]
                if 0 < alarm < TRIAL_S + 2.0:  # the command's limit comes first: wait for it here,
                    deadline = math.inf  # where what runs is known (a step that loops)
            lines.append(line)


def _child(path: str, fd: int) -> None:
    """Load the file, run its first states, report through ``fd``, end with os._exit."""
    code = 0
    try:
        os.setpgid(0, 0)  # its own process group: a killpg(0, ...) of the file's reaches no one else
        _die_with_parent()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the command's unwinding handler
        say = _writer(fd)
        from deferral.model.variants import load_variant_file

        try:
            protocol = load_variant_file(path)
        except BaseException:  # noqa: BLE001 - an error Python sees: the parent reports it
            say("error")
        else:
            say("loaded")
            _first_states(protocol, say)
            say("done")
    except BaseException:  # noqa: BLE001 - nothing may escape a forked child
        code = 1
    _REAL_EXIT(code)


def _writer(fd: int) -> Callable[[str], None]:
    def say(line: str) -> None:
        os.write(fd, (line + "\n").encode("utf-8", "replace"))
    return say


def _first_states(protocol: Any, say: Callable[[str], None]) -> None:
    """Breadth-first from the initial state at the default bounds: every step instance and
    property on each state, until an error Python sees, TRIAL_STATES states or TRIAL_S s."""
    from deferral.model.concrete import Model

    stop = time.monotonic() + TRIAL_S
    try:
        model = Model(protocol, protocol.bounds())
        frontier, seen = [model.initial], {model.initial}
        while frontier and len(seen) < TRIAL_STATES and time.monotonic() < stop:
            state = frontier.pop(0)
            say("property check")
            model.violations(state)
            for action in model.actions:
                say(f"step {action.label()}")
                nxt = model.apply(state, action)
                if nxt is not None and nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
    except BaseException:  # noqa: BLE001 - errors Python sees are the parent's to report, at the user's bounds
        return


def _die_with_parent() -> None:
    """Linux: the child gets SIGKILL when its parent dies (no orphan); elsewhere nothing."""
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@contextmanager
def guarded_exits() -> Iterator[None]:
    """While the body runs, process-ending calls of a user's code in this process raise
    :class:`ProcessExit` (see the module's docstring); the functions are restored after."""
    me = os.getpid()
    originals: dict[str, Any] = {}

    def guard(name: str, real: Callable[..., Any], aimed_here: Callable[..., bool]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            caller = sys._getframe(1).f_code.co_filename
            if os.getpid() == me and not caller.startswith(_OURS) and aimed_here(*args):
                shown = ", ".join(repr(a) for a in args[:2])
                raise ProcessExit(f"os.{name}({shown})")
            return real(*args, **kwargs)
        guarded.__name__ = name
        return guarded

    def self_pid(pid: int, *rest: Any) -> bool:
        return pid in (0, me, -me) or (pid == -1)

    def own_group(pgid: int, *rest: Any) -> bool:
        return pgid in (0, os.getpgid(0))

    table: dict[str, Callable[..., bool]] = {"_exit": lambda *a: True, "kill": self_pid, "killpg": own_group}
    table.update({name: (lambda *a: True) for name in _EXEC if hasattr(os, name)})
    for name, aimed in table.items():
        originals[name] = getattr(os, name)
        setattr(os, name, guard(name, originals[name], aimed))
    try:
        yield
    finally:
        for name, real in originals.items():
            setattr(os, name, real)
