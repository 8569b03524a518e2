"""Lemma strengthening: new small lemma families true in every sampled reachable state, for a dropped lemma that still holds.

A change can make a shipped lemma ``L`` non-inductive while ``L`` stays true in every
reachable state: what is missing is then not a weaker ``L`` (:mod:`deferral.checks.symbolic.weaken`
finds no state where ``L`` fails to learn from) but a new fact that rules out ``L``'s
unreachable counterexamples to induction (mask_before_send: the wait marks are set at the
start of a shootdown, so "pc[i] = Sd implies waiting[i][k], or i = k" is new, and with it
"ipi[k][i] implies waiting[i][k]" is inductive again). In the data-driven style of DistAI
(OSDI 2021):

* **Families** (:func:`families`): over the parameters of each such ``L`` (its quantifier
  prefix: at most :data:`MAX_PARAMS` of them), disjunctions of 1 to :data:`MAX_LITERALS`
  literals of weakening's vocabulary (:func:`weaken.literals`: the protocol's declared
  variables only) and the (in)equality of two parameters of one sort, each true in every
  sampled state for every parameter assignment and minimal (no sub-disjunction is), none
  valid in every state (Z3 at the sample's bounds: no information).
* **Choice** (:func:`support`): Houdini at the sample's bounds over the shipped lemmas, the
  weakened ones and these families keeps the inductive ones; then only what the properties'
  consecution needs there, closed under the same question for each lemma it needs (unsat
  cores, :meth:`Relevance.support`), is offered at the requested bounds.

Nothing here is trusted: Houdini and induction at the requested bounds (or over uninterpreted
sorts by ``--parametric``) decide, so a buggy variant is never proved.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Callable, Sequence

import numpy as np

from deferral.checks.symbolic.vocabulary import Literal, column_masks, is_weakened, literals, sample_rows, truth_table
from deferral.model.bounds import Bounds
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol
from deferral.model.schema import Domain, Sort

#: A family has at most this many literals; a lemma with more parameters is not strengthened.
MAX_LITERALS, MAX_PARAMS = 3, 3
#: At most this many families per parameter list (the simplest first); Z3's validity check's limit (ms).
PER_SIGNATURE, VALID_MS = 600, 1000
#: Where the families are learned from at most this many literals (those splitting the sample most evenly).
POOL = 90
#: States sampled (breadth-first) at the wider bounds of :func:`wider`; states of the first sample used (at
#: random): a family false in a reachable state there is dropped by Houdini there anyway.
WIDER_CAP, FIRST_CAP = 100_000, 50_000
#: The largest wider bounds (any other sort: 2).
WIDER = {"vcpus": 3, "pages": 2}

PREFIX = "for all "


@dataclass
class Strengthening:
    """The new families true in the sample, how many were enumerated, how long it took; after
    :func:`joint`, the weakened lemmas and new families to offer at the requested bounds (or why none)."""

    families: list[Lemma]
    enumerated: int
    seconds: float
    offered: list[Lemma] = field(default_factory=list)
    needed: int = 0  # what the support at the sample's bounds holds (shipped lemmas too)
    why: str = ""


def vocabulary(protocol: Protocol, params: Sequence[tuple[str, Domain]], b: Bounds) -> list[Literal]:
    """Weakening's literals over ``params``, and "x = y" / "x != y" for two parameters of one sort."""
    out = list(literals(protocol, params, b))
    for (x, (nx, dx)), (y, (ny, dy)) in combinations(enumerate(params), 2):
        if isinstance(dx, Sort) and dx is dy:
            out.append(Literal(f"{nx} = {ny}", (lambda p, q: lambda s, *a: a[p] == a[q])(x, y), 0))
            out.append(Literal(f"{nx} != {ny}", (lambda p, q: lambda s, *a: a[p] != a[q])(x, y), 0))
    return out


def clause(params: Sequence[tuple[str, Domain]], chosen: Sequence[Literal]) -> Lemma:
    """``for all params: l1 or l2 ...`` as a Lemma in the step notation (any backend)."""
    fns = tuple(x.fn for x in chosen)
    names = ", ".join(n for n, _ in params)

    def fn(s: Any, *a: Any) -> Any:
        return s.any([f(s, *a) for f in fns])

    fn.any_of = fns  # type: ignore[attr-defined]  # the encoding builds its terms from the literals' (cached)
    return Lemma(f"{PREFIX}{names}: " + " or ".join(x.text for x in chosen), tuple(params), fn)


def is_new(lem: Lemma) -> bool:
    """Is ``lem`` a family found here (not a shipped or weakened lemma)?"""
    return lem.name.startswith(PREFIX)


