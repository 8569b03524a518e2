"""The protocol page, docs/protocol.md, generated from the model so that it never drifts.

The tables (bounds, state, steps, procedures, properties, variants, reference counts)
and every step's code come from :mod:`deferral.model`; only the connecting prose is
written here. Regenerate with ``python -m deferral.cli.describe --write docs/protocol.md``;
``--check FILE`` exits 1 when FILE differs from what the model says (a test runs it).
"""

from __future__ import annotations

import argparse
import inspect
import sys
import textwrap
from pathlib import Path
from typing import Callable, Sequence

from deferral.model.expected import REFERENCE_COUNTS, VERDICTS
from deferral.model.protocol import Protocol
from deferral.model.reference import REFERENCE
from deferral.model.schema import BOOL, FRAME, PAGE, VCPU, VCPU_OR_NONE, Domain, Enum, Queue, Range, Var
from deferral.model.variants import PUBLISHED

def domain_text(domain: Domain) -> str:
    """A domain in the page's words: ``0..F``, ``VCPU or none``, ``Idle, Inv, ...``."""
    if domain is BOOL:
        return "bool"
    if domain is FRAME:
        return "0..F"
    if domain is PAGE:
        return "page 0..V-1"
    if domain is VCPU:
        return "VCPU 0..N-1"
    if domain is VCPU_OR_NONE:
        return "VCPU or none"
    if isinstance(domain, Enum):
        return ", ".join(domain.names)
    if isinstance(domain, Range):
        return f"{domain.low}..{domain.high}"
    return domain.name


def _indexed_by(var: Var) -> str:
    return " × ".join(sort.name.upper() for sort in var.index) or "-"


def state_table(protocol: Protocol) -> list[str]:
    rows = ["| variable | indexed by | values | meaning |", "|---|---|---|---|"]
    for var in protocol.variables:
        values = domain_text(var.domain)
        if isinstance(var, Queue):
            cap = var.capacity if isinstance(var.capacity, str) else str(var.capacity)
            cap = {"queue": "Q"}.get(cap, cap)
            values = f"sequence of {domain_text(var.domain)}, length 0..{cap}"
        meaning = ("ghost: " if var.ghost else "") + var.doc
        rows.append(f"| `{var.name}` | {_indexed_by(var)} | {values} | {meaning} |")
    return rows


def _source(fn: Callable[..., object]) -> str:
    try:
        return textwrap.dedent(inspect.getsource(fn)).rstrip()
    except (OSError, TypeError):
        return f"# source of {getattr(fn, '__name__', fn)} not available"


def _params(params: Sequence[tuple[str, Domain]]) -> str:
    return ", ".join(f"{name}: {domain_text(d)}" for name, d in params)


def steps_section(protocol: Protocol) -> list[str]:
    out = ["| step | parameters | what it does |", "|---|---|---|"]
    for st in protocol.steps:
        names = ",".join(n for n, _ in st.params)
        out.append(f"| `{st.name}({names})` | {_params(st.params)} | {st.doc} |")
    out.append("")
    out.append("The code of each step, as the model states it (the decorator carries the guard):")
    for st in protocol.steps:
        out += ["", f"#### `{st.name}`", "", "```python", _source(st.effect), "```"]
    out += ["", "### Procedures", "",
            "Helpers the steps call as `s.proc.NAME(...)`; a variant may replace one.", ""]
    out += ["| procedure | what it does |", "|---|---|"]
    out += [f"| `{p.name}` | {p.doc} |" for p in protocol.procedures]
    for p in protocol.procedures:
        out += ["", "```python", _source(p.fn), "```"]
    return out


def properties_section(protocol: Protocol) -> list[str]:
    out = ["| property | kind | over | meaning |", "|---|---|---|---|"]
    for prop in protocol.properties:
        kind = "invariant (every reachable state)" if prop.kind == "invariant" else "liveness (AG EF)"
        out.append(f"| `{prop.name}` | {kind} | {_params(prop.params)} | {prop.doc} |")
    for prop in protocol.properties:
        out += ["", "```python", _source(prop.predicate), "```"]
    return out


def variants_section() -> list[str]:
    out = ["| variant | change (from the model) | what it changes | verdict the tests check |",
           "|---|---|---|---|"]
    for name, variant in PUBLISHED.items():
        changes = "; ".join(f"{c.kind} {c.what} `{c.name}`" for c in variant.changes) or "none"
        doc = variant.doc if name != "reference" else "the protocol itself"
        if name in VERDICTS:
            bounds, prop, length = VERDICTS[name]
            at = "N={},V={},F={},Q={}".format(*bounds)
            verdict = f"`{prop}` violated at {at}" + (f", shortest counterexample {length} steps"
                                                      if length is not None else "")
        else:
            verdict = "both properties hold"
        out.append(f"| `{name}` | {changes} | {doc} | {verdict} |")
    return out


