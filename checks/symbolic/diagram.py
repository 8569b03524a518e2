"""Generalizing a counterexample to induction into a lemma family: its diagram, minimized on samples.

A counterexample to induction (CTI) is a concrete state at some bounds. Its *diagram* over a
signature (one quantified variable per element of each sort it uses: three VCPUs are three
variables ``i, k, j``) is the conjunction of the abstract literals ``term = value`` true in
the state at the identity assignment, for every term of the protocol's declared vocabulary
(:func:`deferral.checks.symbolic.infer.terms`). No reachable state satisfies the diagram of
an unreachable state under any assignment; the CTI's negated diagram is therefore a
candidate lemma, symmetric by construction: "for all distinct i, k, j, p: never (...)".

It is useless as it stands (it names every slot of the state). UPDR and IC3PO drop literals
while the negation stays inductive; this module drops them, data-driven, while **no sampled
reachable state** (:class:`deferral.checks.symbolic.infer.Samples`, exhaustive at small
bounds) satisfies what is left under any assignment of its variables: a greedy set cover
over the sampled abstract rows (each kept literal rules out the most remaining rows per
cost), then every literal the others make redundant is dropped. What is left is a short
family (2-6 literals) that excludes the CTI and is true in every sample.

When the CTI has more elements of a sort than the samples do, the diagram is taken over
a subset of them (a *projection*: the literals over those elements only, the others read
as ``other``); its negation still excludes the CTI.

API (also for other routes, e.g. a symmetric IC3 on a finite instance):

* :func:`diagram_families` (protocol, samples, state, bounds) -> families excluding ``state``;
* :func:`minimize` (table, target row) -> the columns of a minimal excluding diagram;
* :func:`diagram_row` (protocol, state, bounds, signature) -> the state's diagram (terms, codes).

Soundness never depends on this module: it only proposes candidates to Houdini.
"""

from __future__ import annotations

import time
from itertools import combinations, permutations, product
from typing import Sequence

import numpy as np

from deferral.checks.symbolic.infer import (OTHER, VAR, Family, Samples, Signature, Table, Term, _cost, _Eval,
                                            elided, index_sorts, label)
from deferral.model.bounds import Bounds
from deferral.model.concrete import State
from deferral.model.protocol import Protocol
from deferral.model.schema import Domain, Layout, Sort

#: Quantified variable names per sort (three VCPUs, two pages); other sorts: initial and a number.
NAMES = {"vcpu": ("i", "k", "j"), "page": ("p", "q")}
#: A diagram keeps at most this many literals (a longer one is too specific to carry over).
MAX_LITERALS = 8


def names(sort: Domain, count: int) -> tuple[str, ...]:
    base = NAMES.get(sort.name, ())
    return tuple(base[n] if n < len(base) else f"{sort.name[0]}{n + 1}" for n in range(count))


def signature(protocol: Protocol, counts: dict[str, int]) -> Signature:
    """Variables per index sort (by sort name, at least one each), in the order infer.py uses."""
    return Signature(tuple((n, s) for s in index_sorts(protocol) for n in names(s, max(1, counts.get(s.name, 1)))))


def diagram_row(protocol: Protocol, state: State | Sequence[int], bounds: Bounds, sig: Signature,
                env: dict[str, int], terms: Sequence[Term]) -> np.ndarray:
    """The abstract value of every term of ``terms`` in ``state`` with ``sig``'s variables at ``env``."""
    rows = np.array([tuple(state)], dtype=np.int64)
    ev = _Eval(protocol, protocol.layout(bounds), rows, env).with_sig(sig)
    return np.array([ev.code(t)[0] for t in terms], dtype=np.uint8)


def minimize(table: Table, target: np.ndarray, banned: set[tuple[int, ...]] = frozenset(),
             avoid: Sequence[int] = ()) -> tuple[int, ...] | None:
    """Columns of ``table`` such that no sampled row equals ``target`` on all of them (greedy set
    cover, cheapest terms preferred, then redundant columns dropped); None if some sampled row
    equals ``target`` everywhere (the diagram is reachable) or the cover is longer than
    :data:`MAX_LITERALS` or is in ``banned``. ``avoid``: columns not to use (another cover)."""
    match = table.rows == target[None, :]
    if match.shape[0] and match.all(axis=1).any():
        return None
    cost = np.array([_cost(t) for t in table.terms])
    usable = np.ones(len(table.terms), dtype=bool)
    usable[list(avoid)] = False
    live = np.ones(match.shape[0], dtype=bool)
    chosen: list[int] = []
    while live.any():
        kills = (~match[live]).sum(axis=0).astype(np.float64)
        kills[~usable] = 0
        kills[chosen] = 0
        if kills.max() <= 0:
            return None
        best = int(np.argmax(kills / cost))
        chosen.append(best)
        live &= match[:, best]
        if len(chosen) > 3 * MAX_LITERALS:
            return None
    for c in sorted(chosen, key=lambda c: -cost[c]):  # the dearest first: drop what the rest covers
        rest = [x for x in chosen if x != c]
        if rest and not match[:, rest].all(axis=1).any():
            chosen = rest
    key = tuple(sorted(chosen))
    if len(key) > MAX_LITERALS or key in banned:
        return None
    return key


