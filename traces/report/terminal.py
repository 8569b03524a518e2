"""Results for people in the terminal: check, prove and regress verdicts and their counterexamples.

Rich tables and text for the CLI, and :func:`path_text`, the plain-text counterexample of
the pytest plugin's assertion messages. Every function takes the result object; the model
is the one the result carries.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from deferral.checks.results import ALL_VIOLATED, Outcome, Path, SearchResult, never_enabled_warnings  # noqa: F401 (re-exported)
from deferral.model.concrete import Model, show_value

if TYPE_CHECKING:  # the prover (Z3) is imported only by those who prove
    from deferral.checks.symbolic.parametric import ParametricResult
    from deferral.checks.symbolic.prove import ProveResult


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
        label = f"{action.step.name}({', '.join(f'{k}={v}' for k, v in action.arg_dict().items())})"
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


#: What a reduced search of a variant rests on, said after "symmetry on" (nothing for a published protocol).
SYMMETRY_BASIS = {"proved": " (proved exact for this variant by Z3)",
                  "sampled": " (checked for this variant on sampled states: Z3 could not evaluate its steps)",
                  "checked": " (every state explored checked against every renaming: Z3 could not evaluate "
                             "this variant's steps)"}


def print_check(console: Console, result: SearchResult) -> None:
    """The verdict of a check: figures, each property, any counterexample, then the coverage table."""
    model = result.model
    assert model is not None, "a search result carries its model"
    sym = ("on" + SYMMETRY_BASIS.get(result.symmetry_basis or "", "")) if result.symmetry else "off"
    console.print(
        f"[bold]{result.variant}[/] at {result.bounds.short()}, symmetry {sym}: "
        f"{result.states:,} states, {result.transitions:,} transitions, depth {result.depth}, "
        f"{result.elapsed_s:.2f} s" + stop_note(result))
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
    table = coverage_table(result)
    if table is not None:
        console.print(table)


def stop_note(result: SearchResult) -> str:
    """Why the search ended before the last reachable state (empty for a complete one)."""
    if result.complete:
        return ""
    if result.stopped_by == ALL_VIOLATED:
        return (" (stopped once every property checked was violated, each counterexample a shortest one; "
                "--explore-all for the full count)")
    return f" [yellow](stopped by {result.stopped_by})[/]"


def path_text(model: Model, outcome: Outcome) -> str:
    """A counterexample as plain text (assertion messages): one line a step with the fields it
    changed, then what broke."""
    assert outcome.path is not None
    lines = [f"{outcome.name} violated in {model.protocol.name} at {model.bounds.short()}: "
             f"shortest counterexample, {outcome.length} steps"]
    previous = outcome.path[0][1]
    for n, (action, state) in enumerate(outcome.path[1:], start=1):
        assert action is not None
        changes = "  ".join(f"{k} {show_value(a, short=True)}->{show_value(b, short=True)}"
                            for k, (a, b) in model.layout.diff(previous, state).items())
        lines.append(f"  {n}. {action.label():<20} {changes}")
        previous = state
    final = outcome.path[-1][1]
    if outcome.kind == "invariant":
        lines += [f"  x {v.describe()}" for v in model.failing(model.protocol.prop(outcome.name), final)]
    else:
        lines.append("  x from the last state no state satisfying the goal is reachable")
    return "\n".join(lines)


def print_prove(out: Console, res: "ProveResult") -> None:
    """The verdict of a proof: proved with its invariant, violated with the counterexample, or
    unknown with the reason (and a counterexample to induction); then the route's log."""
    model = res.model
    assert model is not None, "a proof result carries its model"
    head = f"{res.variant} at {res.bounds.short()}, method {res.method}"
    if res.status == "proved":
        props = ", ".join(p.name for p in model.invariants)
        out.print(f"[green]proved[/green] {props}: {head} (route {res.route}, {res.elapsed_s:.2f} s)")
        if res.for_every:  # a parametric route: what was open, what was assumed concrete
            fixed = ", ".join(f"{k}={v}" for k, v in res.for_every["assumed_concrete"].items())
            out.print(f"proved for every number of {', '.join(res.for_every['for_every'])}; concrete: {fixed}",
                      markup=False, highlight=False)
        if res.route == "explicit-search" and res.exhaustive:  # a bounded proof: said as such
            out.print(res.exhaustive["verdict"], markup=False, highlight=False)
        if res.invariant:
            what = "clauses" if res.route == "pdr" else "lemma families"
            at = f", inferred by Spacer at {res.inferred_at.short()}" if res.inferred_at else ""
            if res.learned_at:
                at = (f", learned from the reachable states at {'; '.join(b.short() for b in res.learned_at)}"
                      "; variables of one sort distinct")
            if res.templates is not None:
                at += "; parameters of one sort distinct, frames f non-zero"
            out.print(f"inductive invariant ({len(res.invariant)} {what}{at}):")
            for line in res.invariant:
                out.print(f"  {line}", markup=False, highlight=False)
    elif res.status == "violated":
        out.print(f"[red]violated[/red] {res.prop}: {head} (route {res.route}, {res.elapsed_s:.2f} s)")
        if res.shortest:
            out.print(f"shortest counterexample, {res.depth} steps:")
        else:
            out.print(f"counterexample, {res.depth} steps ({escape(res.reason)}):")
        assert res.path is not None
        for n, (action, state) in enumerate(res.path[1:], 1):
            before = res.path[n - 1][1]
            changes = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in model.layout.diff(before, state).items())
            out.print(f"  {n}. {action.label() if action else ''}  {changes}", markup=False, highlight=False)
        for v in model.violations(res.path[-1][1]):
            out.print(f"  {v.describe()}", markup=False, highlight=False)
    else:
        out.print(f"[yellow]unknown[/yellow]: {escape(head)}: {escape(res.reason)} ({res.elapsed_s:.2f} s)")
        if res.cti and "before" in res.cti:
            out.print(f"counterexample to induction: step {res.cti['step']}", highlight=False)
            out.print(f"  breaks: {'; '.join(res.cti['broken'][:4])}", markup=False, highlight=False)
            out.print(f"  before: {json.dumps(res.cti['before'])}", markup=False, highlight=False)
            out.print(f"  after:  {json.dumps(res.cti['after'])}", markup=False, highlight=False)
            changes = ", ".join(f"{k}: {a} -> {b}" for k, (a, b) in res.cti["changed"].items())
            out.print(f"  changed: {changes}", markup=False, highlight=False)
    for line in res.log:
        out.print(f"  [dim]{escape(line)}[/dim]", highlight=False)


