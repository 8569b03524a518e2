"""``deferral``: the command line. Each subcommand lives in its own module of this package.

A subcommand module defines ``register(subparsers)``, which adds its parser and sets
``func`` (a function of the parsed arguments returning the exit code) as a default.
Whatever ends a command other than its result is turned into an exit code and one line
by :mod:`deferral.cli.errors` (``--debug``, anywhere on the line, adds the traceback).
"""

from __future__ import annotations

import argparse
import importlib
import signal
import sys
import time
from typing import Sequence

from deferral.cli.common import (ArgumentParser, ParserExit, UsageError, declare_bounds, limit_in, load_variant_names,
                                 variant_file_in)
from deferral.cli.contain import guarded_exits
from deferral.cli.errors import classify, last_resort, report
from deferral.cli.limits import deadline, grace_for
from deferral.cli.stuck import STUCK_NOTE, ctrl_c_is_pythons, signals_reach_native_code
from deferral.cli.terminate import Terminated, die_as_terminated, sigterm_unwinds

#: Subcommand modules, in the order ``deferral --help`` lists them.
COMMANDS = ("check", "simulate", "replay", "prove", "engine", "conform", "regress", "variants")


def build_parser(only: str | None = None) -> ArgumentParser:
    """The parser of every command, or of command ``only`` alone (its module is the only
    one imported: ``check`` then runs without loading z3 and the engine, about 10 MiB)."""
    parser = ArgumentParser(
        prog="deferral",
        description="Model checker for the SMP deferral protocol of paravirtualized shadow paging. "
                    "Exit codes: 0 holds/proved, 1 violated, 2 bad input, 3 unknown or a limit, "
                    "4 replay divergence, 70 internal error, 130 interrupted, 143 terminated (SIGTERM).",
    )
    parser.add_argument("--debug", action="store_true",
                        help="on an internal error, print the traceback (also accepted after the command)")
    parser.add_argument("--version", action=_Version, nargs=0, help="show the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=ArgumentParser)
    for name in (only,) if only in COMMANDS else COMMANDS:
        try:
            module = importlib.import_module(f"deferral.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"deferral.cli.{name}":
                continue  # a command not built yet
            raise
        module.register(sub)
    return parser


def _split_debug(argv: list[str]) -> tuple[list[str], bool]:
    """``argv`` without ``--debug`` (before any ``--``), and whether it was there."""
    end = argv.index("--") if "--" in argv else len(argv)
    kept = [a for a in argv[:end] if a != "--debug"] + argv[end:]
    return kept, len(kept) != len(argv)


class _Version(argparse.Action):
    """``--version``: the installed version, looked up only when asked (importlib.metadata
    takes about 40 ms to import: every command would pay it)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        print(f"deferral {version()}")
        parser.exit()


def version() -> str:
    """The installed package's version."""
    from importlib import metadata

    try:
        return metadata.version("deferral")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command of ``argv`` and return its exit code; without ``argv``, as the program
    (the ``deferral`` script, ``python -m deferral.cli``), run ``sys.argv``'s and end the
    process with its code at once (see :func:`exit_now`)."""
    if argv is None:
        repeatable_hashing(sys.argv[1:])
    code = _main(argv)
    if argv is None:
        exit_now(code)
    return code


#: Commands whose work depends on the order in which Python iterates sets and dicts of strings
#: (the lemma learners: which counterexample, core or family comes first), which string hashing's
#: per-process seed changes from run to run.
HASH_ORDER_SENSITIVE = ("prove",)


def repeatable_hashing(args: list[str]) -> None:
    """Make ``prove`` repeat: where PYTHONHASHSEED is not set, run the command again in this process
    (exec: same process id, signals and exit code) with PYTHONHASHSEED=0, so that the same command
    learns the same lemmas on every run (with a random seed, one learned variant was proved in 12-17 s
    under four seeds and unknown at 60 s under two, PROVE.md, 5 Dec, evening). A seed the caller set,
    ``random`` included, is kept. Costs one interpreter start (about 0.1 s)."""
    import os

    if os.environ.get("PYTHONHASHSEED") is not None:
        return
    command = next((a for a in args if not a.startswith("-")), None)
    if command not in HASH_ORDER_SENSITIVE:
        return
    try:
        os.execve(sys.executable, [sys.executable, "-m", "deferral.cli", *args],
                  dict(os.environ, PYTHONHASHSEED="0"))
    except OSError:
        return  # cannot start the interpreter again: run with this process's seed


def exit_now(code: int) -> None:
    """End the process with ``code`` without tearing the interpreter down: the exit handlers
    run and the output is flushed, then ``os._exit``. Freeing every module and object at the
    end of a small search took 8-10% of its whole process's CPU (1,2,1,1 with two spaces:
    about 25 ms of 0.29 s). Returns (the caller exits as usual) while a thread that is not a
    daemon runs, or when flushing the output fails."""
    import atexit
    import os
    import threading

    if any(not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        return
    try:
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # noqa: BLE001 - e.g. a closed pipe: the usual exit reports it
        return
    os._exit(code)


def _collect_as_usual() -> None:
    """Put back the collector's thresholds (raised while the modules load, see
    :data:`deferral.cli.GC_THRESHOLDS`); what is loaded so far is moved out of its sight."""
    import gc

    from deferral import cli
    from deferral.cli import RAISED_GC_THRESHOLD

    if gc.get_threshold()[0] == RAISED_GC_THRESHOLD:  # once: later commands in this process find it done
        gc.freeze()
        gc.set_threshold(*cli.GC_THRESHOLDS)


def _main(argv: Sequence[str] | None) -> int:
    argv, debug = _split_debug(list(sys.argv[1:] if argv is None else argv))
    json_out = "--json" in argv
    started = time.monotonic()
    limit = limit_in(argv)
    seconds = limit[1] if limit else None

    def stuck(signum: int) -> None:
        """The report of a command a signal ends while it is stuck in native code (cli/stuck.py)."""
        exc: BaseException = Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        failure = classify(exc)
        failure = type(failure)(failure.code, failure.kind, f"{failure.message}: {STUCK_NOTE}")
        report(failure, exc, json_out=json_out, debug=False)
        sys.stdout.flush()
        sys.stderr.flush()

    try:
        # the whole command, loading a variant file included, runs inside its time limit, and
        # a variant's os._exit or kill of this process is an error of the variant (cli/contain.py);
        # Ctrl-C and SIGTERM end it even inside a long Z3 query (cli/stuck.py)
        with sigterm_unwinds(), signals_reach_native_code(stuck), \
                deadline(seconds, limit[0] if limit else "", grace=grace_for(seconds or 0)), guarded_exits():
            parser = build_parser(next((a for a in argv if not a.startswith("-")), None))
            _collect_as_usual()  # the command's modules are loaded
            path = variant_file_in(argv)
            loaded = None
            if path is not None:  # a variant file may declare bounds of its own: add their flags
                loaded = (path, *load_variant_names(path))  # (path, VARIANT, the file's names)
                declare_bounds(parser, loaded[1].bound_decls)
            try:
                args = parser.parse_args(argv)
            except ParserExit as done:  # --help
                return done.status
            json_out = bool(getattr(args, "json", False))
            if not getattr(args, "func", None):
                raise UsageError(f"say which command: {', '.join(COMMANDS)} (deferral --help tells more)")
            if args.command in ("prove", "regress") or loaded is not None or "z3" in sys.modules:
                # Ctrl-C inside a Z3 query (prove, and the symmetry guard's proof of a variant file's
                # symmetry in every search): interrupted (130), not an unknown the command goes on from
                ctrl_c_is_pythons()
            args.loaded_variant = loaded  # loaded once: the command reads it from here
            args.started = started  # the time limit counts from here (common.time_left)
            return int(args.func(args))
    except BaseException as exc:  # noqa: BLE001 - every ending gets a documented exit code
        try:
            code = report(classify(exc), exc, json_out=json_out, debug=debug)
        except BaseException as failed:  # noqa: BLE001 - a failed report must not exit 1 ("violated")
            code = last_resort(exc, failed)
        if isinstance(exc, Terminated):
            die_as_terminated()  # after the clean-up and the report: the sender sees SIGTERM
        return code


if __name__ == "__main__":
    sys.exit(main())
