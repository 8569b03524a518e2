"""``deferral``: the command line. Each subcommand lives in its own module of this package.

A subcommand module defines ``register(subparsers)``, which adds its parser and sets
``func`` (a function of the parsed arguments returning the exit code) as a default.
"""

from __future__ import annotations

import argparse
import importlib
from importlib import metadata
import sys
from typing import Sequence

from deferral.cli.common import (EXIT_USAGE, ArgumentParser, UsageError, declare_bounds, protocol_from,
                                 variant_file_in)
from deferral.model.context import StepError

#: Subcommand modules, in the order ``deferral --help`` lists them.
COMMANDS = ("check", "simulate", "replay", "prove", "engine", "conform", "regress", "variants")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="deferral",
        description="Model checker for the SMP deferral protocol of paravirtualized shadow paging.",
    )
    parser.add_argument("--version", action="version", version=f"deferral {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"deferral.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"deferral.cli.{name}":
                continue  # a command not built yet
            raise
        module.register(sub)
    return parser


def version() -> str:
    """The installed package's version."""
    try:
        return metadata.version("deferral")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = build_parser()
        path = variant_file_in(argv)
        if path is not None:  # a variant file may declare bounds of its own: add their flags
            declare_bounds(parser, protocol_from(argparse.Namespace(variant_file=path)).bound_decls)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return EXIT_USAGE
        return int(args.func(args))
    except UsageError as exc:
        print(f"deferral: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StepError as exc:  # a user's variant misbehaved while it ran
        print(f"deferral: error in the protocol: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("deferral: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