#: The style of each verdict, corpus outcome and change in regress's tables.
STYLE = {"holds": "green", "violated": "red", "unknown": "yellow", "absent": "dim",
         "passes": "green", "violates": "red", "cannot-replay": "yellow"}


def print_parametric(out: Console, res: "ParametricResult") -> None:
    """``prove --parametric``: what is uninterpreted, the lemmas, each obligation, the verdict; or the
    small instance's shortest counterexample that refutes it."""
    every = ", ".join(res.open_bounds)
    fixed = ", ".join(f"{k}={v}" for k, v in res.concrete.items())
    if res.refutation is not None:
        r = res.refutation
        out.print(f"parametric claim for {res.variant}: the invariants for every {every}, at {fixed}; "
                  f"explicit search at {r.bounds.short()} finds a counterexample", markup=False, highlight=False)
        print_outcome_path(out, r.model, r.outcome)
        out.print(f"{res.verdict} ({res.elapsed_s:.2f} s)", markup=False, highlight=False)
        return
    out.print(f"parametric proof of the invariants of {res.variant}: {every} are uninterpreted sorts "
              f"(any number; 0 of each distinguished); {fixed} concrete", markup=False, highlight=False)
    if res.lemmas or res.lemma_source:
        out.print(f"lemmas ({res.lemma_source or 'no source named'}, evaluated by the parametric backend):",
                  highlight=False)
    else:  # --no-shipped-lemmas and no route found any: the obligations below are the property's alone
        out.print("lemmas: none (no shipped lemmas, no lemma file, none learned that prove it)", highlight=False)
    for lem in res.lemmas:
        out.print(f"  {lem.show(res.concrete)}", markup=False, highlight=False)
    for name, why in res.dropped:
        out.print(f"  dropped by Houdini: {name} ({why})", markup=False, highlight=False)
    out.print("obligations (each unsat = proved):", highlight=False)
    for o in res.obligations:
        color = {"proved": "green", "cti": "red", "unknown": "yellow", "not tried": "dim"}[o.status]
        took = "" if o.status == "not tried" else f" ({o.elapsed_s:.2f} s)"
        out.print(f"  [{color}]{o.status}[/{color}] {escape(o.name)}{took}", highlight=False)
        if o.reason:
            out.print(f"      reason: {o.reason}", markup=False, highlight=False)
        if o.broken:
            out.print(f"      not preserved: {'; '.join(o.broken)}", markup=False, highlight=False)
    out.print(f"{res.verdict} ({res.elapsed_s:.2f} s)", markup=False, highlight=False)
    if any(o.model for o in res.obligations):
        out.print("(--json shows Z3's model of each counterexample to induction)", highlight=False)


