"""Flags and error handling shared by every ``deferral`` subcommand.

Every command that takes a protocol takes the same bound and variant flags, and every
command turns bad input into one line on stderr and exit code 2 (:class:`UsageError`).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from deferral.model.bounds import Bound, Bounds, BoundsError
from deferral.model.protocol import Protocol
from deferral.model.reference import REFERENCE
from deferral.model.variants import PUBLISHED, VariantError, get_variant, load_variant_file

EXIT_OK, EXIT_VIOLATED, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3


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
        raise UsageError(f"{self.prog}: {message}")


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


def variant_file_in(argv: list[str]) -> str | None:
    """The ``--variant-file`` argument in a command line, if any (read before parsing)."""
    for n, arg in enumerate(argv):
        if arg == "--variant-file" and n + 1 < len(argv):
            return argv[n + 1]
        if arg.startswith("--variant-file="):
            return arg.split("=", 1)[1]
    return None


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


def protocol_from(args: argparse.Namespace) -> Protocol:
    try:
        if getattr(args, "variant_file", None):
            return load_variant_file(args.variant_file)
        return get_variant(args.variant)
    except VariantError as exc:
        raise UsageError(str(exc)) from None


def positive(kind: type) -> Any:
    """An argparse type: a positive int or float."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
        return value

    return parse
