"""Route ic3po's invariant files: load the orbit families saved after it (``deferral-lemmas/2``).

Saving is :func:`deferral.checks.symbolic.infer.save` (the JSON's ``route`` says ic3po); a saved
family may name any signature of the protocol's sorts (three VCPUs, two pages, ...).
"""

from __future__ import annotations

from typing import Any

from deferral.checks.symbolic.infer import (FORMAT, OTHER, UNDEF, Family, InferError, Signature, Term,
                                            family_of_entry, index_sorts, label, terms, value_sort)
from deferral.model.bounds import Bounds
from deferral.model.protocol import Protocol


def load(doc: Any, protocol: Protocol, bounds: Bounds) -> list[Family]:
    """Families from a ``deferral-lemmas/2`` document written after route ic3po (any signature of the
    protocol's sorts; InferError, one line)."""
    try:
        if doc.get("format") != FORMAT:
            raise InferError(f"not a {FORMAT} file")
        layout = protocol.layout(bounds)
        sorts = {s.name: s for s in index_sorts(protocol)}
        out = []
        for entry in list(doc["lemmas"]) + list(doc.get("inductive", [])):
            pairs = [(str(n), str(s)) for n, s in entry["vars"]]
            if any(s not in sorts for _, s in pairs):
                raise InferError(f"lemma {entry.get('shown')!r}: {protocol.name} has no such sort")
            sig = Signature(tuple((n, sorts[s]) for n, s in pairs))
            out.append(family_of_entry(entry, sig, terms(protocol, sig, bounds),
                                       lambda t: _labels(t, sig, layout), bounds, default_mode="never",
                                       owner=protocol.name))
        return out
    except InferError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InferError(f"malformed lemma file: {type(exc).__name__}: {exc}") from None


def _labels(t: Term, sig: Signature, layout: Any) -> dict[str, int]:
    """Every abstract value a term can have, by its label."""
    if t.kind == "len":
        candidates = [0, 1, 2]
    elif t.kind in ("holds", "eq"):
        candidates = [0, 1]
    else:
        var = layout.var(t.var)
        concrete = value_sort(var.domain, index_sorts(layout), layout.bounds)[0] == "concrete"
        candidates = list(range(var.domain.size(layout.bounds))) if concrete else [OTHER, *range(200, 250)]
    out: dict[str, int] = {}
    for code in [*candidates, UNDEF]:
        try:
            out.setdefault(label(t, code, sig, layout), code)
        except (KeyError, IndexError, ValueError, TypeError):
            continue
    return out


def is_ic3po_file(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("route", "")).startswith("ic3po")