def signature(lem: Lemma) -> tuple[Domain, ...]:
    return tuple(d for _, d in lem.params)


def enumerate_clauses(masks: Sequence[int], full: int, max_literals: int = MAX_LITERALS,
                      deadline: float | None = None) -> list[tuple[int, ...]]:
    """The minimal index sets (1 to ``max_literals``) whose masks together cover ``full``."""
    n = len(masks)
    ones = {j for j in range(n) if masks[j] == full}
    found: list[tuple[int, ...]] = [(j,) for j in sorted(ones)]
    rest = [j for j in range(n) if j not in ones and masks[j]]
    pairs = {(a, c) for a, c in combinations(rest, 2) if masks[a] | masks[c] == full}
    found += sorted(pairs)
    if max_literals < 3:
        return found
    for x, a in enumerate(rest):
        if deadline is not None and time.monotonic() > deadline:
            break
        for y in range(x + 1, len(rest)):
            c = rest[y]
            if (a, c) in pairs:
                continue
            gap = full & ~(masks[a] | masks[c])
            for d in rest[y + 1:]:
                if masks[d] & gap == gap and (a, d) not in pairs and (c, d) not in pairs:
                    found.append((a, c, d))
    return found


class _Valid:
    """Is a family valid in every state (true whatever the state, so no information), at bounds ``b``?"""

    def __init__(self, protocol: Protocol, b: Bounds) -> None:
        import z3

        from deferral.checks.terms.encoding import encode

        self.z3, self.enc = z3, encode(protocol, b, check=False)
        self.xs = self.enc.state("x")
        self.solver = z3.Solver()
        self.solver.set("timeout", VALID_MS)
        self.solver.add(self.enc.valid(self.xs))

    def __call__(self, lem: Lemma) -> bool:
        from deferral.checks.symbolic.induction import instances

        z3 = self.z3
        return self.solver.check(z3.Or([z3.Not(t) for _, t in instances(self.enc, lem, self.xs)])) == z3.unsat


def families(protocol: Protocol, params: Sequence[tuple[str, Domain]], samples: Sequence[tuple[Bounds, np.ndarray]],
             per_signature: int | None = None, deadline: float | None = None) -> tuple[list[Lemma], int]:
    """New families over ``params`` true in every sampled state (see the module docstring), the
    simplest first (fewest literals, then parameters before nested reads), and how many were found
    before the validity filter and the cap."""
    per_signature = PER_SIGNATURE if per_signature is None else per_signature
    samples = [(b, rows) for b, rows in samples if rows.shape[0]]
    if not samples or len(params) > MAX_PARAMS or per_signature <= 0:
        return [], 0
    at = samples[0][0]
    lits = vocabulary(protocol, params, at)
    table = np.concatenate([truth_table(protocol, b, rows, [x.fn for x in lits], params) for b, rows in samples], axis=1)
    # literals constant over the sample say nothing a clause could use (true: the clause alone; false: never)
    keep = [j for j in range(len(lits)) if not table[j].all() and table[j].any()]
    # the pool: those splitting the sample most evenly first (their triples are the likeliest covers)
    balance = np.abs(table[keep].mean(axis=1) - 0.5)
    keep = sorted(keep[j] for j in np.argsort(balance, kind="stable")[:POOL])
    lits = [lits[j] for j in keep]
    masks, full = column_masks(table[keep])
    found = enumerate_clauses(masks, full, deadline=deadline)
    found.sort(key=lambda f: (len(f), sum(lits[j].cost for j in f), f))
    valid = _Valid(protocol, at)
    out: list[Lemma] = []
    for combo in found:
        if len(out) >= per_signature or (deadline is not None and time.monotonic() > deadline):
            break
        lem = clause(params, [lits[j] for j in combo])
        if len(combo) > 1 and valid(lem):
            continue
        out.append(lem)
    return out, len(found)


def signatures(lemmas: Sequence[Lemma]) -> list[tuple[tuple[str, Domain], ...]]:
    """The distinct parameter lists (by sorts) of ``lemmas``, first occurrence's names."""
    seen: dict[tuple[Domain, ...], tuple[tuple[str, Domain], ...]] = {}
    for lem in lemmas:
        seen.setdefault(signature(lem), tuple(lem.params))
    return list(seen.values())