def shapes(protocol: Protocol, exact: Sequence[Bounds], sizes: dict[str, int]) -> list[dict[str, int]]:
    """Variables per sort a diagram of a state with ``sizes`` elements can have: at most what one
    bound of ``exact`` (exhaustively sampled) has of every sort, so that every reachable
    configuration of that many elements is among the samples; most variables first."""
    sorts = [s for s in index_sorts(protocol) if isinstance(s, Sort)]
    out: list[dict[str, int]] = []
    for b in exact:
        shape = {s.name: min(sizes.get(s.bound, 1), s.size(b)) for s in sorts}
        if shape not in out:
            out.append(shape)
    out = [x for x in out if not any(y != x and all(y[k] >= x[k] for k in x) for y in out)]  # the largest
    return sorted(out, key=lambda x: -sum(x.values()))


def diagram_families(protocol: Protocol, data: Samples, state: State | Sequence[int], bounds: Bounds, *,
                     limit: int = 2, banned: set[str] | None = None, exact: Sequence[Bounds] | None = None,
                     deadline: float | None = None) -> list[Family]:
    """Up to ``limit`` families, each the negation of a minimal diagram of ``state`` (at ``bounds``)
    that no sampled state satisfies under any assignment. ``banned`` (updated): the families
    proposed before (their shown forms), not proposed again. ``exact``: the sampled bounds whose
    samples are exhaustive (default all): a diagram has at most as many variables of each sort
    as one of them has elements; the samples at every bound with enough elements refute."""
    banned = set() if banned is None else banned
    sorts = {s.name: s for s in index_sorts(protocol) if isinstance(s, Sort)}
    sizes = {s.bound: s.size(bounds) for s in sorts.values()}
    layout = protocol.layout(bounds)
    out: list[Family] = []
    for shape in shapes(protocol, data.bounds if exact is None else exact, sizes):
        sig = signature(protocol, shape)
        table = data.table_for(protocol, sig, lambda b: all(sorts[n].size(b) >= k for n, k in shape.items()))
        if table is None:
            continue
        per_sort = [(s, [n for n, x in sig.vars if x is s]) for s in {id(x): x for _, x in sig.vars}.values()]
        choices: list[dict[str, int]] = [{}]
        for s, vs in per_sort:
            choices = [dict(c, **dict(zip(vs, pick))) for c in choices
                       for pick in combinations(range(s.size(bounds)), len(vs))]
        for env in choices:
            if deadline is not None and time.monotonic() > deadline:
                return out
            target = diagram_row(protocol, state, bounds, sig, env, table.terms)
            avoid: list[int] = []
            for _ in range(limit):
                key = minimize(table, target, avoid=avoid)
                if key is None:
                    break
                avoid.append(min(key, key=lambda c: _cost(table.terms[c])))  # the next cover: without it
                fam = negated(table, key, target, layout)
                if fam.show() in banned:
                    continue
                banned.add(fam.show())
                out.append(fam)
                if len(out) >= limit:
                    return out
    return out


def negated(table: Table, cols: Sequence[int], target: np.ndarray, layout: Layout) -> Family:
    """"For all distinct ...: never (t1, ..., tn) = (v1, ..., vn)": the negated diagram, over the
    variables it uses only, named canonically (the least shown form over renamings in a sort)."""
    sig = table.sig
    lits = [(table.terms[c], int(target[c])) for c in sorted(cols)]
    order = [n for n, _ in sig.vars]
    used: set[str] = set()
    for t, code in lits:
        used |= t.names()
        if VAR <= code < OTHER:
            used.add(order[code - VAR])
    kept = [(n, s) for n, s in sig.vars if n in used]
    best: Family | None = None
    per_sort = [(s, [n for n, x in kept if x is s]) for s in {id(x): x for _, x in kept}.values()]
    for combo in product(*(permutations(range(len(vs))) for _, vs in per_sort)):
        rename = {old: names(s, len(vs))[perm[m]] for (s, vs), perm in zip(per_sort, combo)
                  for m, old in enumerate(vs)}
        new_sig = Signature(tuple(sorted(((rename[n], s) for n, s in kept),
                                         key=lambda v: ([id(x) for _, x in sig.vars].index(id(v[1])), v[0]))))
        new_order = [n for n, _ in new_sig.vars]
        new = sorted(((t.renamed(rename), VAR + new_order.index(rename[order[code - VAR]])
                       if VAR <= code < OTHER else code) for t, code in lits), key=lambda x: x[0].show())
        ts = tuple(t for t, _ in new)
        row = tuple(c for _, c in new)
        labels = (tuple(label(t, c, new_sig, layout) for t, c in new),)
        fam = Family(new_sig, ts, (row,), "never", labels, elided(new_sig, layout.bounds))
        if best is None or fam.show() < best.show():
            best = fam
    assert best is not None
    return best
