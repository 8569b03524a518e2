"""Flags and error handling shared by every ``deferral`` subcommand.

Every command that takes a protocol takes the same bound and variant flags, and every
command turns bad input into one line on stderr and exit code 2 (:class:`UsageError`).
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from deferral.model.bounds import LIMITS, Bounds, BoundsError
from deferral.model.protocol import Protocol
from deferral.model.variants import PUBLISHED, VariantError, get_variant, load_variant_file

EXIT_OK, EXIT_VIOLATED, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


#: The letter each bound has in the docs and the help (``--vcpus N --pages V ...``).
BOUND_LETTERS = {"vcpus": "N", "pages": "V", "frames": "F", "queue": "Q", "spaces": "S"}


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


def add_bounds(parser: argparse.ArgumentParser, defaults: Bounds = Bounds()) -> None:
    group = parser.add_argument_group("bounds")
    for name, (flag, low, high) in LIMITS.items():
        group.add_argument(flag, dest=name, type=int, default=getattr(defaults, name),
                           metavar=BOUND_LETTERS.get(name, name[0].upper()),
                           help=f"{name} ({low}..{high}, default {getattr(defaults, name)})")


def add_variant(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--variant", default="reference", metavar="NAME",
                       help=f"published variant: {', '.join(PUBLISHED)} (default reference)")
    group.add_argument("--variant-file", metavar="PATH", help="a Python file defining VARIANT")


def bounds_from(args: argparse.Namespace) -> Bounds:
    try:
        return Bounds(args.vcpus, args.pages, args.frames, args.queue)
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
