"""A live progress display for long searches (stderr), silent for short ones and in CI logs."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

if TYPE_CHECKING:
    from rich.live import Live
    from rich.text import Text

from deferral.checks.results import Progress, ProgressFn
from deferral.cli.limits import TimeLimitReached


def progress_line(label: str, p: Progress) -> str:
    """One line of progress: states, depth, frontier, states/s, seconds, spilled bytes, the
    level's phase and the last checkpoint."""
    rate = p.states / p.elapsed_s if p.elapsed_s > 0 else 0.0
    return (f"{label}: {p.states:,} states  depth {p.depth}  frontier {p.frontier:,}  "
            f"{rate:,.0f} states/s  {p.elapsed_s:.0f} s"
            + (f"  spilled {p.spilled / (1 << 20):,.0f} MiB to disk" if p.spilled else "")
            + (f"  ({p.phase})" if p.phase else "")
            + (f"  [checkpoint: {p.checkpoint}]" if p.checkpoint else ""))


@contextmanager
def live_progress(label: str, delay_s: float = 1.0, plain: bool = False) -> Iterator[ProgressFn]:
    """Yield a progress callback that shows states, depth, frontier and states/s on stderr.

    Nothing is shown for the first ``delay_s`` seconds, so short runs print no noise; on a
    stderr that is not a terminal, a plain line is printed at most every 10 seconds. With
    ``plain`` (``--json``: stdout is for the JSON object) only those plain lines are printed,
    without loading rich, so a long search in CI still shows it is alive.
    """
    start = time.monotonic()
    last_plain = [0.0]
    if plain:
        def update_plain(p: Progress) -> None:
            now = time.monotonic()
            if now - start >= delay_s and now - last_plain[0] >= 10:
                last_plain[0] = now
                print(progress_line(label, p), file=sys.stderr, flush=True)

        yield update_plain
        return
    from rich.console import Console  # only here: --json and piped runs do not load rich (30 ms)
    from rich.live import Live
    from rich.text import Text

    console = Console(stderr=True)
    live: Live | None = None

    def line(p: Progress) -> Text:
        return Text(progress_line(label, p), style="cyan")

    def update(p: Progress) -> None:
        nonlocal live
        now = time.monotonic()
        if now - start < delay_s:
            return
        if console.is_terminal:
            if live is None:
                live = Live(line(p), console=console, refresh_per_second=4, transient=True)
                live.start()
            live.update(line(p))
        elif now - last_plain[0] >= 10:
            last_plain[0] = now
            console.print(line(p))

    try:
        yield update
    finally:
        if live is not None:
            live.stop()


def plain_notes(label: str, delay_s: float = 10.0, every_s: float = 10.0) -> Callable[[str], None]:
    """A note callback for long work off a terminal (``--json``, CI logs): the latest note as one
    plain stderr line, none in the first ``delay_s`` seconds and at most one every ``every_s``."""
    start = time.monotonic()
    last = [start - every_s]

    def note(text: str) -> None:
        now = time.monotonic()
        if now - start >= delay_s and now - last[0] >= every_s:
            last[0] = now
            print(f"{label}, {now - start:.0f} s: {text}", file=sys.stderr, flush=True)

    return note


@contextmanager
def route_notes(label: str, plain: bool, err: Any) -> Iterator[Callable[[str], None]]:
    """A note callback for a proof's routes: on a terminal a live status line on ``err`` (a rich
    Console) showing the latest note, else (``plain``) :func:`plain_notes`. The command's hard time
    limit reached inside says the latest note as what was running (where no frame of a user's file
    says it): its one line had no reason at all."""
    latest: list[str] = []

    def keeping(show: Callable[[str], None]) -> Callable[[str], None]:
        def note(text: str) -> None:
            latest[:] = [text]
            show(text)
        return note

    try:
        if plain:
            yield keeping(plain_notes(label))
            return
        with err.status(label) as status:
            yield keeping(status.update)
    except TimeLimitReached as exc:
        if not exc.where and latest:
            exc.where = f"{latest[0][:200]} (its latest note)"
        raise