def counts_table() -> list[str]:
    out = ["| N | V | F | Q | reachable states | up to VCPU symmetry |", "|---|---|---|---|---|---|"]
    for (n, v, f, q), (full, orbits) in REFERENCE_COUNTS.items():
        out.append(f"| {n} | {v} | {f} | {q} | {full:,} | {orbits:,} |")
    return out


def bounds_table() -> list[str]:
    out = ["| bound | flag | meaning | values |", "|---|---|---|---|"]
    for d in REFERENCE.bound_decls:
        out.append(f"| {d.letter} | `{d.flag}` | {d.doc or d.name} | {d.low}..{d.high} |")
    return out


def render(protocol: Protocol = REFERENCE) -> str:
    """The whole page as Markdown."""
    lines = [
        "# The protocol deferral checks",
        "",
        "<!-- Generated by `python -m deferral.cli.describe --write docs/protocol.md` from model/;",
        "     do not edit by hand: tests/model/test_describe.py fails when this page and the model differ. -->",
        "",
        "A paravirtualized guest writes its page-table entries (PTEs) itself and tells the",
        "hypervisor which entries changed by queueing a notice on a private per-VCPU queue.",
        "Each VCPU has its own shadow page table (what the hardware walks) and TLB. The",
        "hypervisor does not resync shadows at every write: it drains a VCPU's queue lazily,",
        "when that VCPU invalidates a page (invlpg), reloads CR3, takes part in a TLB",
        "shootdown, and when the queue overflows. A notice carries only the page; draining",
        "re-reads the guest PTE. `deferral` checks whether this is safe on SMP and which",
        "variations of it are not.",
        "",
        "Everything below the prose is read from the model (`deferral/model/`), the one",
        "statement of the protocol that the explicit search, the Z3 encoding, replay and the",
        "conformance checks all execute.",
        "",
        "## Bounds",
        "",
        "A check runs at fixed bounds; `check`, `prove`, `conform` and `regress` take",
        "these flags (regress as `--bounds N,V,F,Q`).",
        "",
        *bounds_table(),
        "",
        "## State",
        "",
        "A state assigns a value to every element of these variables (arrays indexed by VCPUs",
        "and pages). Ghost variables record history the properties need; they",
        "are part of the state and are counted. Initially every number is 0, every bool",
        "false, every queue empty, `pc` is Idle and the VCPU-or-none variables are none.",
        "",
        *state_table(protocol),
        "",
        "## Steps",
        "",
        "A step is atomic: one instance per combination of its parameters at the bounds",
        "(`f` ranges over 0..F, so writing the value already there is still a step). An",
        "instance is enabled where its guard holds; its effect then updates the state.",
        "Comparing with none (`lw[p] == i` before any write) is false.",
        "",
        *steps_section(protocol),
        "",
        "## Properties",
        "",
        "An invariant must hold in every reachable state for every parameter instance. A",
        "liveness property here is AG EF: from every reachable state, some state where the",
        "predicate holds for every instance must be reachable.",
        "",
        *properties_section(protocol),
        "",
        "In words: once a VCPU has finished a flush that must make a write visible to it",
        "(its own invlpg or CR3 reload after its own write, or a shootdown started by the",
        "writer after the write), no translation of that page other than the current guest",
        "PTE survives in its TLB or its shadow; and no VCPU can be stuck waiting for a",
        "shootdown forever.",
        "",
        "## Symmetry",
        "",
        "VCPUs are interchangeable: renaming VCPUs (in every array index and in the values of",
        "VCPU-valued variables such as `lw` and `cur`) maps reachable states to reachable",
        "states and preserves both properties. With symmetry on (the default), `check`",
        "stores one state per orbit: the least of its N! images in one fixed order, so the",
        "counts \"up to VCPU symmetry\" below are exact orbit counts. `--no-symmetry`",
        "counts every state.",
        "",
        "## Published variants",
        "",
        "Each variant is a change to the reference made with `Protocol.derive`, never a",
        "copy; the tests check the verdict in the last column on every run.",
        "",
        *variants_section(),
        "",
        "## Reference counts",
        "",
        "Computed independently with another model checker (Rumur 2022.08) on a Murphi",
        "encoding of the same semantics (`deferral/model/expected.py`). The tests explore",
        "every row and compare: both columns for the first three, the symmetry column for",
        "the larger two. Both properties hold in all of them.",
        "",
        *counts_table(),
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deferral.cli.describe", description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", metavar="FILE", help="write the page to FILE")
    group.add_argument("--check", metavar="FILE", help="exit 1 when FILE differs from the generated page")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        from deferral.traces.files import write_atomic

        write_atomic(args.write, text)
        return 0
    if args.check:
        try:
            same = Path(args.check).read_text(encoding="utf-8") == text
        except OSError as exc:
            print(f"{args.check}: {exc}", file=sys.stderr)
            return 2
        if not same:
            print(f"{args.check} differs from the model; run python -m deferral.cli.describe "
                  f"--write {args.check}", file=sys.stderr)
        return 0 if same else 1
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
