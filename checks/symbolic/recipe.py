"""How a fresh process loads a protocol again: a recipe (where it came from, which properties) and a
digest of what it computes, equal in two processes exactly when they load the same definition."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from deferral.checks.explicit.checkpoint import digest_code
from deferral.model.protocol import Protocol


def digest(protocol: Protocol) -> str:
    """A digest of what the protocol computes: its name, variables, bounds, and the code (and the
    values closed over) of every step, procedure and property. Equal in two processes exactly when
    they load the same definition."""
    h = hashlib.sha256()
    h.update(f"{protocol.name};{protocol.source};".encode())
    for var in protocol.variables:
        h.update(repr(var).encode())
    h.update(repr(protocol.bound_decls).encode())
    for st in protocol.steps:
        h.update(f"step {st.name} {st.params!r};".encode())
        _digest_callable(h, st.guard, set())
        _digest_callable(h, st.effect, set())
        _digest_callable(h, st.exists, set())
    for proc in protocol.procedures:
        h.update(f"procedure {proc.name};".encode())
        _digest_callable(h, proc.fn, set())
    for prop in protocol.properties:
        h.update(f"property {prop.name} {prop.kind} {prop.params!r};".encode())
        _digest_callable(h, prop.predicate, set())
    return h.hexdigest()


def _digest_callable(h: Any, fn: Any, seen: set[int]) -> None:
    """``fn``'s code, its defaults and what it closes over (functions within, recursively)."""
    if fn is None or id(fn) in seen:
        h.update(b"-;")
        return
    seen.add(id(fn))
    code = getattr(fn, "__code__", None)
    if code is None:
        h.update(repr(fn).encode())  # an object's repr with an address differs: then no spawned learner
        return
    digest_code(h, code)
    for value in (*(fn.__defaults__ or ()), *(c.cell_contents for c in (fn.__closure__ or ()) if _filled(c))):
        if callable(value):
            _digest_callable(h, value, seen)
        else:
            h.update(repr(value).encode())


def _filled(cell: Any) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # an empty cell
        return False
    return True


@dataclass(frozen=True)
class Recipe:
    """How a fresh process loads the protocol again: where it came from, which of its properties
    are checked, and the digest the loaded one must have."""

    source: str
    name: str
    properties: tuple[str, ...]
    digest: str


def recipe(protocol: Protocol) -> Recipe | None:
    """The recipe of ``protocol``, or None where no fresh process could load it (not a published
    variant's name, nor a file's)."""
    from deferral.model.variants import PUBLISHED

    if protocol.source == "built-in" and protocol.name not in PUBLISHED:
        return None
    return Recipe(protocol.source, protocol.name, tuple(p.name for p in protocol.properties), digest(protocol))


def load(rec: Recipe) -> Protocol:
    """The protocol ``rec`` names, loaded in this process (ValueError: not the same definition)."""
    from deferral.model.variants import PUBLISHED, load_variant_file

    protocol = PUBLISHED[rec.name] if rec.source == "built-in" else load_variant_file(rec.source)
    if tuple(p.name for p in protocol.properties) != rec.properties:
        protocol = protocol.checking_only(rec.properties)
    if digest(protocol) != rec.digest:
        raise ValueError(f"{rec.source} does not define the protocol {rec.name} being proved (changed since?)")
    return protocol
