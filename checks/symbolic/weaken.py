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
  sampled assignments) first; a few per lemma.

Nothing here is trusted: the weakened lemmas are candidates beside the shipped ones, and
Houdini and induction (bounded, or over uninterpreted sorts by ``--parametric``) decide. A
buggy variant is never proved: no inductive invariant implies a property it violates.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from itertools import combinations, product
from typing import Any, Callable, Sequence

import numpy as np

from deferral.model.bounds import Bounds
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol
from deferral.model.schema import BOOL, Domain, Enum, OrNone, Queue, Sort

#: At most this many weakened versions of one lemma are offered; D has at most MAX_D literals.
PER_LEMMA, MAX_D = 40, 3
#: Literals kept for the 3-literal search (those covering most of the failing assignments).
TRIPLE_POOL = 40
#: Reachable states sampled per instance (the explicit search's first states, breadth-first).
SAMPLE_CAP = 1_500_000
#: States (randomly chosen from the sample) on which a D's strength is measured; a Z3 query's limit (ms).
STRENGTH_SAMPLE, TRIVIAL_MS = 4000, 2000
#: Shortening a proof (trim) takes at most this long.
TRIM_S = 10.0
#: Shortening a proof (trim) takes at most this long.

Fn = Callable[..., Any]  # (s, *args) -> a truth value on the context's backend


@dataclass(frozen=True)
class Expr:
    """An index term over the lemma's parameters: a parameter, or a sort-valued variable read at them."""

    text: str
    sort: Domain  # the sort of its value (a Sort); ``none_of`` set for a sort-or-none value
    fn: Fn
    depth: int  # 0 a parameter, 1 a read
    none_of: bool = False


@dataclass(frozen=True)
class Literal:
    text: str
    fn: Fn
    cost: int  # simplicity: parameters and plain reads first


def _param(n: int) -> Fn:
    return lambda s, *a: a[n]


def _read(name: str, idx: tuple[Fn, ...]) -> Fn:
    def get(s: Any, *a: Any) -> Any:
        v = getattr(s, name)
        for f in idx:
            v = v[f(s, *a)]
        return v
    return get


def index_terms(protocol: Protocol, params: Sequence[tuple[str, Domain]], b: Bounds) -> list[Expr]:
    """The parameters, then each variable of a sort (or sort-or-none) domain read at parameters."""
    out = [Expr(n, d, _param(j), 0) for j, (n, d) in enumerate(params) if isinstance(d, Sort)]
    for var in protocol.variables:
        if isinstance(var, Queue) or not var.held(b) or not var.index:
            continue
        dom = var.domain
        sort = dom.sort if isinstance(dom, OrNone) else dom
        if not isinstance(sort, Sort):
            continue
        choices = [[e for e in out if e.depth == 0 and e.sort is x] for x in var.index]
        for idx in product(*choices):
            out.append(Expr(f"{var.name}" + "".join(f"[{e.text}]" for e in idx), sort,
                            _read(var.name, tuple(e.fn for e in idx)), 1, none_of=isinstance(dom, OrNone)))
    return out


