"""Counterexamples and results for people: rich tables in the terminal."""

from __future__ import annotations


from rich.console import Console
from rich.table import Table
from rich.text import Text

from deferral.checks.results import Outcome, Path, SearchResult
from deferral.model.concrete import Model, show_value


def path_table(model: Model, path: Path, title: str, first: int = 1) -> Table:
    """One row a step: the step and its arguments, then only the fields it changed.

    ``first`` is the number of the step ``path[1]`` (a path cut from a longer one)."""
    table = Table(title=title, title_justify="left", show_lines=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("step", style="bold cyan", no_wrap=True)
    table.add_column("changes")
    previous = path[0][1]
    for number, (action, state) in enumerate(path[1:], start=first):
        assert action is not None
        changes = model.layout.diff(previous, state)
        text = Text()
        for n, (field, (old, new)) in enumerate(changes.items()):
            if n:
                text.append("  ")
            text.append(f"{field} ", style="default")
            text.append(show_value(old, short=True), style="dim")
            text.append("→", style="dim")
            text.append(show_value(new, short=True), style="bold yellow")
        if not changes:
            text.append("(no change)", style="dim")
        names = [name for name, _ in action.step.params]
        label = f"{action.step.name}({', '.join(f'{k}={v}' for k, v in zip(names, action.args))})"
        table.add_row(str(number), label, text)
        previous = state
    return table


def print_outcome_path(console: Console, model: Model, outcome: Outcome) -> None:
    assert outcome.path is not None
    steps = outcome.length
    title = f"{outcome.name} violated: shortest counterexample, {steps} step{'s' * (steps != 1)}"
    console.print(path_table(model, outcome.path, title))
    final = outcome.path[-1][1]
    if outcome.kind == "invariant":
        prop = model.protocol.prop(outcome.name)
        for violation in model.failing(prop, final):
            console.print(Text.assemble(("✗ ", "bold red"), (violation.describe(), "red")))
    else:
        prop = model.protocol.prop(outcome.name)
        waiting = "; ".join(v.describe() for v in model.failing(prop, final))
        console.print(Text.assemble(("✗ ", "bold red"), (
            f"{outcome.name}: from this state no state where the goal holds is reachable, "
            f"whatever runs next ({waiting})", "red")))


def coverage_table(result: SearchResult) -> Table | None:
    """Per step: transitions produced and states enabling it; per property: states checked."""
    cov = result.coverage
    if cov is None:
        return None
    unit = "orbits" if result.symmetry else "states"
    table = Table(title=f"Coverage (counts over stored {unit})", title_justify="left")
    table.add_column("step", style="cyan", no_wrap=True)
    table.add_column("transitions", justify="right")
    table.add_column("enabled in", justify="right")
    for name, n in cov.enabled_in.items():
        style = "bold yellow" if n == 0 else ""
        table.add_row(name, Text(f"{cov.transitions[name]:,}", style=style), Text(f"{n:,}", style=style))
    for name, n in cov.checked.items():
        table.add_row(Text(f"property {name}", style="default"), "", Text(f"checked in {n:,}"))
    return table


def never_enabled_warnings(result: SearchResult) -> list[str]:
    """One warning per step that no explored state enables."""
    if result.coverage is None:
        return []
    where = "any reachable state" if result.complete else f"the {result.states:,} states explored"
    return [f"step {name} is never enabled in {where} at {result.bounds.short()}: a step that never fires "
            "checks nothing (a bug in the variant, or bounds too small for it)"
            for name in result.coverage.never_enabled()]


def print_result(console: Console, model: Model, result: SearchResult) -> None:
    """The verdict of a check: figures, each property, and any counterexample."""
    sym = "on" if result.symmetry else "off"
    console.print(
        f"[bold]{result.variant}[/] at {result.bounds.short()}, symmetry {sym}: "
        f"{result.states:,} states, {result.transitions:,} transitions, depth {result.depth}, "
        f"{result.elapsed_s:.2f} s" + ("" if result.complete else f" [yellow](stopped by {result.stopped_by})[/]"))
    for outcome in result.outcomes:
        if outcome.status == "violated":
            print_outcome_path(console, model, outcome)
    for outcome in result.outcomes:
        style = {"holds": "green", "violated": "bold red", "unknown": "yellow"}[outcome.status]
        extra = ""
        if outcome.status == "violated":
            extra = f" ({outcome.length} steps" + (f", trace {outcome.trace_file}" if outcome.trace_file else "") + ")"
        elif outcome.status == "unknown":
            extra = f" within {result.states:,} states (the search was stopped by {result.stopped_by})"
        console.print(f"  {outcome.name} \\[{outcome.kind}]: [{style}]{outcome.status}[/]{extra}")