def wider(at: Bounds, params: Sequence[tuple[str, Domain]]) -> Bounds:
    """Where families over ``params`` are sampled besides ``at``: one more element of each sort than
    the parameters of that sort (so "the other VCPU" is not always the other parameter, and a page
    fact is not true only because there is one page), within 3 VCPUs and 2 pages."""
    need: dict[str, int] = {}
    for _, d in params:
        if isinstance(d, Sort) and not d.elided:  # an elided sort (spaces) stays as requested
            need[d.bound] = need.get(d.bound, 0) + 1
    grow = {name: min(WIDER.get(name, 2), max(at[name], n + 1)) for name, n in need.items()}
    return at.replace(**grow)


def strengthen(protocol: Protocol, holding: Sequence[Lemma], at: Bounds, rows: np.ndarray,
               deadline: float | None = None, cap: int | None = None) -> Strengthening:
    """New families over the parameter lists of ``holding`` (dropped lemmas true in every sampled state),
    true in the reachable states ``rows`` of ``at`` (at most FIRST_CAP of them, chosen at random) and in at
    most ``cap`` of :func:`wider` (``at``, breadth-first)."""
    start = time.monotonic()
    cap = WIDER_CAP if cap is None else cap
    out: list[Lemma] = []
    total = 0
    if rows.shape[0] > FIRST_CAP:  # a family false in a state not drawn is dropped by Houdini at ``at``
        rows = rows[np.sort(np.random.default_rng(0).choice(rows.shape[0], FIRST_CAP, replace=False))]
    cache: dict[Bounds, np.ndarray] = {at: rows}
    for params in signatures(holding):
        if deadline is not None and time.monotonic() > deadline:
            break
        more = wider(at, params)
        if more not in cache:
            cache[more] = sample_rows(protocol, more, cap=cap)
        got, n = families(protocol, params, [(at, rows)] + ([(more, cache[more])] if more != at else []),
                          deadline=deadline)
        out += got
        total += n
    return Strengthening(out, total, time.monotonic() - start)


def support(protocol: Protocol, at: Bounds, offered: Sequence[Lemma], deadline: float | None = None,
            note: Callable[[str], None] | None = None) -> tuple[list[Lemma], str]:
    """Of ``offered``, Houdini's inductive subset at ``at`` and what the invariant properties'
    consecution needs of it there (closed): a short set to offer at larger bounds; ([], why) if
    the properties are not preserved by what Houdini keeps at ``at``."""
    from deferral.checks.symbolic.infer import property_lemmas
    from deferral.checks.symbolic.relevance import Relevance

    rel = Relevance(protocol, at)
    must = property_lemmas(protocol)
    alive, broke, _ = rel.houdini(list(offered), must, deadline)
    if broke is not None:
        return [], f"Houdini at {at.short()} kept {len(alive)} of {len(offered)}; {broke} is not preserved by them"
    needed = rel.support(alive, must, deadline)
    if needed is None:
        return alive, ""
    if note:
        note(f"strengthen: Houdini at {at.short()} kept {len(alive)} of {len(offered)}; the property needs {len(needed)}")
    return needed, ""


def joint(protocol: Protocol, rep: Any, lemmas: Sequence[Lemma], deadline: float | None = None,
          note: Callable[[str], None] | None = None) -> Strengthening:
    """The strengthening round after a weakening (``rep``: :class:`weaken.Repair`, with the sampled states):
    new families over the parameters of the dropped lemmas that hold in every sampled state, then
    :func:`support` at the sample's bounds over ``lemmas`` (the shipped ones there), the weakened ones and
    those; ``offered``: the weakened lemmas and new families of that support."""
    start = time.monotonic()
    holding = [lem for lem in lemmas if lem.name in set(rep.holding)]
    if not holding or rep.rows is None or rep.sampled_at is None:
        return Strengthening([], 0, 0.0, why="no dropped lemma holds in every sampled state")
    st = strengthen(protocol, holding, rep.sampled_at, rep.rows, deadline=deadline)
    if deadline is not None and time.monotonic() > deadline:
        st.why = f"its time limit was reached while sampling and enumerating ({st.seconds:.1f} s)"
        return st
    if note:
        note(f"strengthen: {len(st.families)} new families over the parameters of {len(holding)} dropped "
             f"lemma(s) true in every sampled state ({st.enumerated} enumerated, {st.seconds:.1f} s)")
    try:
        needed, why = support(protocol, rep.sampled_at, list(lemmas) + list(rep.candidates) + st.families,
                              deadline=deadline, note=note)
    except TimeoutError as exc:
        needed, why = [], str(exc)
    st.offered = [x for x in needed if is_weakened(x) or is_new(x)]
    st.needed = len(needed)
    st.why = why if why or st.offered else "the support needs no weakened lemma or new family"
    st.seconds = time.monotonic() - start
    return st