def literals(protocol: Protocol, params: Sequence[tuple[str, Domain]], b: Bounds) -> list[Literal]:
    """The vocabulary of D over ``params`` (see the module docstring), simplest first."""
    exprs = index_terms(protocol, params, b)
    usable = [e for e in exprs if not e.none_of]  # a sort-or-none value may be none: not an index
    out: list[Literal] = []

    def reads(var: Any) -> list[tuple[str, Fn, int, tuple[Expr, ...]]]:
        choices = [[e for e in usable if e.sort is x] for x in var.index]
        return [(var.name + "".join(f"[{e.text}]" for e in idx), _read(var.name, tuple(e.fn for e in idx)),
                 sum(e.depth for e in idx), idx) for idx in product(*choices)]

    for var in protocol.variables:
        if isinstance(var, Queue) or not var.held(b):
            continue
        if var.domain is BOOL:
            for text, fn, cost, _ in reads(var):
                out.append(Literal(text, (lambda f: lambda s, *a: s.all([f(s, *a)]))(fn), cost))
                out.append(Literal(f"not {text}", (lambda f: lambda s, *a: s.not_(f(s, *a)))(fn), cost))
        elif isinstance(var.domain, Enum):
            for text, fn, cost, _ in reads(var):
                for val, label in enumerate(var.domain.names):
                    out.append(Literal(f"{text} = {label}", (lambda f, v: lambda s, *a: f(s, *a) == v)(fn, val), cost))
                    out.append(Literal(f"{text} != {label}",
                                       (lambda f, v: lambda s, *a: f(s, *a) != v)(fn, val), cost))
    for x, y in combinations(exprs, 2):
        if x.sort is not y.sort or (x.depth == 0 and y.depth == 0) or (x.none_of and y.none_of):
            continue  # two parameters: distinctness is the lemma's instance, not a state fact
        out.append(Literal(f"{x.text} = {y.text}", (lambda f, g: lambda s, *a: f(s, *a) == g(s, *a))(x.fn, y.fn),
                           x.depth + y.depth))
        out.append(Literal(f"{x.text} != {y.text}", (lambda f, g: lambda s, *a: f(s, *a) != g(s, *a))(x.fn, y.fn),
                           x.depth + y.depth))
    # data values (frames): 0, the value of a data variable of the same domain not indexed by the
    # symmetric sort (the guest's) at the same place, or either ("fresh"); and all of one element's fresh
    data = [v for v in protocol.variables if not isinstance(v, Queue) and v.held(b) and v.domain is not BOOL
            and not isinstance(v.domain, (Enum, Sort, OrNone)) and not hasattr(v.domain, "top")]
    refs = [v for v in data if not any(getattr(x, "symmetric", False) for x in v.index)]
    by_place: dict[tuple[str, str], list[Fn]] = {}
    for var in data:
        if var in refs:
            continue
        for text, fn, cost, idx in reads(var):
            out.append(Literal(f"{text} = 0", (lambda f: lambda s, *a: f(s, *a) == 0)(fn), cost))
            at = {e.sort: e for e in idx}
            for ref in refs:
                if ref.domain is not var.domain:
                    continue
                for rtext, rfn, _, ridx in reads(ref):
                    if any(e.sort in at and at[e.sort] is not e for e in ridx):
                        continue  # not the same place
                    out.append(Literal(f"{text} in {{0, {rtext}}}",
                                       (lambda f, g: lambda s, *a: (f(s, *a) == 0) | (f(s, *a) == g(s, *a)))(fn, rfn),
                                       cost))
                    owner = ",".join(e.text for e in idx if e.sort not in set(ref.index))
                    by_place.setdefault((owner, rtext), []).append(out[-1].fn)
    for (owner, place), fns in by_place.items():
        if len(fns) > 1:
            out.append(Literal(f"every entry of {owner} at {place} is 0 or {place}",
                               (lambda fs: lambda s, *a: s.all(f(s, *a) for f in fs))(tuple(fns)), 1))
    seen: set[str] = set()
    uniq = []
    for lit in sorted(out, key=lambda x: x.cost):
        if lit.text not in seen:
            seen.add(lit.text)
            uniq.append(lit)
    return uniq


def _truth(ctx: Any, fn: Fn, args: Sequence[int], n: int) -> np.ndarray:
    v = fn(ctx, *args)
    return np.broadcast_to(np.asarray(v, dtype=bool), (n,))


