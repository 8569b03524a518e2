"""``deferral variants``: the published variants (or a variant file) and what each changes."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rich.table import Table

from deferral.cli.common import console, protocol_from
from deferral.model.protocol import Protocol
from deferral.model.variants import PUBLISHED


def register(sub: Any) -> None:
    p = sub.add_parser("variants", help="list the published variants and what each changes",
                       description="List the published variants of the protocol: for each, what it changes "
                                   "(steps, procedures, variables, properties replaced, added or removed) "
                                   "and what it means. With --variant-file, describe a variant a Python file "
                                   "defines (VARIANT = REFERENCE.derive(...)). docs/protocol.md has the "
                                   "verdicts the tests check.")
    p.add_argument("--variant-file", metavar="PATH", help="describe the variant a Python file defines")
    p.add_argument("--json", action="store_true", help="print exactly one JSON object on stdout")
    p.set_defaults(func=run)


def describe(protocol: Protocol) -> dict[str, Any]:
    return {
        "name": protocol.name,
        "derived_from": protocol.parent.name if protocol.parent else None,
        "source": protocol.source,
        "doc": protocol.doc,
        "changes": [{"kind": c.kind, "what": c.what, "name": c.name} for c in protocol.changes],
        "steps": [s.name for s in protocol.steps],
        "properties": [{"name": p.name, "kind": p.kind} for p in protocol.properties],
    }


def run(args: argparse.Namespace) -> int:
    if args.variant_file:
        protocols = [protocol_from(args)]  # the file main loaded already
    else:
        protocols = list(PUBLISHED.values())
    if args.json:
        print(json.dumps({"variants": [describe(p) for p in protocols]}))
        return 0
    table = Table(title="variants")
    table.add_column("name", style="bold cyan")
    table.add_column("derived from")
    table.add_column("changes")
    table.add_column("what it means")
    for p in protocols:
        changes = ", ".join(f"{c.kind} {c.what} {c.name}" for c in p.changes) or "-"
        table.add_row(p.name, p.parent.name if p.parent else "-", changes, p.doc)
    console().print(table)
    return 0
