"""What ends a command, as its exit code and one line: the CLI's error contract.

Bad input is exit 2, a limit 3, an interrupt 130, and anything unexpected 70 ("internal
error"), never 1 (a verdict). An exception raised inside a user's variant file that no
step wrapper turned into a one-line error is still the variant's: it is attributed by the
traceback to the file and line, and is bad input (2). With ``--json`` the same error is
also printed on stdout as one JSON object, so a caller parsing stdout never gets nothing.
"""

from __future__ import annotations

import errno
import json
import re
import sys
import traceback
from dataclasses import dataclass

import os

from deferral.cli.common import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_PIPE_CLOSED, EXIT_UNKNOWN, EXIT_USAGE, UsageError
from deferral.cli.exits import EXIT_TERMINATED
from deferral.cli.limits import TimeLimitReached
from deferral.cli.terminate import Terminated
from deferral.model.context import StepError, describe_user_error
from deferral.model.tracebacks import user_frame
from deferral.model.variants import VariantError
from deferral.traces.files import OutputPathError
from deferral.traces.format import TraceError

#: Longest message printed (a user's exception text can be anything).
MAX_MESSAGE = 2000


@dataclass(frozen=True)
class Failure:
    """How a command ended without a result: exit code, kind (for JSON) and one line."""

    code: int
    kind: str  # bad-input | limit | interrupted | pipe-closed | internal
    message: str

    def line(self) -> str:
        return f"deferral: {self.message}"

    def to_json(self) -> dict[str, object]:
        return {"error": {"kind": self.kind, "message": self.message}, "exit_code": self.code}


def one_line(text: str) -> str:
    """``text`` on one line of printable characters, cut at :data:`MAX_MESSAGE` characters."""
    flat = re.sub(r"\s*[\r\n]+\s*", " ", str(text)).strip()
    # other control characters (some split lines too: \x1c-\x1e, \x85, \u2028) are shown escaped
    flat = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in flat)
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 3] + "..."


def classify(exc: BaseException) -> Failure:
    """The :class:`Failure` an exception that ended a command stands for."""
    if isinstance(exc, (UsageError, VariantError, TraceError, OutputPathError)):
        return Failure(EXIT_USAGE, "bad-input", one_line(str(exc)))
    if isinstance(exc, StepError):  # a user's variant misbehaved while it ran
        return Failure(EXIT_USAGE, "bad-input", one_line(f"error in the protocol: {exc}"))
    if isinstance(exc, TimeLimitReached):
        where = user_frame(exc) or exc.where
        at = f"; it was running {where}" if where else ""
        return Failure(EXIT_UNKNOWN, "limit", one_line(f"{exc}{at} (verdict unknown)"))
    if isinstance(exc, Terminated):
        return Failure(EXIT_TERMINATED, "interrupted", str(exc))
    if isinstance(exc, KeyboardInterrupt):
        return Failure(EXIT_INTERRUPTED, "interrupted", "interrupted")
    if isinstance(exc, BrokenPipeError) or isinstance(exc.__context__, BrokenPipeError):  # rich exits on it
        return Failure(EXIT_PIPE_CLOSED, "pipe-closed", "output closed by the reader")
    if isinstance(exc, MemoryError):
        return Failure(EXIT_UNKNOWN, "limit", "out of memory (verdict unknown); try smaller bounds")
    if isinstance(exc, OSError) and exc.errno in (errno.EMFILE, errno.ENFILE):
        return Failure(EXIT_UNKNOWN, "limit", one_line(f"too many open files (verdict unknown): {exc}; "
                                                      f"raise the limit (ulimit -n)"))
    if isinstance(exc, RecursionError):
        where = user_frame(exc)
        if where:
            return Failure(EXIT_USAGE, "bad-input", one_line(f"error in the protocol: {where}: recursion too deep"))
    where = user_frame(exc)
    what = describe_user_error(exc)
    if where:  # escaped from a user's file without a wrapper: still the variant's error
        return Failure(EXIT_USAGE, "bad-input", one_line(f"error in the protocol: {where} {what}"))
    return Failure(EXIT_INTERNAL, "internal",
                   one_line(f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"))


def last_resort(exc: BaseException, failed: BaseException) -> int:
    """Exit code of an error whose report itself failed (no memory or descriptors left, say):
    internal, never a verdict; one line on stderr, written without allocating much."""
    text = f"deferral: internal error: {type(exc).__name__}: {exc} (reporting it failed: {type(failed).__name__})"
    try:
        print(one_line(text), file=sys.stderr)
    except BaseException:  # noqa: BLE001 - stderr's own machinery failed: the raw descriptor
        try:
            os.write(2, (text.replace("\n", " ") + "\n").encode("utf-8", "replace"))
        except BaseException:  # noqa: BLE001 - nothing more can be said; the code still says it
            pass
    return EXIT_INTERNAL


def report(failure: Failure, exc: BaseException, *, json_out: bool, debug: bool) -> int:
    """Print ``failure`` (traceback first under ``debug``) and return its exit code."""
    if failure.kind == "pipe-closed":  # like a tool killed by SIGPIPE: nothing more to say, nowhere to say it
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # no second error when Python flushes stdout
        except OSError:
            pass
        return failure.code
    if debug and failure.kind == "internal":
        traceback.print_exception(exc, file=sys.stderr)
    print(failure.line(), file=sys.stderr)
    if json_out:
        print(json.dumps(failure.to_json()))
    return failure.code