def _cell(status: str) -> Text:
    return Text(status, style=STYLE.get(status, "default"))


def print_regress(console: Console, report: Any) -> None:
    """A regress report (checks/compare/regress.py): verdicts, corpus and behaviours side by
    side, the first lost property's counterexample, and the conclusion."""
    b, c = report.baseline, report.candidate
    console.print(f"[bold]baseline[/]  {b.name} ({b.source})")
    console.print(f"[bold]candidate[/] {c.name} ({c.source})"
                  + (": " + ", ".join(f"{x.kind} {x.what} {x.name}" for x in c.changes) if c.changes else ""))
    table = Table(title="Properties", title_justify="left")
    for col in ("property", "bounds", "baseline", "candidate", "change"):
        table.add_column(col, no_wrap=col != "property")
    for row in report.verdicts:
        cand = _cell(row.candidate)
        if row.candidate_length is not None:
            cand.append(f" ({row.candidate_length} steps)", style="dim")
        change = Text(row.change, style="bold red" if row.lost else ("green" if row.change == "fixed" else "dim"))
        table.add_row(row.prop, row.bounds.short(), _cell(row.baseline), cand, change)
    console.print(table)
    for bounds, why in report.skipped:
        console.print(f"[yellow]skipped {bounds.short()}:[/] {why}")
    if report.corpus:
        table = Table(title=f"Corpus ({len(report.corpus)} traces, steps replayed on each side)",
                      title_justify="left")
        for col in ("trace", "expected", "baseline", "candidate", "change"):
            table.add_column(col)
        for crow in report.corpus:
            exp = crow.expected or {}
            want = exp.get("outcome", "-") + (f" {exp['property']}" if exp.get("property") else "")
            style = "bold red" if crow.lost else ("yellow" if crow.changed else "dim")
            table.add_row(crow.name, want, _judged(crow.baseline), _judged(crow.candidate),
                          Text(crow.change, style=style))
        console.print(table)
    if report.behaviours:
        from deferral.traces.report.document import UNREDUCED_NOTE, states_shown

        table = Table(title="Behaviours (reachable states on the shared protocol variables, "
                            "up to VCPU symmetry)", title_justify="left")
        for col in ("bounds", "states base/cand", "behaviours base/cand", "added", "lost"):
            table.add_column(col, justify="right" if col != "bounds" else "left")
        for brow in report.behaviours:
            d = brow.diff
            if d is None:
                table.add_row(brow.bounds.short(), brow.skipped, "", "", "")
                continue
            table.add_row(d.bounds.short(), states_shown(d),
                          f"{d.baseline_behaviours:,}/{d.candidate_behaviours:,}",
                          Text(str(d.added), style="yellow" if d.added else "dim"),
                          Text(str(d.lost), style="yellow" if d.lost else "dim"))
        console.print(table)
        diffs = [r.diff for r in report.behaviours if r.diff is not None]
        if any(not (d.baseline_symmetric and d.candidate_symmetric) for d in diffs):
            console.print(UNREDUCED_NOTE, markup=False, highlight=False)
        added = [d for d in diffs if d.added_example]
        lost = [d for d in diffs if d.lost_example]
        if added:
            d = added[0]
            console.print(path_table(Model(c, d.bounds), d.added_example,
                                     f"A behaviour {c.name} adds at {d.bounds.short()}: shortest trace "
                                     f"({len(d.added_example) - 1} steps)"))
        elif diffs:
            console.print("[dim]The candidate adds no behaviour at these bounds.[/]")
        if lost:
            d = lost[0]
            console.print(path_table(Model(b, d.bounds), d.lost_example,
                                     f"A behaviour {c.name} loses at {d.bounds.short()}: shortest trace in "
                                     f"{b.name} ({len(d.lost_example) - 1} steps)"))
    if report.proofs:
        _print_proofs(console, report)
    for row in report.lost[:1]:
        if row.candidate_path is not None:
            model = report.searches[("candidate", row.bounds)].model
            console.print(path_table(model, row.candidate_path,
                                     f"{row.prop} lost at {row.bounds.short()}: shortest counterexample "
                                     f"in {c.name} ({row.candidate_length} steps)"))
    lost = [f"{r.prop} at {r.bounds.short()}" + (" (it has no such property)" if r.candidate == "absent" else "")
            for r in report.lost]
    lost += [f"corpus {r.name} ({r.candidate.describe()})" for r in report.corpus_lost]
    lost += [f"its proof for every N, V, F at {r.where}" for r in report.proofs_lost]
    unproved = [r.where for r in report.proofs if r.open]
    where = " and on the corpus" if report.corpus else ""  # --no-corpus: none was replayed
    if report.stopped_by:
        console.print(Text(f"? stopped by {report.stopped_by}: not checked: {', '.join(report.not_done)}",
                           style="yellow"))
    if lost:
        console.print(Text(f"✗ REGRESSION: {c.name} loses " + "; ".join(lost), style="bold red"))
    elif report.stopped_by:
        console.print(Text(f"? unknown: {c.name} keeps every property {b.name} has where it was checked, "
                           "but not everything was checked", style="yellow"))
    elif unproved:
        console.print(Text(f"? not proved: {c.name} keeps every property {b.name} has at these bounds{where}, "
                           f"but is not proved for every N, V, F at {'; '.join(unproved)}, where {b.name} "
                           "is (unknown: see why above)", style="yellow"))
    else:
        console.print(Text(f"✓ no regression: {c.name} keeps every property {b.name} has at these bounds{where}"
                           + (", and every proof for every N, V, F" if report.proofs else ""), style="green"))


