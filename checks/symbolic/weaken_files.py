"""Files of a proof by shipped and weakened lemmas (``deferral-weakened/1``): saved by ``--invariant-out``, read by ``--lemmas``.

A proof by route ``shipped-lemmas+weakened+houdini+induction`` (checks/symbolic/weaken.py)
or by ``prove --parametric``'s weakened lemmas uses shipped lemmas of model/invariant.py
and weakened ones, "L or D". Each is saved by name: a shipped lemma by its name, a weakened
one by its shipped lemma's name and the texts of D's literals (``"or"``); a family enumerated
over the declared sorts (route ``enumerated+houdini+induction``, checks/symbolic/clauses.py)
by its variables and its literals' texts (``{"vars": [[name, sort], ...], "or": [...]}``). Loading rebuilds
each from the protocol's own vocabulary at the requested bounds (:func:`weaken.literals`),
so nothing in the file is code; a name or literal text the protocol does not have there is
a one-line error. Loaded lemmas are candidates like any others: Houdini and induction (or
the parametric proof) decide, nothing is trusted.
"""

from __future__ import annotations

from typing import Any, Sequence

from deferral.checks.symbolic.weaken import WeakLemma, literals, weakened
from deferral.model.bounds import Bounds
from deferral.model.invariant import Lemma, invariant_for
from deferral.model.protocol import Protocol

FORMAT = "deferral-weakened/1"


class WeakenedFileError(ValueError):
    """A lemmas file of this format that cannot be read (one line)."""


def savable(lemmas: Sequence[Lemma], protocol: Protocol, bounds: Bounds) -> bool:
    """Can :func:`save` write every one of ``lemmas`` (shipped, weakened, enumerated or an invariant property)?"""
    from deferral.checks.symbolic.clauses import Clause

    known = _named(protocol, bounds)
    return bool(lemmas) and all(isinstance(lem, (WeakLemma, Clause)) or lem.name in known for lem in lemmas)


def save(lemmas: Sequence[Lemma], learned_at: Sequence[Bounds] = ()) -> dict[str, Any]:
    """The file's fields: ``format``, ``lemmas`` (``{"lemma": name}`` or ``{"lemma": shipped name, "or":
    [literal texts]}``), ``learned_at`` (where the weakenings were sampled)."""
    from deferral.checks.symbolic.clauses import Clause, entry

    out = []
    for lem in lemmas:
        if isinstance(lem, Clause):  # an enumerated family (checks/symbolic/clauses.py)
            out.append(entry(lem))
        elif isinstance(lem, WeakLemma):
            out.append({"lemma": lem.base, "or": list(lem.literals)})
        else:
            out.append({"lemma": lem.name})
    return {"format": FORMAT, "lemmas": out, "learned_at": [b.as_dict() for b in learned_at]}


def is_weakened_file(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def load(doc: Any, protocol: Protocol, bounds: Bounds) -> list[Lemma]:
    """The lemmas of a ``deferral-weakened/1`` document, rebuilt at ``bounds`` (WeakenedFileError)."""
    if not is_weakened_file(doc):
        raise WeakenedFileError(f"not a {FORMAT} file")
    entries = doc.get("lemmas")
    if not isinstance(entries, list) or not entries:
        raise WeakenedFileError(f"{FORMAT}: 'lemmas' must be a non-empty list")
    known = _named(protocol, bounds)
    out: list[Lemma] = []
    seen: set[str] = set()
    from deferral.checks.symbolic.clauses import from_entry

    for n, entry in enumerate(entries):
        where = f"{FORMAT}: lemma {n + 1}"
        if isinstance(entry, dict) and "vars" in entry and "lemma" not in entry:  # an enumerated family
            try:
                lem = from_entry(entry, protocol, bounds)
            except ValueError as exc:
                raise WeakenedFileError(f"{where}: {exc}") from None
            if lem.name not in seen:
                seen.add(lem.name)
                out.append(lem)
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("lemma"), str):
            raise WeakenedFileError(f"{where}: must be an object with a 'lemma' name")
        name, texts = entry["lemma"], entry.get("or", [])
        if name not in known:
            raise WeakenedFileError(f"{where}: {protocol.name} has no lemma or invariant property {name!r} at "
                                    f"{bounds.short()}")
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise WeakenedFileError(f"{where}: 'or' must be a list of literal texts")
        lem = known[name]
        if texts:
            vocabulary = {x.text: x for x in literals(protocol, lem.params, bounds)}
            missing = [t for t in texts if t not in vocabulary]
            if missing:
                raise WeakenedFileError(f"{where} ({name}): {missing[0]!r} is not a literal of {protocol.name}'s "
                                        f"vocabulary over its parameters at {bounds.short()}")
            lem = weakened(lem, [vocabulary[t] for t in texts])
        if lem.name not in seen:
            seen.add(lem.name)
            out.append(lem)
    return out


def _named(protocol: Protocol, bounds: Bounds) -> dict[str, Lemma]:
    """The shipped lemmas at ``bounds`` and the invariant properties, by name."""
    named = {lem.name: lem for lem in invariant_for(bounds)}
    for p in protocol.properties:
        if p.kind == "invariant":
            named.setdefault(p.name, Lemma(p.name, p.params, p.predicate))
    return named