def _table(protocol: Protocol, b: Bounds, rows: np.ndarray, fns: Sequence[Fn],
           params: Sequence[tuple[str, Domain]]) -> np.ndarray:
    """Per function, the truth value on every (parameter assignment, state): shape (len(fns), A * states)."""
    from deferral.checks.explicit.numpy_ops import NUMPY, _Columns
    from deferral.model.context import StepContext

    layout = protocol.layout(b)
    ctx = StepContext(layout, NUMPY, _Columns(rows), copy_values=False)
    assigns = list(product(*(range(d.size(b)) for _, d in params)))
    n = rows.shape[0]
    return np.stack([np.concatenate([_truth(ctx, f, a, n) for a in assigns]) for f in fns])


def sample_rows(protocol: Protocol, b: Bounds, cap: int = SAMPLE_CAP, time_limit: float | None = None) -> np.ndarray:
    """Reachable states at ``b`` (breadth-first, symmetry-reduced, at most ``cap``), unpacked."""
    from deferral.checks.explicit.vectorized import reachable_levels
    from deferral.model.concrete import Model

    levels = reachable_levels(Model(protocol, b), max_states=cap, time_limit=time_limit)
    return levels.packer.unpack(levels.keys)


def weakenings(protocol: Protocol, lemma: Lemma, samples: Sequence[tuple[Bounds, np.ndarray]],
               assume: Sequence[Lemma] = (), per_lemma: int | None = None,
               deadline: float | None = None) -> list[Lemma]:
    """Weakened versions "lemma or D" true in every sampled state (see the module docstring);
    [] where the lemma holds in every sampled state (nothing to learn D from) or no D of at
    most MAX_D literals covers the states where it fails. A D that ``assume`` (the lemmas
    Houdini kept) and "not lemma" imply at the first sample's bounds is left out (it would
    make the lemma a consequence of the others: no information)."""
    per_lemma = PER_LEMMA if per_lemma is None else per_lemma
    if not samples or per_lemma <= 0:
        return []
    at = samples[0][0]
    lits = literals(protocol, lemma.params, at)
    parts, strong = [], []
    rng = np.random.default_rng(0)
    for b, rows in samples:
        if rows.shape[0] == 0:
            continue
        holds = _table(protocol, b, rows, [lemma.fn], lemma.params)[0]
        if holds.all():
            continue
        bad_states = rows[np.unique(np.nonzero(~holds)[0] % rows.shape[0])]
        sub = _table(protocol, b, bad_states, [lemma.fn], lemma.params)[0]
        parts.append(_table(protocol, b, bad_states, [x.fn for x in lits], lemma.params)[:, ~sub])
        some = rows[rng.choice(rows.shape[0], min(STRENGTH_SAMPLE, rows.shape[0]), replace=False)]
        strong.append(_table(protocol, b, some, [x.fn for x in lits], lemma.params))
    if not parts or not lits:
        return []
    cover = np.concatenate(parts, axis=1)  # literal x failing (assignment, state)
    often = np.concatenate(strong, axis=1)  # literal x sampled (assignment, state): D true there = weaker
    masks = [int.from_bytes(np.packbits(row, bitorder="little").tobytes(), "little") for row in cover]
    full = (1 << cover.shape[1]) - 1
    check = _Trivial(protocol, at, lemma, assume)
    useful = [j for j, m in enumerate(masks) if m and not check([lits[j]])]
    found: list[tuple[int, ...]] = []

    def late() -> bool:
        return deadline is not None and time.monotonic() > deadline

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
    # fewest literals first, then the strongest D (true in the fewest sampled assignments), the simplest
    found.sort(key=lambda f: (len(f), int(often[list(f)].any(axis=0).sum()), sum(lits[j].cost for j in f), f))
    out = []
    for combo in found[:per_lemma * 3]:
        chosen = [lits[j] for j in combo]
        if len(combo) == 1 or not check(chosen):
            out.append(weakened(lemma, chosen))
        if len(out) >= per_lemma or late():
            break
    return out


