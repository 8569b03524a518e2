"""Lemma repair: a shipped lemma Houdini drops is offered again weakened, "L or D", D chosen from reachable states.

When a change makes a shipped lemma ``L`` (for all its parameters) non-inductive, Houdini
drops it and the rest may be too weak. Often the fact that proves the change is ``L`` with
more ways out: ``L or D``, D a small disjunction of literals over ``L``'s own parameters
(lazy_tlb_ipi: "... implies req[k][sp[i]][pg[i]], or cr3[k] != sp[i], or ...").

* **Vocabulary** (:func:`literals`), from the protocol's declared variables only (no
  example-specific fact): over the lemma's parameters and the reads of a sort-valued
  variable at them (``sp[i]``, ``pg[i]``, ``cr3[k]``, ``lw[t][p]``, ``cur[k]``): boolean
  variables read at those index terms, either polarity; enum variables equal to each value;
  equalities and disequalities of two index terms of one sort; a data value (frames) equal
  to 0, to the value of a data variable with fewer index sorts (``tlb[k][pg[i]] =
  gpt[sp[i]][pg[i]]``), either ("fresh"), and all of one VCPU's data values at a place
  fresh at once.
* **Choice** (:func:`weakenings`): every literal and the lemma are evaluated (numpy backend
  of the step notation) on the reachable states of a small instance (the explicit search's
  states), for every parameter assignment; D must be true wherever L fails there. Disjunctions
  of 1, then 2, then 3 literals, each minimal (no smaller subset covers), the simplest
  literals first (parameters before nested reads) and the strongest D (true in the fewest
  sampled assignments) first; a few per lemma. Searched on at most BAD_CAP of the failing
  states and checked on all of them.
* **Above the sample's bounds** (:func:`shortened`): the weakened lemmas a proof at the
  sample's bounds needs are what auto offers first at the requested bounds (Houdini's
  queries there grow with the number of lemmas offered).

Nothing here is trusted: the weakened lemmas are candidates beside the shipped ones, and
Houdini and induction (bounded, or over uninterpreted sorts by ``--parametric``) decide. A
buggy variant is never proved: no inductive invariant implies a property it violates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any, Callable, Sequence

import numpy as np

from deferral.checks.symbolic.vocabulary import (SAMPLE_CAP, Expr, Fn, Literal, index_terms,  # noqa: F401
                                                  is_weakened, literals, sample_rows, truth_table)
from deferral.model.bounds import Bounds
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol

#: At most this many weakened versions of one lemma are offered; D has at most MAX_D literals.
PER_LEMMA, MAX_D = 40, 3
#: Literals kept for the 3-literal search (those covering most of the failing assignments).
TRIPLE_POOL = 40
#: States (randomly chosen from the sample) on which a D's strength is measured; a Z3 query's limit (ms).
STRENGTH_SAMPLE, TRIVIAL_MS = 4000, 2000
#: D is searched on at most this many of the states where the lemma fails (at random), then checked on all
#: of them; at most this many rounds (states a D fails in join the search's set).
BAD_CAP, VERIFY_ROUNDS = 30_000, 4
#: Shortening a proof (trim) takes at most this long; :func:`shortened` first tries this many single ones.
TRIM_S, SINGLE_TRIES = 10.0, 10


def weakenings(protocol: Protocol, lemma: Lemma, samples: Sequence[tuple[Bounds, np.ndarray]],
               assume: Sequence[Lemma] = (), per_lemma: int | None = None,
               deadline: float | None = None) -> list[Lemma]:
    """Weakened versions "lemma or D" true in every sampled state (see the module docstring);
    [] where the lemma holds in every sampled state (nothing to learn D from) or no D of at
    most MAX_D literals covers the states where it fails. A D that ``assume`` (the lemmas
    Houdini kept) and "not lemma" imply at the first sample's bounds is left out (it would
    make the lemma a consequence of the others: no information).

    Where the lemma fails in more than BAD_CAP sampled states, D is searched on BAD_CAP of them
    (at random), and the Ds found are checked on all of them (only their own literals evaluated);
    the states some D fails in join the search's set and it is searched again (at most
    VERIFY_ROUNDS times; a D not checked true in every failing state is never offered)."""
    per_lemma = PER_LEMMA if per_lemma is None else per_lemma
    if not samples or per_lemma <= 0:
        return []
    at = samples[0][0]
    lits = literals(protocol, lemma.params, at)
    bads, strong = [], []
    rng = np.random.default_rng(0)
    for b, rows in samples:
        if rows.shape[0] == 0:
            continue
        holds = truth_table(protocol, b, rows, [lemma.fn], lemma.params)[0]
        if holds.all():
            continue
        bads.append((b, rows[np.unique(np.nonzero(~holds)[0] % rows.shape[0])]))
        some = rows[rng.choice(rows.shape[0], min(STRENGTH_SAMPLE, rows.shape[0]), replace=False)]
        strong.append(truth_table(protocol, b, some, [x.fn for x in lits], lemma.params))
    if not bads or not lits:
        return []
    often = np.concatenate(strong, axis=1)  # literal x sampled (assignment, state): D true there = weaker
    check = _Trivial(protocol, at, lemma, assume)
    seen = [np.zeros(len(st), dtype=bool) for _, st in bads]  # the failing states the search sees
    for k, (_, st) in enumerate(bads):
        seen[k][rng.choice(len(st), min(BAD_CAP, len(st)), replace=False)] = True

    def late() -> bool:
        return deadline is not None and time.monotonic() > deadline

    def kept(combo: tuple[int, ...]) -> bool:  # not implied by "not lemma" and the lemmas assumed
        return len(combo) == 1 or not check([lits[j] for j in combo])

    for last in [False] * (VERIFY_ROUNDS - 1) + [True]:
        parts = []
        for (b, st), mask in zip(bads, seen):
            sub = st[mask]
            fails = truth_table(protocol, b, sub, [lemma.fn], lemma.params)[0]
            parts.append(truth_table(protocol, b, sub, [x.fn for x in lits], lemma.params)[:, ~fails])
        cover = np.concatenate(parts, axis=1)  # literal x failing (assignment, state) seen
        masks = [int.from_bytes(np.packbits(row, bitorder="little").tobytes(), "little") for row in cover]
        found = _covers((masks, (1 << cover.shape[1]) - 1), lits, often, late)[:per_lemma * 3]
        if all(m.all() for m in seen) or not found:
            break
        good: list[tuple[int, ...]] = []
        missed = [np.zeros(len(st), dtype=bool) for _, st in bads]
        for i in range(0, len(found), per_lemma):  # a batch at a time: the first are likely enough
            batch = found[i:i + per_lemma]
            more, ok = _uncovered(protocol, lemma, lits, batch, bads)
            good += [f for f, fine in zip(batch, ok) if fine and kept(f)]
            for m, x in zip(missed, more):
                m |= x
            if len(good) >= per_lemma or late():
                break
        if last or not any(m.any() for m in missed):
            return [weakened(lemma, [lits[j] for j in f]) for f in good[:per_lemma]]
        for m, more in zip(seen, missed):
            m |= more
    out = []
    for combo in found:
        if kept(combo):
            out.append(weakened(lemma, [lits[j] for j in combo]))
        if len(out) >= per_lemma or late():
            break
    return out


def _covers(cover: tuple[list[int], int], lits: Sequence[Literal], often: np.ndarray,
            late: Callable[[], bool]) -> list[tuple[int, ...]]:
    """The minimal sets of 1 to MAX_D literal indices whose masks (``cover``: per literal, the failing
    (assignment, state) columns it is true in, and the all-columns mask) cover every column; fewest
    literals first, then the strongest (true in the fewest ``often`` columns), then the simplest."""
    masks, full = cover
    useful = [j for j, m in enumerate(masks) if m]
    found: list[tuple[int, ...]] = []

    def minimal(combo: tuple[int, ...]) -> bool:
        return not any(set(f) <= set(combo) for f in found)

    found += [(j,) for j in useful if masks[j] == full]
    for a, c in combinations(useful, 2):
        if masks[a] | masks[c] == full and minimal((a, c)):
            found.append((a, c))
        if late():
            break
    if MAX_D >= 3 and not late():
        pool = sorted(useful, key=lambda j: (-bin(masks[j]).count("1"), lits[j].cost))[:TRIPLE_POOL]
        pool.sort()
        for a, c, d in combinations(pool, 3):
            if masks[a] | masks[c] | masks[d] == full and minimal((a, c, d)):
                found.append((a, c, d))
            if late():
                break
    found.sort(key=lambda f: (len(f), int(often[list(f)].any(axis=0).sum()), sum(lits[j].cost for j in f), f))
    return found


def _uncovered(protocol: Protocol, lemma: Lemma, lits: Sequence[Literal], found: Sequence[tuple[int, ...]],
               bads: Sequence[tuple[Bounds, np.ndarray]]) -> tuple[list[np.ndarray], list[bool]]:
    """Per sample, the failing states (a mask over ``bads``' states) where some D of ``found`` is false
    for an assignment where the lemma fails, and per D whether it is true wherever the lemma fails:
    only the literals of ``found`` are evaluated."""
    used = sorted({j for f in found for j in f})
    pos = {j: n for n, j in enumerate(used)}
    out, ok = [], [True] * len(found)
    for b, st in bads:
        fails = ~truth_table(protocol, b, st, [lemma.fn], lemma.params)[0]
        tab = truth_table(protocol, b, st, [lits[j].fn for j in used], lemma.params)
        missed = np.zeros(len(st), dtype=bool)
        for n, f in enumerate(found):
            bad_cols = np.nonzero(fails & ~tab[[pos[j] for j in f]].any(axis=0))[0]
            if bad_cols.size:
                ok[n] = False
                missed[bad_cols % len(st)] = True
        out.append(missed)
    return out, ok


class _Trivial:
    """Is "not lemma implies D" valid given the ``assume`` lemmas, at bounds ``b`` (Z3, one state)?"""

    def __init__(self, protocol: Protocol, b: Bounds, lemma: Lemma, assume: Sequence[Lemma]) -> None:
        import z3

        from deferral.checks.terms.encoding import encode
        from deferral.checks.symbolic.induction import instances

        self.enc, self.lemma, self.z3 = encode(protocol, b, check=False), lemma, z3
        self.xs = self.enc.state("x")
        self.solver = z3.Solver()
        self.solver.set("timeout", TRIVIAL_MS)
        self.solver.add(self.enc.valid(self.xs), *[t for lem in assume for _, t in instances(self.enc, lem, self.xs)])
        self.instances = instances

    def __call__(self, chosen: Sequence[Literal]) -> bool:
        z3 = self.z3
        cand = weakened(self.lemma, chosen)
        broken = z3.Or([z3.Not(t) for _, t in self.instances(self.enc, cand, self.xs)])
        return self.solver.check(broken) == z3.unsat


@dataclass(frozen=True)
class WeakLemma(Lemma):
    """A weakened shipped lemma, "base or l1 or l2 ...": what it was made of, to save and load it."""

    base: str = ""  # the shipped lemma's name (model/invariant.py)
    literals: tuple[str, ...] = ()  # the texts of D's literals (:func:`literals`)


def weakened(lemma: Lemma, chosen: Sequence[Literal]) -> Lemma:
    """``lemma or l1 or l2 ...`` as a Lemma in the same notation (any backend)."""
    fns = tuple(x.fn for x in chosen)
    base = lemma.fn

    def fn(s: Any, *a: Any) -> Any:
        return s.any([base(s, *a)] + [f(s, *a) for f in fns])

    fn.any_of = (base, *fns)  # type: ignore[attr-defined]  # the encoding builds its terms from these (cached)

    return WeakLemma(f"({lemma.name}) or " + " or ".join(x.text for x in chosen), lemma.params, fn,
                     base=lemma.name, literals=tuple(x.text for x in chosen))


def dropped_names(hlog: Sequence[str]) -> list[str]:
    """The lemma names a Houdini log says were dropped."""
    return [line.split("): ", 1)[1] for line in hlog if line.startswith("dropped (") and "): " in line]


def sample_at(bounds: Bounds) -> Bounds:
    """Where the weakenings are learned: 2 VCPUs (at most), one page, one frame, Q and any other bound
    (address spaces) at most 2, within ``bounds``."""
    small = {"vcpus": 2, "pages": 1, "frames": 1}
    return bounds.replace(**{d.name: min(bounds[d.name], small.get(d.name, 2)) for d in bounds.decls})


@dataclass
class Repair:
    """The weakened candidates for the lemmas Houdini dropped, and how they were found."""

    candidates: list[Lemma]
    weakened: dict[str, int]  # dropped lemma -> weakened versions offered
    sampled_at: Bounds | None
    states: int
    seconds: float
    violated: str = ""  # an invariant property a sampled state violates (a bug: nothing to weaken)
    #: the dropped lemmas true in every sampled state (not inductive, yet nothing to weaken them by:
    #: :mod:`deferral.checks.symbolic.strengthen` offers new families beside them)
    holding: list[str] = field(default_factory=list)
    rows: Any = None  # the sampled states (unpacked), for a strengthening round


def repair(protocol: Protocol, bounds: Bounds, lemmas: Sequence[Lemma], dropped: Sequence[str],
           timeout: float | None = None, note: Callable[[str], None] | None = None) -> Repair:
    """Weakened versions of the ``dropped`` lemmas (of ``lemmas``), true in every reachable state of
    :func:`sample_at` (``bounds``) the explicit search enumerates (at most SAMPLE_CAP, in half the time)."""
    start = time.monotonic()
    deadline = None if timeout is None else start + timeout
    at = sample_at(bounds)
    gone = [lem for lem in lemmas if lem.name in set(dropped)]
    if not gone:
        return Repair([], {}, None, 0, 0.0)
    rows = sample_rows(protocol, at, time_limit=None if timeout is None else timeout / 2)
    if note:
        note(f"weaken: {rows.shape[0]} reachable states at {at.short()}; weakening {len(gone)} dropped lemma(s)")
    for prop in protocol.properties:  # a bug: the explicit search refutes it (auto's next route)
        if prop.kind == "invariant" and not truth_table(protocol, at, rows, [prop.predicate], prop.params).all():
            return Repair([], {}, at, int(rows.shape[0]), time.monotonic() - start, violated=prop.name)
    kept = [lem for lem in lemmas if lem.name not in set(dropped)]
    out: list[Lemma] = []
    counts: dict[str, int] = {}
    holding = [lem.name for lem in gone if truth_table(protocol, at, rows, [lem.fn], lem.params).all()]
    for lem in gone:
        if deadline is not None and time.monotonic() > deadline:
            break
        found = [] if lem.name in holding else weakenings(protocol, lem, [(at, rows)], assume=kept,
                                                          deadline=deadline)
        counts[lem.name] = len(found)
        out += found
    return Repair(out, counts, at, int(rows.shape[0]), time.monotonic() - start, holding=holding, rows=rows)


def is_offered(lem: Lemma) -> bool:
    """A weakened lemma or a new family (:mod:`deferral.checks.symbolic.strengthen`): not a shipped one."""
    from deferral.checks.symbolic.strengthen import is_new

    return is_weakened(lem) or is_new(lem)


def trim(enc: Any, alive: Sequence[Lemma], timeout: float | None = None, limit_s: float = TRIM_S) -> list[Lemma]:
    """A shorter proof for the reader: the weakened lemmas and new families of ``alive`` (a proved set)
    dropped one at a time, the last offered (weakest, most literals) first, while the rest is still inductive and
    proves the property (Z3 induction each time); within ``limit_s`` (and half of ``timeout``)."""
    from deferral.checks.symbolic.induction import check_inductive

    budget = limit_s if timeout is None else min(limit_s, timeout / 2)
    deadline = time.monotonic() + budget
    current = list(alive)
    for lem in reversed([x for x in alive if is_offered(x)]):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        trial = [x for x in current if x is not lem]
        if check_inductive(enc, trial, timeout=max(0.5, left)).status == "proved":
            current = trial
    return current


def shortened(protocol: Protocol, small: Bounds, extra: Sequence[Lemma], timeout: float | None = None) -> list[Lemma] | None:
    """The members of ``extra`` (weakened lemmas, new families) that a proof at ``small`` by the shipped
    lemmas there and ``extra`` (Houdini, induction) still needs after :func:`trim`: a short set to offer at
    larger bounds, where Houdini's queries over all of ``extra`` cost a minute (6 VCPUs, two address
    spaces) and over a short set seconds; None if ``extra`` does not prove it at ``small``. Nothing is
    proved here for other bounds: Houdini and induction there decide."""
    from deferral.checks.terms.encoding import encode
    from deferral.checks.symbolic.induction import check_inductive, houdini
    from deferral.model.invariant import invariant_for

    start = time.monotonic()

    def left() -> float | None:
        return None if timeout is None else max(0.5, timeout - (time.monotonic() - start))

    enc = encode(protocol, small)
    names = {x.name for x in extra}
    try:
        alive, _ = houdini(enc, list(invariant_for(small)) + list(extra), timeout=left())
        if check_inductive(enc, alive, timeout=left(), inductive=True).status != "proved":
            return None
        # one of them often suffices (the strongest first): a few induction checks, not a whole trim
        rest = [x for x in alive if x.name not in names]
        for one in [x for x in alive if x.name in names][:SINGLE_TRIES]:
            if check_inductive(enc, rest + [one], timeout=left()).status == "proved":
                return [one]
    except TimeoutError:
        return None
    return [x for x in trim(enc, alive, timeout=None, limit_s=left() or TRIM_S) if x.name in names]


def bounded_proof(protocol: Protocol, at: Bounds, dropped: Sequence[str], timeout: float | None = None,
                  note: Callable[[str], None] | None = None) -> tuple[list[Lemma], str]:
    """A proof at bounds ``at`` by the shipped lemmas and weakened ones (:func:`repair`, Houdini,
    induction, :func:`trim`), shortened first at the sample's bounds (cheap checks) and checked at
    ``at``; where that fails and dropped lemmas hold in every sampled state, a second round with new
    families (:func:`deferral.checks.symbolic.strengthen.joint`): the lemmas worth offering to a slower
    prover (the parametric one); [] and why if none."""
    from deferral.checks.symbolic import strengthen
    from deferral.model.invariant import invariant_for

    start = time.monotonic()

    def left() -> float | None:
        return None if timeout is None else max(1.0, timeout - (time.monotonic() - start))

    small = sample_at(at)
    lemmas = invariant_for(small)
    rep = repair(protocol, small, lemmas, dropped, timeout=None if timeout is None else timeout / 2, note=note)
    if rep.violated:
        return [], f"a reachable state at {small.short()} violates {rep.violated}"
    if not rep.candidates and not rep.holding:
        return [], f"no weakening of the dropped lemmas holds in the {rep.states} reachable states sampled"
    why = ""
    if rep.candidates:
        proof, why = _proof_at(protocol, small, at, rep.candidates, left)
        if proof:
            return proof, ""
    if rep.holding:
        budget = left()
        st = strengthen.joint(protocol, rep, lemmas, deadline=None if budget is None else time.monotonic() + 0.7 * budget,
                              note=note)
        if not st.offered:
            return [], (why + "; " if why else "") + f"strengthening: {st.why}"
        proof, why2 = _proof_at(protocol, small, at, st.offered, left)
        if proof:
            return proof, ""
        why = (why + "; " if why else "") + f"with {len(st.offered)} new families and weakened lemmas: {why2}"
    return [], why


def _proof_at(protocol: Protocol, small: Bounds, at: Bounds, extra: Sequence[Lemma],
              left: Callable[[], float | None]) -> tuple[list[Lemma], str]:
    """The shipped lemmas and ``extra``: Houdini and induction at ``small``, shortened there (:func:`trim`),
    then that short proof checked at ``at`` (all of them again where it does not carry over)."""
    from deferral.checks.terms.encoding import encode
    from deferral.checks.symbolic.induction import check_inductive, houdini
    from deferral.model.invariant import invariant_for

    tried: list[Lemma] = []
    for b in ([small] if small == at else [small, at]):
        enc = encode(protocol, b)
        names = {x.name for x in tried}
        offered = tried if tried else list(invariant_for(b)) + list(extra)
        try:
            alive, _ = houdini(enc, offered, timeout=left())
            r = check_inductive(enc, alive, timeout=left(), inductive=True)
            if r.status != "proved" and names:  # the short proof does not carry over: all of them at ``at``
                alive, _ = houdini(enc, list(invariant_for(b)) + list(extra), timeout=left())
                r = check_inductive(enc, alive, timeout=left(), inductive=True)
        except TimeoutError as exc:
            return [], f"Houdini at {b.short()}: {exc}"
        if r.status != "proved":
            return [], f"{len(extra)} weakened lemmas offered, {r.status} at {b.short()}"
        tried = trim(enc, alive, timeout=left())
    return tried, ""
