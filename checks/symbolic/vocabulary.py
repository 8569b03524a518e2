"""The literals lemma repair is built from, over a lemma's parameters, and their truth tables on sampled reachable states.

The vocabulary of :mod:`deferral.checks.symbolic.weaken` (D in "L or D") and of
:mod:`deferral.checks.symbolic.strengthen` (new families), from the protocol's declared variables
only: see weaken's module docstring. :func:`truth_table` evaluates literals and lemmas on the explicit
search's states (numpy backend of the step notation), for every parameter assignment.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations, product
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from deferral.model.bounds import Bounds
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol
from deferral.model.schema import BOOL, Domain, Enum, OrNone, Queue, Sort

if TYPE_CHECKING:
    from deferral.checks.symbolic.truth import TruthTables

#: Reachable states sampled per instance (the explicit search's first states, breadth-first).
SAMPLE_CAP = 1_500_000

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


def _read(name: str, idx: tuple[Fn, ...], text: str = "") -> Fn:
    def get(s: Any, *a: Any) -> Any:
        memo = getattr(s, "memo_reads", None)  # :func:`~deferral.checks.symbolic.truth.evaluated`'s (a read-only context): each read once
        if memo is not None and text:
            key = (text, a)
            if key not in memo:
                memo[key] = get_it(s, *a)
            return memo[key]
        return get_it(s, *a)

    def get_it(s: Any, *a: Any) -> Any:
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
                            _read(var.name, tuple(e.fn for e in idx), f"{var.name}" + "".join(f"[{e.text}]" for e in idx)),
                            1, none_of=isinstance(dom, OrNone)))
    return out


def literals(protocol: Protocol, params: Sequence[tuple[str, Domain]], b: Bounds) -> list[Literal]:
    """The vocabulary of D over ``params`` (see the module docstring), simplest first."""
    exprs = index_terms(protocol, params, b)
    usable = [e for e in exprs if not e.none_of]  # a sort-or-none value may be none: not an index
    out: list[Literal] = []

    def reads(var: Any) -> list[tuple[str, Fn, int, tuple[Expr, ...]]]:
        choices = [[e for e in usable if e.sort is x] for x in var.index]
        return [(var.name + "".join(f"[{e.text}]" for e in idx),
                 _read(var.name, tuple(e.fn for e in idx), var.name + "".join(f"[{e.text}]" for e in idx)),
                 sum(e.depth for e in idx), idx) for idx in product(*choices)]

    for var in protocol.variables:
        if isinstance(var, Queue) or not var.held(b):
            continue
        if var.domain is BOOL:
            for text, fn, cost, _ in reads(var):
                out.append(Literal(text, (lambda f: lambda s, *a: s.all([f(s, *a)]))(fn), cost))
                out.append(Literal(f"not {text}", negation(out[-1].fn), cost))
        elif isinstance(var.domain, Enum):
            for text, fn, cost, _ in reads(var):
                for val, label in enumerate(var.domain.names):
                    out.append(Literal(f"{text} = {label}", (lambda f, v: lambda s, *a: f(s, *a) == v)(fn, val), cost))
                    out.append(Literal(f"{text} != {label}", negation(out[-1].fn), cost))
    for x, y in combinations(exprs, 2):
        if x.sort is not y.sort or (x.depth == 0 and y.depth == 0) or (x.none_of and y.none_of):
            continue  # two parameters: distinctness is the lemma's instance, not a state fact
        out.append(Literal(f"{x.text} = {y.text}", (lambda f, g: lambda s, *a: f(s, *a) == g(s, *a))(x.fn, y.fn),
                           x.depth + y.depth))
        out.append(Literal(f"{x.text} != {y.text}", negation(out[-1].fn), x.depth + y.depth))
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
                    out.append(Literal(f"{text} in {{0, {rtext}}}", _zero_or(fn, rfn), cost))
                    owner = ",".join(e.text for e in idx if e.sort not in set(ref.index))
                    by_place.setdefault((owner, rtext), []).append(out[-1].fn)
    for (owner, place), fns in by_place.items():
        if len(fns) > 1:
            out.append(Literal(f"every entry of {owner} at {place} is 0 or {place}", _every(tuple(fns)), 1))
    seen: set[str] = set()
    uniq = []
    for lit in sorted(out, key=lambda x: x.cost):
        if lit.text not in seen:
            seen.add(lit.text)
            uniq.append(lit)
    return uniq


def _zero_or(f: Fn, g: Fn) -> Fn:
    def fn(s: Any, *a: Any) -> Any:
        v = f(s, *a)
        return (v == 0) | (v == g(s, *a))
    return fn


def negation(fn: Fn) -> Fn:
    """``not fn`` (:func:`~deferral.checks.symbolic.truth.evaluated` computes it from ``fn``'s values, once for both)."""
    def neg(s: Any, *a: Any) -> Any:
        return s.not_(fn(s, *a))

    neg.negation_of = fn  # type: ignore[attr-defined]
    return neg


def _every(fns: tuple[Fn, ...]) -> Fn:
    """All of ``fns`` (literals of the vocabulary too: :func:`~deferral.checks.symbolic.truth.evaluated` reuses their values)."""
    def fn(s: Any, *a: Any) -> Any:
        return s.all(f(s, *a) for f in fns)

    fn.all_of = fns  # type: ignore[attr-defined]
    return fn


def truth_table(protocol: Protocol, b: Bounds, rows: np.ndarray, fns: Sequence[Fn],
                params: Sequence[tuple[str, Domain]], tables: "TruthTables | None" = None) -> np.ndarray:
    """Per function, the truth value on every (parameter assignment, state): shape (len(fns), A * states).
    ``tables``: compiled and kept for calls to come (:mod:`~deferral.checks.symbolic.truth`; a caller that asks
    again and again owns one); without, each function is called per assignment on the numpy backend."""
    from deferral.checks.symbolic.truth import evaluated

    if tables is not None:
        return tables.table(b, rows, fns, params)
    return evaluated(protocol, b, rows, fns, params)


def column_masks(table: np.ndarray) -> tuple[list[int], int]:
    """Each row of a boolean table over its distinct columns as an int bit mask, and the all-ones mask
    (a set of rows covers every column iff it covers every distinct one)."""
    return bit_masks(distinct_columns(table))


def distinct_columns(table: np.ndarray) -> np.ndarray:
    """A boolean table's distinct columns (in their first order)."""
    if not table.shape[0]:
        return table[:, :min(1, table.shape[1])]
    packed = np.ascontiguousarray(np.packbits(table, axis=0).T)  # one row of bytes per column
    _, first = np.unique(packed.view(f"V{packed.shape[1]}").ravel(), return_index=True)
    return table[:, np.sort(first)]


def bit_masks(cols: np.ndarray) -> tuple[list[int], int]:
    """Each row of a boolean table as an int bit mask (bit c: column c), and the all-ones mask."""
    masks = [int.from_bytes(np.packbits(row, bitorder="little").tobytes(), "little") for row in cols]
    return masks, (1 << cols.shape[1]) - 1


def sample_rows(protocol: Protocol, b: Bounds, cap: int = SAMPLE_CAP, time_limit: float | None = None,
                spread: int = 1) -> np.ndarray:
    """Reachable states at ``b`` (breadth-first, symmetry-reduced, at most ``cap``), unpacked. ``spread``
    > 1: the search goes on to ``spread * cap`` states (the whole instance where it has fewer) and
    ``cap`` of them are drawn at random (seeded): states of every level, not only the first levels (the
    first 50,000 of the 3.3 million states at 2,1,1,1,S=2 are its 15 shallowest levels of 36: 361 of the
    families true in them were false deeper, and Houdini spent its rounds dropping them; PROVE.md,
    5 Dec, late morning)."""
    from deferral.checks.explicit.vectorized import reachable_levels
    from deferral.model.concrete import Model

    levels = reachable_levels(Model(protocol, b), max_states=cap * max(1, spread), time_limit=time_limit)
    keys = levels.keys
    if keys.shape[0] > cap:
        keys = keys[np.sort(np.random.default_rng(0).choice(keys.shape[0], cap, replace=False))]
    return levels.packer.unpack(keys)


def is_weakened(lem: Lemma) -> bool:
    """Is ``lem`` a weakened lemma, "(L) or D" (:func:`deferral.checks.symbolic.weaken.weakened`)?"""
    return lem.name.startswith("(") and ") or " in lem.name