class _Trivial:
    """Is "not lemma implies D" valid given the ``assume`` lemmas, at bounds ``b`` (Z3, one state)?"""

    def __init__(self, protocol: Protocol, b: Bounds, lemma: Lemma, assume: Sequence[Lemma]) -> None:
        import z3

        from deferral.checks.symbolic.encoding import encode
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
        if prop.kind == "invariant" and not _table(protocol, at, rows, [prop.predicate], prop.params).all():
            return Repair([], {}, at, int(rows.shape[0]), time.monotonic() - start, violated=prop.name)
    kept = [lem for lem in lemmas if lem.name not in set(dropped)]
    out: list[Lemma] = []
    counts: dict[str, int] = {}
    for lem in gone:
        if deadline is not None and time.monotonic() > deadline:
            break
        found = weakenings(protocol, lem, [(at, rows)], assume=kept, deadline=deadline)
        counts[lem.name] = len(found)
        out += found
    return Repair(out, counts, at, int(rows.shape[0]), time.monotonic() - start)


def is_weakened(lem: Lemma) -> bool:
    return lem.name.startswith("(") and ") or " in lem.name


def trim(enc: Any, alive: Sequence[Lemma], timeout: float | None = None, limit_s: float = TRIM_S) -> list[Lemma]:
    """A shorter proof for the reader: the weakened lemmas of ``alive`` (a proved set) dropped one at
    a time, the last offered (weakest, most literals) first, while the rest is still inductive and
    proves the property (Z3 induction each time); within ``limit_s`` (and half of ``timeout``)."""
    from deferral.checks.symbolic.induction import check_inductive

    budget = limit_s if timeout is None else min(limit_s, timeout / 2)
    deadline = time.monotonic() + budget
    current = list(alive)
    for lem in reversed([x for x in alive if is_weakened(x)]):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        trial = [x for x in current if x is not lem]
        if check_inductive(enc, trial, timeout=max(0.5, left)).status == "proved":
            current = trial
    return current


def bounded_proof(protocol: Protocol, at: Bounds, dropped: Sequence[str], timeout: float | None = None,
                  note: Callable[[str], None] | None = None) -> tuple[list[Lemma], str]:
    """A proof at bounds ``at`` by the shipped lemmas and weakened ones (:func:`repair`, Houdini,
    induction, :func:`trim`), shortened first at the sample's bounds (cheap checks) and checked at
    ``at``: the lemmas worth offering to a slower prover (the parametric one); [] and why if none."""
    from deferral.checks.symbolic.encoding import encode
    from deferral.checks.symbolic.induction import check_inductive, houdini
    from deferral.model.invariant import invariant_for

    start = time.monotonic()

    def left() -> float | None:
        return None if timeout is None else max(1.0, timeout - (time.monotonic() - start))

    small = sample_at(at)
    lemmas = invariant_for(small)
    rep = repair(protocol, small, lemmas, dropped, timeout=None if timeout is None else timeout / 2, note=note)
    if rep.violated:
        return [], f"a reachable state at {small.short()} violates {rep.violated}"
    if not rep.candidates:
        return [], f"no weakening of the dropped lemmas holds in the {rep.states} reachable states sampled"
    tried = []
    for b in ([small] if small == at else [small, at]):
        enc = encode(protocol, b)
        names = {x.name for x in tried}
        offered = tried if tried else list(invariant_for(b)) + rep.candidates
        try:
            alive, _ = houdini(enc, offered, timeout=left())
            r = check_inductive(enc, alive, timeout=left(), inductive=True)
        except TimeoutError as exc:
            return [], f"Houdini at {b.short()}: {exc}"
        if r.status != "proved" and names:  # the short proof does not carry over: all of them at ``at``
            alive, _ = houdini(enc, list(invariant_for(b)) + rep.candidates, timeout=left())
            r = check_inductive(enc, alive, timeout=left(), inductive=True)
        if r.status != "proved":
            return [], f"{len(rep.candidates)} weakened lemmas offered, {r.status} at {b.short()}"
        tried = trim(enc, alive, timeout=left())
    return tried, ""