def _print_proofs(console: Console, report: Any) -> None:
    """``regress --prove``: each side's proof for every N, V, F per Q, S; why a candidate's is not one."""
    table = Table(title="Proofs for every N, V, F (prove --parametric)", title_justify="left")
    for col in ("concrete", "baseline", "candidate", "change"):
        table.add_column(col, no_wrap=True)
    for row in report.proofs:
        cells = []
        for side in (row.baseline, row.candidate):
            cell = _cell(side.status)
            extra = f" at {side.refuted_at.short()}, {side.depth} steps" if side.refuted_at is not None else ""
            cell.append(f"{extra} ({side.elapsed_s:.1f} s)", style="dim")
            cells.append(cell)
        style = "bold red" if row.lost else "yellow" if row.open else "green" if row.change == "proved now" else "dim"
        table.add_row(row.where, *cells, Text(row.change, style=style))
    console.print(table)
    for row in report.proofs:
        if row.candidate.status != "proved":
            console.print(f"  candidate at {row.where}: {row.candidate.verdict}", markup=False, highlight=False)
    first = next((r.candidate.refutation for r in report.proofs_lost), None)  # a lost proof is a refutation
    if first is not None and not report.lost:  # the explicit rows did not show this counterexample
        print_outcome_path(console, first.model, first.outcome)


def _judged(j: Any) -> Text:
    text = _cell(j.outcome)
    if j.properties:
        text.append(" " + ", ".join(j.properties), style="dim")
    if j.outcome == "cannot-replay":
        text.append(f" ({j.brief_reason.replace(' in the model here', '')})", style="dim")
    return text
