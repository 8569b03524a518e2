"""Flags and error handling shared by every ``deferral`` subcommand.

Every command that takes a protocol takes the same bound and variant flags, and every
command turns bad input into one line on stderr and exit code 2 (:class:`UsageError`).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import time
from contextlib import contextmanager
from typing import Any, Iterator

from deferral.model.bounds import Bound, Bounds, BoundsError
from deferral.model.context import StepError
from deferral.model.protocol import Protocol
from deferral.model.reference import REFERENCE
from deferral.model.variants import PUBLISHED, VariantError, get_variant, load_variant_namespace

from deferral.cli.exits import (EXIT_DIVERGED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK,  # noqa: F401 - re-exported
                                EXIT_PIPE_CLOSED, EXIT_UNKNOWN, EXIT_USAGE, EXIT_VIOLATED)

#: The largest time limit a flag takes, in seconds (about 11 days): beyond is a typo.
MAX_SECONDS = 1e6


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


def plain_text(text: str) -> str:
    """Help text without reST markup: ``x`` and :class:`~a.B` become x and B."""
    text = re.sub(r":[a-z]+:`~?(?:[\w.]*\.)?([^`]+)`", r"\1", text)
    return re.sub(r"``([^`]+)``", r"\1", text)


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a bad flag raises UsageError instead of exiting by itself, and help
    texts taken from docstrings are shown without their reST markup."""

    def format_help(self) -> str:
        return plain_text(super().format_help())

    def format_usage(self) -> str:
        return plain_text(super().format_usage())

    def error(self, message: str) -> None:  # type: ignore[override]
        where = self.prog.removeprefix("deferral").strip()  # every error line starts "deferral: " already
        raise UsageError(f"{where}: {message}" if where else message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            import sys

            sys.stderr.write(message)
        raise ParserExit(status)


class ParserExit(Exception):
    """``--help`` was answered: exit with this status (never confused with a variant's sys.exit)."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


def add_bounds(parser: argparse.ArgumentParser, decls: tuple[Bound, ...] = REFERENCE.bound_decls) -> None:
    """One flag per declared bound (``--vcpus N`` ...), in a group titled "bounds"."""
    group = next((g for g in parser._action_groups if g.title == "bounds"), None)
    if group is None:
        group = parser.add_argument_group("bounds")
    present = set(parser._option_string_actions)
    for d in decls:
        if d.flag in present:
            continue
        group.add_argument(d.flag, dest=d.name, type=int, default=d.default, metavar=d.letter,
                           help=f"{d.doc or d.name} ({d.low}..{d.high}, default {d.default})")


def declare_bounds(parser: argparse.ArgumentParser, decls: tuple[Bound, ...]) -> None:
    """Add the flags of bounds a variant file declares to every subcommand that takes bounds."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                if "--vcpus" in sub._option_string_actions:
                    add_bounds(sub, decls)


def flag_in(argv: list[str], flag: str) -> str | None:
    """The value of ``flag`` in a command line, if any (read before parsing)."""
    for n, arg in enumerate(argv):
        if arg == flag and n + 1 < len(argv):
            return argv[n + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def variant_file_in(argv: list[str]) -> str | None:
    """The ``--variant-file`` argument in a command line, if any (read before parsing)."""
    return flag_in(argv, "--variant-file")


#: The flag of each command's hard time limit.
LIMIT_FLAGS = {"check": "--time-limit", "replay": "--time-limit", "regress": "--time-limit", "prove": "--timeout"}


def limit_in(argv: list[str]) -> tuple[str, float] | None:
    """(command, seconds) of the time limit a command line gives, read before parsing (so that
    loading a variant file counts against it); None without one, or for a value the parser
    will refuse."""
    command = next((a for a in argv if not a.startswith("-")), None)
    flag = LIMIT_FLAGS.get(command or "")
    text = flag_in(argv, flag) if flag else None
    try:
        value = float(text) if text is not None else math.nan
    except ValueError:
        return None
    if not (0 < value <= MAX_SECONDS):  # nan too
        return None
    return str(command), value


def add_variant(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--variant", default="reference", metavar="NAME",
                       help=f"published variant: {', '.join(PUBLISHED)} (default reference)")
    group.add_argument("--variant-file", metavar="PATH", help="a Python file defining VARIANT")


def bounds_from(args: argparse.Namespace, protocol: Protocol | None = None) -> Bounds:
    """The bounds the flags give, under the declarations of the chosen protocol."""
    protocol = protocol or protocol_from(args)
    values = {d.name: getattr(args, d.name) for d in protocol.bound_decls if hasattr(args, d.name)}
    try:
        return protocol.bounds(**values)
    except BoundsError as exc:
        raise UsageError(str(exc)) from None


#: Seconds a variant file may take to load (it only defines functions and VARIANT).
LOAD_LIMIT_S = 10.0


def time_left(args: argparse.Namespace, limit: float | None) -> float | None:
    """What is left of the command's time limit ``limit``: it counts from the start of the command
    (``args.started``, set by main), loading the variant file included, like its hard deadline."""
    started = getattr(args, "started", None)
    if limit is None or started is None:
        return limit
    return max(0.001, limit - (time.monotonic() - started))


def load_variant(spec: str, *, is_file: bool = True) -> Protocol:
    """A published variant by name, or (``is_file``) the VARIANT of a user's file, loaded under
    a deadline: a file that loops or exits while it loads is bad input, never a hang or a verdict."""
    if not is_file:
        try:
            return get_variant(spec)
        except VariantError as exc:
            raise UsageError(str(exc)) from None
    return load_variant_names(spec)[0]


def load_variant_names(spec: str) -> tuple[Protocol, dict[str, Any]]:
    """A user's variant file, loaded once as :func:`load_variant` says: its VARIANT and its
    names (``ENGINE`` for the engine's commands)."""
    from deferral.cli.limits import TimeLimitReached, deadline

    from deferral.cli.contain import TrialFailed, trial

    what = f"variant file {spec}"
    try:
        if not spec.strip():
            raise UsageError("--variant-file: an empty path")
        with deadline(LOAD_LIMIT_S, what):
            trial(spec, LOAD_LIMIT_S)  # a file that ends its process does it in a child
            return load_variant_namespace(spec)
    except (VariantError, TrialFailed) as exc:
        raise UsageError(str(exc)) from None
    except TimeLimitReached as exc:
        if exc.what != what:  # an enclosing limit (--time-limit): that one is reported
            raise
        raise UsageError(f"{what}: does not finish loading within {LOAD_LIMIT_S:g} s") from None


def protocol_from(args: argparse.Namespace) -> Protocol:
    """The protocol the flags choose; a variant file the command line loaded already
    (``args.loaded_variant``, set by main: its bounds' flags needed it) is not loaded again."""
    if getattr(args, "variant_file", None) is not None:  # "" too: a bad path, not "no file"
        loaded = getattr(args, "loaded_variant", None)
        if loaded is not None and loaded[0] == args.variant_file:
            return loaded[1]
        return load_variant(args.variant_file)
    return load_variant(getattr(args, "variant", None) or "reference", is_file=False)


@contextmanager
def naming_source(*protocols: Protocol) -> Iterator[None]:
    """Re-raise a StepError of a user's variant with its file named, where the message lacks it."""
    try:
        yield
    except StepError as exc:
        text = str(exc)
        files = [p.source for p in protocols if p.source not in ("", "built-in") and p.source not in text]
        if not files or any(p.source in text for p in protocols if p.source not in ("", "built-in")):
            raise
        raise StepError(f"{text} (variant file {files[0] if len(files) == 1 else ' or '.join(files)})") from None


#: The attributes that name a file the command reads (a variant file, a trace): never an output.
INPUT_FILES = ("variant_file", "file", "baseline", "candidate")


def check_outputs(args: argparse.Namespace, *flags: str) -> None:
    """Every output path among ``flags`` (attribute names) can take a file: checked before the work.
    Two outputs naming one file (one would replace the other) and an output naming a file the
    command reads (``--html`` over the variant file or the trace replayed) are bad input too."""
    from deferral.traces.files import OutputPathError, check_output_path

    seen: dict[str, str] = {}
    inputs = {_same_file_key(v): v for name in INPUT_FILES
              if isinstance(v := getattr(args, name, None), str) and os.path.isfile(v)}
    for name in flags:
        value = getattr(args, name, None)
        if value is not None:
            flag = "--" + name.replace("_", "-")
            try:
                check_output_path(value, flag)
            except OutputPathError as exc:
                raise UsageError(str(exc)) from None
            key = _same_file_key(value)
            if key in seen:
                raise UsageError(f"{seen[key]} and {flag} name the same file {value}: give each its own")
            if key in inputs:
                raise UsageError(f"{flag} {value}: is an input of this command ({inputs[key]}); "
                                 "writing there would replace it")
            seen[key] = flag


def _same_file_key(path: str) -> str:
    """One key for every spelling of a path (relative, with ./ or .., through symlinks)."""
    return os.path.realpath(path)


def console(*, stderr: bool = False, width: int | None = None) -> Any:
    """A rich Console; off a terminal (CI logs, pipes) lines are not wrapped at 80 columns."""
    from rich.console import Console

    out = Console(stderr=stderr, width=width)
    if not out.is_terminal and width is None:
        out = Console(stderr=stderr, width=200, soft_wrap=True)
    return out


def positive(kind: type, most: float | None = None) -> Any:
    """An argparse type: a positive int or a positive, finite float (at most ``most``)."""

    def parse(text: str) -> Any:
        shown = text if len(text) <= 40 else text[:37] + "..."
        try:
            value = kind(text)
        except (ValueError, OverflowError):
            raise argparse.ArgumentTypeError(f"expected a positive number, got {shown!r}") from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite positive number, got {shown!r}")
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {shown!r}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"at most {most:g}, got {shown!r}")
        return value

    return parse


def seconds() -> Any:
    """An argparse type for a time limit: positive, finite, at most :data:`MAX_SECONDS`."""
    return positive(float, MAX_SECONDS)
