"""Invariant inference from reachable states: lemma families learned on small instances, kept by Houdini.

The data-driven approach of DistAI (OSDI 2021) and DuoAI (OSDI 2022), property-directed:

* **Vocabulary.** Quantified variables of each index sort the protocol declares (its
  variables' index sorts: VCPUs ``i``, ``k``, pages ``p``, ...; variables of one sort are
  distinct). *Terms* are the protocol's declared variables read at those variables (and
  at one nested term of the right sort, e.g. ``req[k][pg[i]]`` or ``queue[lw[p]]``), a
  queue's length (empty / mid / full) and "queue holds page", and equalities between two
  symmetric values (``shadow[k][p] = gpt[p]``). A term's value is abstracted by what the
  model can distinguish: enums, booleans and lengths as they are; a symmetric value
  (a VCPU, a page, a frame) as a named constant (``none``, frame ``0``), one of the
  quantified variables, or ``other``; ``undef`` where a nested index is ``none``.
* **Samples.** :func:`samples` evaluates every term on every state the explicit search
  reaches at small bounds (:func:`deferral.checks.explicit.vectorized.reachable_levels`),
  for every assignment of the quantified variables: a table of abstract rows.
* **Families.** A :class:`Family` is a set of terms and the value tuples observed for
  them: "for all distinct i, k, p: (t1, ..., tn) is one of these". True in every sampled
  state by construction; a candidate for other bounds.
* **Property-directed.** :func:`infer` starts from the invariant properties; each
  counterexample to induction (a state that satisfies the candidates and leaves the
  property or a candidate) is excluded by the smallest family (greedy set cover over
  the sampled rows) under which it was never observed. Houdini keeps the inductive
  families at the requested bounds; induction checks they imply the properties.

Soundness does not depend on the samples: whatever is kept is checked by Z3 at the
requested bounds (:mod:`deferral.checks.symbolic.induction`). The learned families are
shown one line each and saved as ``deferral-lemmas/2`` (``--invariant-out``/``--lemmas``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from itertools import permutations, product
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import z3

from deferral.checks.terms.encoding import Encoding, encode
from deferral.checks.symbolic.induction import instances
from deferral.model.bounds import STANDARD, Bounds
from deferral.model.concrete import Model, State
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol
from deferral.model.schema import BOOL, Domain, Enum, Layout, OrNone, Pair, Queue, Range, Sort, Var

FORMAT = "deferral-lemmas/2"
#: Abstract value codes (besides the small concrete values of enums, booleans and lengths).
UNDEF, OTHER, CONST, VAR = 255, 250, 200, 210
EMPTY, MID, FULL = 0, 1, 2
#: Names of quantified variables per sort (by the sort's name); other sorts use its initial.
VAR_NAMES = {"vcpu": ("i", "k", "j"), "page": ("p", "q", "r")}
#: :func:`deferral.checks.symbolic.diagram.diagram_families`, handed in by the caller (that module
#: builds on this one): ``(protocol, samples, state, bounds, *, banned, deadline) -> families``.
DiagramFamilies = Callable[..., list[Any]]


class InferError(ValueError):
    """A lemma file this module cannot read, or a protocol it cannot describe."""


# ---- sorts and values ------------------------------------------------------------------------
def index_sorts(protocol: Protocol | Layout) -> list[Domain]:
    """The index sorts the protocol declares (in order of first use by its variables)."""
    out: list[Domain] = []
    for var in protocol.variables:
        for sort in var.index:
            if sort not in out:
                out.append(sort)
    return out


def value_sort(domain: Domain, sorts: Sequence[Domain], b: Bounds) -> tuple[str, Any]:
    """How a domain's values are abstracted: ("concrete", None), ("sort", (sort, consts)) or ("data", consts).

    A sort-or-none domain ranges over its sort (none is a named constant); an index
    sort's own domain over itself; an enum, bool or integer
    range is concrete; any other domain (frames) is data compared by equality, its
    default value a named constant.
    """
    if domain is BOOL or isinstance(domain, (Enum, Range)):
        return "concrete", None
    if isinstance(domain, OrNone) and domain.sort in sorts:
        return "sort", (domain.sort, (("none", domain.none(b)),))
    if isinstance(domain, Sort) and domain in sorts:
        return "sort", (domain, ())
    return "data", (("0", domain.default(b)),)


def item_sorts(domain: Domain, sorts: Sequence[Domain]) -> list[Domain]:
    """The index sorts a queue item is made of: the sort itself, or a pair's two sorts; [] if other."""
    parts = [domain.first, domain.second] if isinstance(domain, Pair) else [domain]
    return parts if all(x in sorts for x in parts) else []


def idx_nested(idx: tuple[Any, ...]) -> bool:
    return any(isinstance(y, Term) for y in idx)


# ---- terms -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Term:
    """A value of the state at quantified variables: ``kind`` read / len / holds / eq."""

    kind: str
    var: str = ""
    index: tuple[Any, ...] = ()  # a variable name (str) or a nested read Term
    arg: Any = None  # holds: the page (name or Term); eq: the other Term

    def show(self, hide: frozenset[str] = frozenset()) -> str:
        """The term as written in a step function; variables in ``hide`` (an elided sort with one
        element, such as the only address space) are left out, as the notation leaves them out."""
        idx = "".join(f"[{x.show(hide) if isinstance(x, Term) else x}]" for x in self.index
                      if isinstance(x, Term) or x not in hide)
        if self.kind == "read":
            return f"{self.var}{idx}"
        if self.kind == "len":
            return f"len({self.var}{idx})"
        if self.kind == "holds":
            items = self.arg if isinstance(self.arg, tuple) else (self.arg,)
            shown = [x.show(hide) if isinstance(x, Term) else x for x in items
                     if isinstance(x, Term) or x not in hide]
            return f"{self.var}{idx} holds " + (f"({', '.join(shown)})" if len(shown) > 1 else shown[0])
        return f"{self.var}{idx} = {self.arg.show(hide)}"  # eq: var/index are the first read

    def first(self) -> "Term":
        return Term("read", self.var, self.index)

    def renamed(self, names: Mapping[str, str]) -> "Term":
        """The term with its quantified variables renamed by ``names`` (nested terms too)."""
        def sub(x: Any) -> Any:
            return x.renamed(names) if isinstance(x, Term) else names.get(x, x) if isinstance(x, str) else x

        arg = tuple(sub(x) for x in self.arg) if isinstance(self.arg, tuple) else sub(self.arg)
        return Term(self.kind, self.var, tuple(sub(x) for x in self.index), arg)

    def items(self) -> tuple[Any, ...]:
        """The item a ``holds`` term looks for, as a tuple of names or nested reads (a pair has two)."""
        return self.arg if isinstance(self.arg, tuple) else (self.arg,)

    def names(self) -> set[str]:
        out: set[str] = set()
        for x in self.index + (self.items() if self.arg is not None else ()):
            out |= x.names() if isinstance(x, Term) else {x}
        return out

    def nested(self) -> list["Term"]:
        return [x for x in self.index + (self.items() if self.kind == "holds" else ()) if isinstance(x, Term)]


@dataclass(frozen=True)
class Signature:
    """Quantified variables: ``(name, sort)`` pairs; variables of one sort are distinct."""

    vars: tuple[tuple[str, Domain], ...]

    def of(self, sort: Domain) -> list[str]:
        return [n for n, s in self.vars if s is sort]

    def show(self) -> str:
        return ", ".join(n for n, _ in self.vars)


def signatures(protocol: Protocol, twos: int = 1) -> list[Signature]:
    """One variable per index sort; then two of one sort, one of the others: for the ``twos``
    sorts most variables are indexed by (the busiest first)."""
    sorts = index_sorts(protocol)

    def names(sort: Domain) -> tuple[str, ...]:
        return VAR_NAMES.get(sort.name, tuple(f"{sort.name[0]}{n}" for n in range(1, 4)))

    out = [Signature(tuple((names(s)[0], s) for s in sorts))]
    busy = sorted((s for s in sorts if not (isinstance(s, Sort) and s.elided)),
                  key=lambda x: -sum(x in v.index for v in protocol.variables))
    for two in busy[:twos]:  # two of a sort many variables are indexed by
        out.append(Signature(tuple((n, s) for s in sorts for n in names(s)[:2 if s is two else 1])))
    return out


def terms(protocol: Protocol, sig: Signature, b: Bounds) -> list[Term]:
    """Every term over ``sig``: reads at variables or one nested read, lengths, holds, equalities."""
    sorts = index_sorts(protocol)
    plain: list[Term] = []

    def reads(var: Var, choices: list[list[Any]]) -> Iterable[tuple[Any, ...]]:
        for idx in product(*choices):
            if sum(isinstance(x, Term) for x in idx) <= 1:
                yield idx

    held = [var for var in protocol.variables if var.held(b)]  # cr3 at one space has no slots
    for var in held:
        if isinstance(var, Queue):
            continue
        for idx in product(*(sig.of(s) for s in var.index)):
            plain.append(Term("read", var.name, idx))
    nest: dict[int, list[Term]] = {}
    for t in plain:
        kind, info = value_sort(protocol.layout(b).var(t.var).domain, sorts, b)
        if kind == "sort":
            nest.setdefault(id(info[0]), []).append(t)

    def choices(sort: Domain) -> list[Any]:
        return list(sig.of(sort)) + nest.get(id(sort), [])

    out: list[Term] = []
    for var in held:
        ch = [choices(s) for s in var.index]
        if isinstance(var, Queue):
            parts = item_sorts(var.domain, sorts)
            for idx in reads(var, ch):
                out.append(Term("len", var.name, idx))
                if not parts:
                    continue
                for item in product(*(choices(x) for x in parts)):
                    inner = sum(isinstance(x, Term) for x in item)
                    if inner + sum(isinstance(y, Term) for y in idx) <= 2 and not (inner and idx_nested(idx)):
                        out.append(Term("holds", var.name, idx, item if len(item) > 1 else item[0]))
            continue
        for idx in reads(var, ch):
            out.append(Term("read", var.name, idx))
    # equalities between two plain reads of the same data sort or index sort
    layout = protocol.layout(b)
    by_sort: dict[Any, list[Term]] = {}
    for t in plain:
        kind, info = value_sort(layout.var(t.var).domain, sorts, b)
        if kind == "data":
            by_sort.setdefault(("data", layout.var(t.var).domain.name), []).append(t)
    for group in by_sort.values():
        for n, a in enumerate(group):
            for c in group[n + 1:]:
                out.append(Term("eq", a.var, a.index, c))
    return [t for t in out if t.names() <= {n for n, _ in sig.vars}]


# ---- evaluation on arrays of concrete states ----------------------------------------------------
class _Eval:
    """Terms over a batch of concrete states (rows x slots) at one assignment of the variables."""

    def __init__(self, protocol: Protocol, layout: Layout, rows: np.ndarray, env: dict[str, int]) -> None:
        self.protocol, self.layout, self.rows, self.env = protocol, layout, rows, env
        self._raw: dict[Term, np.ndarray] = {}
        self.b = layout.bounds
        self.sorts = index_sorts(protocol)
        self.n = rows.shape[0]
        self._tables: dict[tuple[str, Any], np.ndarray] = {}

    def table(self, var: Var, part: Any) -> np.ndarray:
        key = (var.name, part)
        if key not in self._tables:
            shape = var.shape(self.b)
            tab = np.zeros(shape if shape else (), dtype=np.int64)
            for idx in product(*(range(n) for n in shape)):
                tab[idx] = self.layout.where[(var.name, idx, part)]
            self._tables[key] = tab
        return self._tables[key]

    def index(self, var: Var, idx: tuple[Any, ...]) -> tuple[list[np.ndarray], np.ndarray]:
        """Index arrays, and where they are defined (a nested index that is not none)."""
        arrays, ok = [], np.ones(self.n, dtype=bool)
        for x, sort in zip(idx, var.index):
            if isinstance(x, Term):
                v = self.raw(x)
                good = v < sort.size(self.b)
                ok &= good
                arrays.append(np.where(good, v, 0))
            else:
                arrays.append(np.full(self.n, self.env[x], dtype=np.int64))
        return arrays, ok

    def read(self, var: Var, idx: tuple[Any, ...], part: Any) -> tuple[np.ndarray, np.ndarray]:
        if not any(isinstance(x, Term) for x in idx):
            slot = self.layout.where[(var.name, tuple(self.env[x] for x in idx), part)]
            return self.rows[:, slot].astype(np.int64), _TRUE(self.n)
        arrays, ok = self.index(var, idx)
        slots = self.table(var, part)[tuple(arrays)] if arrays else np.full(self.n, int(self.table(var, part)))
        return self.rows[np.arange(self.n), slots], ok

    def raw(self, t: Term) -> np.ndarray:
        """The stored value of a plain or nested read (index out of range where undefined)."""
        if t not in self._raw:
            var = self.layout.var(t.var)
            v, ok = self.read(var, t.index, None)
            self._raw[t] = np.where(ok, v, 1 << 20)
        return self._raw[t]

    def code(self, t: Term) -> np.ndarray:
        var = self.layout.var(t.var)
        if t.kind == "len":
            length, ok = self.read(var, t.index, "len")
            cap = var.cap(self.b)
            c = np.where(length == 0, EMPTY, np.where(length == cap, FULL, MID))
            return np.where(ok, c, UNDEF)
        if t.kind == "holds":
            length, ok = self.read(var, t.index, "len")
            parts = [self.raw(x) if isinstance(x, Term) else np.full(self.n, self.env[x]) for x in t.items()]
            for x in parts:
                ok &= x < (1 << 20)
            page = parts[0] if len(parts) == 1 else parts[0] * var.domain.second.size(self.b) + parts[1]
            hit = np.zeros(self.n, dtype=bool)
            for pos in range(var.cap(self.b)):
                item, _ = self.read(var, t.index, pos)
                hit |= (length > pos) & (item == page)
            return np.where(ok, hit.astype(np.int64), UNDEF)
        if t.kind == "eq":
            a, c = self.raw(t.first()), self.raw(t.arg)
            ok = (a < (1 << 20)) & (c < (1 << 20))
            return np.where(ok, (a == c).astype(np.int64), UNDEF)
        v, ok = self.read(var, t.index, None)
        kind, info = value_sort(var.domain, self.sorts, self.b)
        if kind == "concrete":
            c = v
        else:
            consts = info[1] if kind == "sort" else info
            names = [] if kind == "data" else [n for n, s in self.env_sorts() if s is info[0]]
            c = np.full(self.n, OTHER, dtype=np.int64)
            for m, name in reversed(list(enumerate(names))):
                c = np.where(v == self.env[name], VAR + self.var_no(name), c)
            for m, (_, value) in enumerate(consts):
                c = np.where(v == value, CONST + m, c)
        return np.where(ok, c, UNDEF)

    def env_sorts(self) -> list[tuple[str, Domain]]:
        return self._sig

    def var_no(self, name: str) -> int:
        return [n for n, _ in self._sig].index(name)

    def with_sig(self, sig: Signature) -> "_Eval":
        self._sig = list(sig.vars)
        return self


def _TRUE(n: int) -> np.ndarray:
    return np.ones(n, dtype=bool)


def assignments(sig: Signature, b: Bounds) -> list[dict[str, int]]:
    """Every assignment of distinct values to the variables of each sort."""
    per_sort = []
    for sort in {id(s): s for _, s in sig.vars}.values():
        names = sig.of(sort)
        per_sort.append([dict(zip(names, vals)) for vals in permutations(range(sort.size(b)), len(names))])
    out = []
    for combo in product(*per_sort):
        env: dict[str, int] = {}
        for part in combo:
            env.update(part)
        out.append(env)
    return out


def codes(protocol: Protocol, layout: Layout, rows: np.ndarray, sig: Signature, ts: Sequence[Term]) -> np.ndarray:
    """Abstract rows: one per (state, assignment of ``sig``), one column per term (uint8)."""
    envs = assignments(sig, layout.bounds)
    n = rows.shape[0]
    out = np.empty((len(ts), len(envs) * n), dtype=np.uint8)
    for e, env in enumerate(envs):
        ev = _Eval(protocol, layout, rows, env).with_sig(sig)
        for j, t in enumerate(ts):
            out[j, e * n:(e + 1) * n] = ev.code(t)
    return np.ascontiguousarray(out.T)


def unique_rows(a: np.ndarray) -> np.ndarray:
    if a.shape[0] == 0:
        return a
    a = np.ascontiguousarray(a)
    view = a.view(np.dtype((np.void, a.dtype.itemsize * a.shape[1])))
    _, first = np.unique(view, return_index=True)
    return a[np.sort(first)]


# ---- samples ------------------------------------------------------------------------------------
@dataclass
class Table:
    """The abstract rows of every sampled state for one signature."""

    sig: Signature
    terms: list[Term]
    rows: np.ndarray  # unique abstract rows (uint8)


@dataclass
class Samples:
    """Sampled reachable states at small bounds, abstracted per signature."""

    bounds: list[Bounds]
    states: int
    tables: list[Table]
    elapsed_s: float
    per_bound: list[tuple[Bounds, int, list[np.ndarray]]] = field(default_factory=list)  # rows per signature
    #: the sampled states themselves, per bound (for tables of other signatures: :meth:`table_for`)
    raw: list[tuple[Bounds, np.ndarray]] = field(default_factory=list)
    _more: dict[str, Table | None] = field(default_factory=dict, repr=False)

    def table_for(self, protocol: Protocol, sig: Signature, covers: Callable[[Bounds], bool],
                  cap: int = 30_000) -> "Table | None":
        """The abstract rows of ``sig`` (any signature) over the sampled states at the bounds
        ``covers`` accepts (at most ``cap`` states of each, a seeded choice; all of an exhaustive
        sample below it), built once; None if no sampled bound is accepted."""
        key = sig.show() + "|" + ",".join(s.name for _, s in sig.vars)
        if key not in self._more:
            parts, ts = [], None
            for b, rows in self.raw:
                if not covers(b):
                    continue
                if rows.shape[0] > cap:
                    rows = rows[np.sort(np.random.default_rng(0).choice(rows.shape[0], cap, replace=False))]
                ts = terms(protocol, sig, b) if ts is None else ts
                parts.append(unique_rows(codes(protocol, protocol.layout(b), rows, sig, ts)))
            self._more[key] = None if ts is None else Table(sig, ts, unique_rows(np.concatenate(parts)))
        return self._more[key]

    def upto(self, b: Bounds) -> "Samples":
        """The samples taken at bounds no larger than ``b`` (all of them if none is)."""
        parts = [p for p in self.per_bound if all(p[0][d.name] <= b[d.name] for d in b.decls if d.name in p[0])]
        if not parts or len(parts) == len(self.per_bound):
            return self
        tables = [Table(t.sig, t.terms, unique_rows(np.concatenate([p[2][n] for p in parts])))
                  for n, t in enumerate(self.tables)]
        keep = [p[0] for p in parts]
        return Samples(keep, sum(p[1] for p in parts), tables, self.elapsed_s, parts,
                       [r for r in self.raw if r[0] in keep])


#: Where samples are taken (each clipped to the requested bounds): the smallest instance, a third
#: VCPU, more frames and queue slots, a second page; at most this many states each.
SAMPLE_BOUNDS = (Bounds(2, 1, 1, 1), Bounds(3, 1, 1, 1), Bounds(2, 1, 2, 2), Bounds(2, 2, 1, 1))
SAMPLE_CAP = 40_000


def sample_bounds(bounds: Bounds) -> list[tuple[Bounds, int | None]]:
    """:data:`SAMPLE_BOUNDS` clipped to ``bounds`` (no larger than what is proved), duplicates dropped."""
    out: list[tuple[Bounds, int | None]] = []
    for b in SAMPLE_BOUNDS:
        small = clip(bounds, b)
        if small not in [x for x, _ in out]:
            out.append((small, SAMPLE_CAP))
    return out


#: Any bound beyond the four standard ones (address spaces) is sampled and learned at most at this.
OTHER_BOUND = 2
STANDARD_NAMES = {d.name for d in STANDARD}


def clip(bounds: Bounds, small: Bounds) -> Bounds:
    """``bounds`` no larger than ``small`` in the four standard bounds, and at most 2 in any other."""
    return bounds.replace(**{d.name: min(bounds[d.name], small[d.name] if d.name in STANDARD_NAMES
                                         else OTHER_BOUND) for d in bounds.decls})


def samples(protocol: Protocol, at: Sequence[tuple[Bounds, int | None]],
            deadline: float | None = None) -> Samples:
    """Reachable states of ``protocol`` at ``at`` (explicit search, symmetry-reduced), abstracted;
    ``deadline`` (time.monotonic) bounds the searches and the abstraction (:func:`tabulate`)."""
    return tabulate(protocol, signatures(protocol),
                    [(b, lambda b=b, cap=cap: reachable_rows(protocol, b, cap, deadline)) for b, cap in at], deadline)


def reachable_rows(protocol: Protocol, bounds: Bounds, cap: int | None, deadline: float | None = None) -> np.ndarray:
    """The reachable states at ``bounds`` (symmetry-reduced, at most ``cap``), unpacked; where ``deadline``
    (time.monotonic) passes first, those found by then (breadth-first: the shallowest; the initial state
    at least), the search's wait for its compiled loop cut short there too. The command's deadline
    (``prove --timeout``, :func:`~deferral.checks.explicit.limits.command_deadline`) bounds it too, where
    it comes first: a sample a caller did not bound ends with figures, not by the CLI's alarm."""
    from deferral.checks.explicit.limits import command_deadline
    from deferral.checks.explicit.vectorized import reachable_levels

    ends = [t for t in (deadline, command_deadline()) if t is not None]
    limit = max(0.0, min(ends) - time.monotonic()) if ends else None
    levels = reachable_levels(Model(protocol, bounds), max_states=cap, time_limit=limit)
    return levels.packer.unpack(levels.keys)


#: :func:`tabulate` abstracts a sample this many states at a time, checking its deadline in between.
TABULATE_CHUNK = 4096


def tabulate(protocol: Protocol, sigs: Sequence[Signature],
             sources: Sequence[tuple[Bounds, Callable[[], np.ndarray]]], deadline: float | None = None) -> Samples:
    """The states each source gives (its bounds, a function returning rows), abstracted per signature.

    Sources are taken in order until ``deadline`` (time.monotonic) passes, at least one; a source's
    states are abstracted :data:`TABULATE_CHUNK` at a time, and where the deadline passes within one
    only those abstracted so far are kept (the first chunk at least: a smaller sample, never a false
    one). Abstracting the 40,000 states of 2,1,1,1 at two spaces took about 2 s, after which the
    first sample used to run whatever its deadline."""
    start = time.monotonic()
    tables = [Table(sig, terms(protocol, sig, sources[0][0]), np.zeros((0, 0), dtype=np.uint8)) for sig in sigs]
    parts: list[list[np.ndarray]] = [[] for _ in sigs]
    used, count, per_bound, raw = [], 0, [], []
    for b, rows_of in sources:
        if deadline is not None and time.monotonic() > deadline and used:
            break
        rows = rows_of()
        layout = protocol.layout(b)
        chunks: list[list[np.ndarray]] = [[] for _ in sigs]
        done = 0
        while done < rows.shape[0] or done == 0:
            part = rows[done:done + TABULATE_CHUNK]
            for n, table in enumerate(tables):  # each (assignments x states x terms), as codes() orders them
                coded = codes(protocol, layout, part, table.sig, table.terms)
                chunks[n].append(coded.reshape(-1, part.shape[0], coded.shape[1]) if part.shape[0] else coded[None])
            done += part.shape[0]
            if part.shape[0] == 0 or (deadline is not None and time.monotonic() > deadline):
                break
        rows = rows[:done]
        raw.append((b, rows))
        used.append(b)
        count += rows.shape[0]
        for n in range(len(tables)):  # the rows in the order codes() gives for the states kept
            coded = np.concatenate(chunks[n], axis=1)
            parts[n].append(unique_rows(coded.reshape(-1, coded.shape[2])))
        per_bound.append((b, rows.shape[0], [part[-1] for part in parts]))
    for n, table in enumerate(tables):
        table.rows = unique_rows(np.concatenate(parts[n]))
    return Samples(used, count, tables, time.monotonic() - start, per_bound, raw)


# ---- families -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    """For all distinct variables of each sort, the tuple of ``terms`` is one of ``allowed``.

    ``mode`` "never" states it as the exclusion of ``forbidden`` (the combinations of
    values seen per term that were never seen together): shorter, and with the
    one-term families it says the same.
    """

    sig: Signature
    terms: tuple[Term, ...]
    rows: tuple[tuple[int, ...], ...]  # allowed ("in") or forbidden ("never") value tuples
    mode: str = "in"
    labels: tuple[tuple[str, ...], ...] = field(default=(), compare=False)
    hide: frozenset[str] = field(default=frozenset(), compare=False)  # variables of elided single sorts

    def show(self) -> str:
        """One line: "for all <its variables>: ...", those of elided single sorts left out."""
        names = [n for n, _ in self.sig.vars if n not in self.hide]
        head = f"for all {', '.join(names)}: " if names else ""
        tup = ", ".join(t.show(self.hide) for t in self.terms)
        shown = self.labels or tuple(tuple(str(c) for c in row) for row in self.rows)
        vals = ["(" + ", ".join(r) + ")" if len(r) > 1 else r[0] for r in shown]
        if len(self.terms) > 1:
            tup = f"({tup})"
        if self.mode == "never":
            return f"{head}never {tup} = {' or '.join(vals)}"
        return f"{head}{tup} in {{{', '.join(vals)}}}"

    def lemma(self, memo: dict[Any, Any] | None = None) -> Lemma:
        """The family as a lemma; ``memo`` shares term encodings between families (symbolic backends)."""
        return Lemma(self.show(), self.sig.vars, lambda s, *args: self._holds(s, *args, memo=memo))

    def _holds(self, s: Any, *args: int, memo: dict[Any, Any] | None = None) -> Any:
        env = dict(zip((n for n, _ in self.sig.vars), args))
        for sort in {id(x): x for _, x in self.sig.vars}.values():
            vals = [env[n] for n in self.sig.of(sort)]
            if len(set(vals)) != len(vals):
                return True  # not an instance: variables of a sort are distinct
        ctx = _Sym(s, self.sig, env, memo)
        cases = (s.all(ctx.match(t, c) for t, c in zip(self.terms, row)) for row in self.rows)
        if self.mode == "never":
            return s.all(s.not_(x) for x in cases)
        return s.any(cases)

    def to_json(self) -> dict[str, Any]:
        return {"vars": [[n, s.name] for n, s in self.sig.vars], "terms": [t.show() for t in self.terms],
                "mode": self.mode, "values": [list(r) for r in self.labels], "shown": self.show()}


class _Sym:
    """Matching a term against an abstract value on a step context (any backend)."""

    def __init__(self, s: Any, sig: Signature, env: dict[str, int], memo: dict[Any, Any] | None = None) -> None:
        self.s, self.sig, self.env = s, sig, env
        self.memo = None if memo is None or s.ops.concrete else memo
        if self.memo is not None:
            first = s.values[0]
            self.key = (getattr(getattr(first, "term", first), "get_id", lambda: id(first))(),
                        tuple(sorted(env.items())))
        self.layout = s._layout
        self.sorts = list({id(x): x for _, x in sig.vars}.values())

    def defined(self, t: Term) -> Any:
        """The nested indices of ``t`` are not none (True if there are none)."""
        conds = []
        for x in t.nested() + ([t.arg] if t.kind == "eq" else []):
            if isinstance(x, Term):
                var = self.layout.var(x.var)
                kind, info = value_sort(var.domain, index_sorts(self.layout), self.s.bounds)
                if kind == "sort" and info[1]:
                    conds.append(self.value(x) != info[0].size(self.s.bounds))
        return conds

    def value(self, t: Term) -> Any:
        s = self.s
        view = getattr(s, t.var)
        for x in t.index:
            view = view[self.value(x) if isinstance(x, Term) else self.env[x]]
        return view

    def match(self, t: Term, code: int) -> Any:
        if self.memo is None:
            return self._match(t, code)
        key = (self.key, t, code)
        if key not in self.memo:
            self.memo[key] = self._match(t, code)
        return self.memo[key]

    def _match(self, t: Term, code: int) -> Any:
        s = self.s
        conds = self.defined(t)
        if code == UNDEF:
            return s.not_(s.all(conds)) if conds else False
        if s.ops.concrete and not all(conds):
            return False
        body = self._body(t, code)
        return s.all(conds + [body])

    def _body(self, t: Term, code: int) -> Any:
        s = self.s
        if t.kind == "len":
            q = self.value(t)
            return {EMPTY: q.length == 0, FULL: q.length == q.capacity,
                    MID: (q.length != 0) & (q.length != q.capacity)}[code]
        if t.kind == "holds":
            q = self.value(t)
            parts = [self.value(x) if isinstance(x, Term) else self.env[x] for x in t.items()]
            page = parts[0] if len(parts) == 1 else self.layout.var(t.var).domain.make(s, parts[0], parts[1])
            hit = s.any((q.length > pos) & (q[pos] == page) for pos in range(q.capacity))
            return hit if code else s.not_(hit)
        if t.kind == "eq":
            hit = self.value(t.first()) == self.value(t.arg)
            return hit if code else s.not_(hit)
        v = self.value(t)
        var = self.layout.var(t.var)
        kind, info = value_sort(var.domain, index_sorts(self.layout), s.bounds)
        if kind == "concrete":
            if var.domain is BOOL:
                return v if code else s.not_(v)
            return v == code
        consts = info[1] if kind == "sort" else info
        names = [] if kind == "data" else [n for n, x in self.sig.vars if x is info[0]]
        if CONST <= code < CONST + len(consts):
            return v == consts[code - CONST][1]
        if code >= VAR and code < OTHER:
            return v == self.env[[n for n, _ in self.sig.vars][code - VAR]]
        return s.all([v != c for _, c in consts] + [v != self.env[n] for n in names])


def label(t: Term, code: int, sig: Signature, layout: Layout) -> str:
    """The display form of an abstract value of ``t``."""
    if code == UNDEF:
        return "undef"
    if t.kind == "len":
        return {EMPTY: "empty", MID: "mid", FULL: "full"}[code]
    if t.kind in ("holds", "eq"):
        return "true" if code else "false"
    var = layout.var(t.var)
    kind, info = value_sort(var.domain, index_sorts(layout), layout.bounds)
    if kind == "concrete":
        return str(var.domain.show(code, layout.bounds)).lower() if var.domain is BOOL else str(
            var.domain.show(code, layout.bounds))
    consts = info[1] if kind == "sort" else info
    if CONST <= code < CONST + len(consts):
        return consts[code - CONST][0]
    if VAR <= code < OTHER:
        return [n for n, _ in sig.vars][code - VAR]
    return "other"


def family(table: Table, cols: Sequence[int], layout: Layout, row: np.ndarray | None = None) -> Family:
    """The family of the terms ``cols`` of ``table``: the tuples observed in the samples.

    Stated as "never" the unseen combinations of the values seen per term when that is
    shorter and still excludes ``row`` (a state to exclude), else as "in" the seen tuples.
    """
    cols = sorted(cols)
    seen = unique_rows(table.rows[:, cols])
    allowed = sorted(tuple(int(x) for x in r) for r in seen)
    ts = tuple(table.terms[c] for c in cols)
    per = [sorted({r[n] for r in allowed}) for n in range(len(cols))]
    forbidden = sorted(set(product(*per)) - set(allowed))
    inside = row is None or all(int(row[c]) in per[n] for n, c in enumerate(cols))
    mode, rows = ("never", forbidden) if len(cols) > 1 and inside and len(forbidden) < len(allowed) else (
        "in", allowed)
    labels = tuple(tuple(label(t, c, table.sig, layout) for t, c in zip(ts, r)) for r in rows)
    return Family(table.sig, ts, tuple(rows), mode, labels, elided(table.sig, layout.bounds))


def elided(sig: Signature, b: Bounds) -> frozenset[str]:
    """The variables of ``sig`` of an elided sort with one element at ``b`` (not shown)."""
    return frozenset(n for n, s in sig.vars if isinstance(s, Sort) and s.single(b))


def _codes_of(t: Term, table: Table, layout: Layout) -> list[int]:
    """Every abstract value ``t`` can take (to tell a one-term family that says something)."""
    if t.kind in ("holds", "eq"):
        vals = [0, 1]
    elif t.kind == "len":
        vals = [EMPTY, MID, FULL]
    else:
        var = layout.var(t.var)
        kind, info = value_sort(var.domain, index_sorts(layout), layout.bounds)
        if kind == "concrete":
            vals = list(range(var.domain.size(layout.bounds)))
        else:
            consts = info[1] if kind == "sort" else info
            names = [] if kind == "data" else [n for n, x in table.sig.vars if x is info[0]]
            vals = [CONST + m for m in range(len(consts))] + [VAR + [n for n, _ in table.sig.vars].index(x)
                                                               for x in names] + [OTHER]
    return vals + ([UNDEF] if t.nested() or (t.kind == "eq" and isinstance(t.arg, Term) and t.arg.nested())
                   else [])


def _cost(t: Term) -> float:
    return 1.0 + 0.3 * len(t.nested()) + (0.1 if t.kind == "eq" else 0.0)


#: Tables with more rows than this are searched on every k-th row first (a column set that
#: excludes a state from every row excludes it from those), each set found then checked on all.
SEARCH_ROWS, VERIFY = 20_000, 400


def excluding(table: Table, row: np.ndarray, size: int, banned: set[tuple[int, ...]], limit: int = 3,
              memo: dict[Any, Any] | None = None) -> list[tuple[int, ...]]:
    """Up to ``limit`` cheapest column sets of ``size`` on which no sampled row equals ``row``.
    ``memo`` (one per table and state, kept by the caller across sizes) holds the distinct
    patterns of which columns the sampled rows match: computed once, not once per size."""
    memo = {} if memo is None else memo
    rows = table.rows
    if rows.shape[0] <= SEARCH_ROWS:
        return _excluding(rows, table.terms, row, size, banned, limit, memo)
    out: list[tuple[int, ...]] = []
    step = -(-rows.shape[0] // SEARCH_ROWS)
    full = None
    for key in _excluding(rows[::step], table.terms, row, size, banned, VERIFY, memo):
        if full is None:
            full = rows == row[None, :]
        if not full[:, list(key)].all(axis=1).any():
            out.append(key)
            if len(out) >= limit:
                break
    return out


def _match(rows: np.ndarray, row: np.ndarray, size: int, memo: dict[Any, Any]) -> np.ndarray:
    """Which columns each row of ``rows`` shares with ``row`` (a bool matrix); for ``size`` above 1
    one row per distinct pattern (only which columns a row matches matters), those matching at
    least ``size`` columns. The distinct patterns are memoized (they do not depend on ``size``)."""
    if size == 1:
        return rows == row[None, :]
    if "patterns" not in memo:
        match = rows == row[None, :]
        width = match.shape[1]
        memo["patterns"] = np.unpackbits(unique_rows(np.packbits(match, axis=1)), axis=1)[:, :width].astype(bool)
    patterns = memo["patterns"]
    return patterns[patterns.sum(axis=1) >= size]


def _excluding(rows: np.ndarray, terms: Sequence[Term], row: np.ndarray, size: int,
               banned: set[tuple[int, ...]], limit: int, memo: dict[Any, Any] | None = None) -> list[tuple[int, ...]]:
    match = _match(rows, row, size, {} if memo is None else memo)
    counts = match.sum(axis=0)
    cv = np.array([_cost(t) for t in terms], dtype=np.float64)
    if size == 1:
        cols = np.flatnonzero(counts == 0)
        return _cheapest(cv[cols], cols[:, None], banned, limit)
    costs: list[np.ndarray] = []
    keys: list[np.ndarray] = []

    def pairs(sub: np.ndarray, fixed: Sequence[int]) -> None:
        """Column pairs (c < d) no row of ``sub`` matches both of, besides ``fixed``: their keys and costs."""
        m = sub.astype(np.float32)
        zero = np.triu((m.T @ m) == 0, 1)
        if size == 2:
            zero &= (counts > 0)[:, None] & (counts > 0)[None, :]
        for a in fixed:
            zero[a, :] = False
            zero[:, a] = False
        c, d = np.nonzero(zero)
        base = 0.0
        for a in fixed:  # the costs added left to right (the same floats as before, so the same ties)
            base = base + cv[a]
        total = (base + cv[c]) + cv[d]
        cols = [np.full(len(c), a, dtype=np.int64) for a in fixed] + [c.astype(np.int64), d.astype(np.int64)]
        keys.append(np.sort(np.stack(cols, axis=1), axis=1))
        costs.append(total)

    if size == 2:
        pairs(match, ())
    elif size == 3:
        for a in [int(c) for c in np.argsort(counts) if counts[c]][:16]:
            pairs(match[match[:, a]], (a,))
    elif size == 4:  # two columns the state shares with few rows, then a pair as for size 2 on those rows
        for a in [int(c) for c in np.argsort(counts) if counts[c]][:8]:
            sub = match[match[:, a]]
            inner = sub.sum(axis=0)
            for b_ in [int(c) for c in np.argsort(inner) if inner[c] and c != a][:8]:
                pairs(sub[sub[:, b_]], (a, b_))
    if not keys:
        return []
    return _cheapest(np.concatenate(costs), np.concatenate(keys), banned, limit)


def _cheapest(costs: np.ndarray, keys: np.ndarray, banned: set[tuple[int, ...]], limit: int) -> list[tuple[int, ...]]:
    """The first ``limit`` distinct keys not ``banned``, cheapest first (ties: the smaller key first)."""
    order = np.lexsort(tuple(keys[:, j] for j in reversed(range(keys.shape[1]))) + (costs,))
    out: list[tuple[int, ...]] = []
    for n in order:
        key = tuple(int(x) for x in keys[n])
        if key not in banned and key not in out:
            out.append(key)
            if len(out) >= limit:
                break
    return out


def _solver(timeout: float | None) -> z3.Solver:
    s = z3.SolverFor("QF_BV")
    if timeout is not None:
        s.set("timeout", max(1, int(timeout * 1000)))
    return s


def _base(enc: Encoding) -> tuple[Any, Any, Any, Any]:
    """State variables, selector and the transition formula of ``enc`` (built once per inference)."""
    xs, ys, act = enc.state("x"), enc.state("y"), enc.selector("x")
    return xs, ys, act, z3.And(enc.valid(xs), enc.trans(xs, ys, act))


def _houdini(enc: Encoding, base: tuple[Any, Any, Any, Any], cands: list[Lemma], must: list[Lemma], deadline: float | None,
             cache: dict[str, Any]) -> tuple[list[Lemma], list[State], list[str], str | None]:
    """Houdini with the CTI pre-states: the inductive subset of ``cands`` (``must`` never dropped).

    Returns (alive, states to exclude, log, bad): ``bad`` is set when a ``must`` lemma is not
    preserved (or fails initially); the pre-states are concrete states that satisfy every
    live candidate and step out of one.
    """
    def left() -> float | None:
        return None if deadline is None else max(0.5, deadline - time.monotonic())

    xs, ys, act, trans = base
    model = enc.model
    init = model.context(model.initial)
    alive: list[Lemma] = []
    log: list[str] = []
    for lem in cands:
        if lem.name not in cache:
            ok = all(lem.fn(model.context(model.initial), *args)
                     for args in product(*(range(d.size(enc.bounds)) for _, d in lem.params)))
            cache[lem.name] = None if not ok else (
                z3.And([t for _, t in instances(enc, lem, xs)]), z3.And([t for _, t in instances(enc, lem, ys)]))
        if cache[lem.name] is None:
            log.append(f"fails initially: {lem.name}")
        else:
            alive.append(lem)
    del init
    every = alive + must
    for lem in must:
        if lem.name not in cache:
            cache[lem.name] = (z3.And([t for _, t in instances(enc, lem, xs)]),
                               z3.And([t for _, t in instances(enc, lem, ys)]))
    tx = {id(lem): cache[lem.name][0] for lem in every}
    ty = {id(lem): cache[lem.name][1] for lem in every}
    use = {id(lem): z3.Bool(f"use{n}") for n, lem in enumerate(every)}
    s = _solver(left())
    s.add(trans)
    for lem in every:
        s.add(z3.Implies(use[id(lem)], tx[id(lem)]))
    bad: list[State] = []
    while True:
        live = alive + must
        s.push()
        s.add(z3.Or([z3.Not(ty[id(lem)]) for lem in live]))
        s.set("timeout", max(1, int((left() or 3600) * 1000)))
        r = s.check([use[id(lem)] for lem in live])
        if r == z3.unsat:
            s.pop()
            return alive, bad, log, None
        if r == z3.unknown:
            reason = s.reason_unknown()
            s.pop()
            raise TimeoutError(f"houdini: {reason}")
        m = s.model()
        before = enc.decode(m, xs)
        gone = [lem for lem in alive if z3.is_false(m.eval(ty[id(lem)], model_completion=True))]
        broke_must = [lem for lem in must if z3.is_false(m.eval(ty[id(lem)], model_completion=True))]
        s.pop()
        bad.append(before)
        if broke_must:
            return alive, bad, log, broke_must[0].name
        for lem in gone:
            alive.remove(lem)
        log.append(f"dropped {len(gone)} (not preserved by "
                   f"{enc.model.actions[m.eval(act, model_completion=True).as_long()].label()})")


def _shrink(base: tuple[Any, Any, Any, Any], alive: list[Lemma], must: list[Lemma], cache: dict[str, Any],
            deadline: float | None) -> list[Lemma]:
    """A smaller inductive subset of ``alive`` (with ``must``), from unsat cores; ``alive`` if none is found."""
    xs, ys, act, trans = base
    current = list(alive)
    for _ in range(8):
        if deadline is not None and time.monotonic() > deadline:
            break
        s = _solver(None if deadline is None else max(0.5, deadline - time.monotonic()))
        s.add(trans, *[cache[lem.name][0] for lem in must])
        use = {z3.Bool(f"keep{n}"): lem for n, lem in enumerate(current)}
        for u, lem in use.items():
            s.add(z3.Implies(u, cache[lem.name][0]))
        s.add(z3.Or([z3.Not(cache[lem.name][1]) for lem in current + must]))
        if s.check(list(use)) != z3.unsat:
            break
        core = {str(u) for u in s.unsat_core()}
        smaller = [lem for u, lem in use.items() if str(u) in core]
        if len(smaller) == len(current):
            break
        # the core is enough to preserve the old set; it must also preserve itself
        t = _solver(None if deadline is None else max(0.5, deadline - time.monotonic()))
        t.add(trans, *[cache[lem.name][0] for lem in smaller + must])
        t.add(z3.Or([z3.Not(cache[lem.name][1]) for lem in smaller + must]))
        if t.check() != z3.unsat:
            break
        current = smaller
    return current


# ---- the loop ----------------------------------------------------------------------------------
@dataclass
class InferResult:
    status: str  # proved | unknown
    families: list[Family]
    elapsed_s: float
    rounds: int = 0
    sampled_at: list[Bounds] = field(default_factory=list)
    sampled_states: int = 0
    reason: str = ""
    log: list[str] = field(default_factory=list)
    stages: list[Bounds] = field(default_factory=list)  # where CTI rounds ran (the last is the target)
    kept: list[Family] = field(default_factory=list)  # every inductive family (families: the subset used)
    #: per stage: bounds, its last Houdini pass (families in, kept), rounds and seconds there
    stage_stats: list[dict[str, Any]] = field(default_factory=list)


def property_lemmas(protocol: Protocol) -> list[Lemma]:
    return [Lemma(f"property {p.name}", p.params, p.predicate) for p in protocol.properties
            if p.kind == "invariant"]


#: Where learning starts before the requested bounds (each clipped to them): the smallest
#: instance with two VCPUs, then one with two of everything. Rounds there are cheap; the
#: requested bounds then usually need one Houdini pass.
STAGES = (Bounds(2, 1, 1, 1), Bounds(2, 2, 2, 2))


def stage_bounds(bounds: Bounds) -> list[Bounds]:
    """:data:`STAGES` clipped to ``bounds`` (:func:`clip`), then ``bounds``; duplicates dropped."""
    out: list[Bounds] = []
    for b in STAGES:
        small = clip(bounds, b)
        if small not in out:
            out.append(small)
    if bounds not in out:
        out.append(bounds)
    return out


def infer(enc: Encoding, *, timeout: float | None = None,
          start: Sequence[Family] = (), data: Samples | None = None,
          note: Callable[[str], None] | None = None, max_rounds: int = 400,
          staged: bool = True, diagrams: DiagramFamilies | None = None) -> InferResult:
    """Learn lemma families from samples and CTIs until they prove the invariant properties over ``enc``.

    With ``staged``, rounds run first at the small bounds of :func:`stage_bounds`; every family
    inductive there is a candidate at the next stage, and only the last stage (``bounds``)
    decides. Whatever is proved is proved at ``bounds``: the stages only propose. ``diagrams``
    (:func:`deferral.checks.symbolic.diagram.diagram_families`) excludes a counterexample to
    induction that no family of the fixed shapes excludes by the state's own diagram.
    """
    t0 = time.monotonic()
    deadline = None if timeout is None else t0 + timeout
    say = note or (lambda text: None)
    protocol, bounds = enc.protocol, enc.bounds
    log: list[str] = []
    if data is None:
        say("infer: sampling reachable states at small bounds")
        data = samples(protocol, sample_bounds(bounds),
                       deadline=None if deadline is None or timeout is None else t0 + 0.4 * timeout)
        log.append(f"samples: {data.states} states at {', '.join(b.short() for b in data.bounds)} "
                   f"({data.elapsed_s:.1f} s)")
    stages = stage_bounds(bounds) if staged else [bounds]
    fams: dict[tuple[int, tuple[Term, ...]], Family] = {(-1, f.terms): f for f in start}
    tried: dict[int, set[tuple[int, ...]]] = {n: set() for n in range(len(data.tables))}
    rounds = 0
    memo: dict[Any, Any] = {}
    kept: list[Family] = []
    proposed: set[str] = set()  # the diagram families proposed so far

    def res(status: str, families: list[Family], reason: str = "", at: list[Bounds] | None = None
            ) -> InferResult:
        return InferResult(status, families, time.monotonic() - t0, rounds, data.bounds, data.states, reason, log,
                           at or [], kept, stats)

    stats: list[dict[str, Any]] = []

    for n, b in enumerate(stages):
        last = n == len(stages) - 1
        stage_enc = enc if last else encode(protocol, b, check=False)
        t1 = time.monotonic()
        base, cache, must = _base(stage_enc), {}, property_lemmas(protocol)
        layout = protocol.layout(b)
        row: dict[str, Any] = {"bounds": b, "families_in": len(fams), "families_kept": None, "rounds": 0,
                               "seconds": 0.0}
        stats.append(row)
        for _ in range(max_rounds):
            rounds += 1
            row["rounds"], row["seconds"] = row["rounds"] + 1, round(time.monotonic() - t1, 2)
            if deadline is not None and time.monotonic() > deadline:
                return res("unknown", kept, f"time limit (learning at {b.short()})", stages[:n + 1])
            lemmas = [f.lemma(memo) for f in fams.values()]
            lemma_of = {lem.name: f for lem, f in zip(lemmas, fams.values())}
            try:
                alive, bad, _, broke = _houdini(stage_enc, base, lemmas, must, deadline, cache)
            except TimeoutError as exc:
                return res("unknown", kept, f"{exc} (at {b.short()})", stages[:n + 1])
            kept = [lemma_of[lem.name] for lem in alive]  # the stage's row: its last Houdini pass
            row.update(families_in=len(lemmas), families_kept=len(kept), seconds=round(time.monotonic() - t1, 2))
            if broke is None:
                break
            added = 0
            for state in reversed(bad[-2:]):
                for key, f in _exclusion(protocol, data.upto(b), state, b, tried, layout, deadline=deadline):
                    if (key, f.terms) not in fams:
                        fams[(key, f.terms)] = f
                        added += 1
            if not added and diagrams is not None:  # no family of the fixed shapes: the state's own diagram
                for f in diagrams(protocol, data.upto(b), bad[-1], b, banned=proposed, deadline=deadline):
                    if (-2, f.terms) not in fams:
                        fams[(-2, f.terms)] = f
                        added += 1
            say(f"infer: round {rounds} at {b.short()}, {len(alive)} families kept, {added} new")
            if not added:
                if deadline is not None and time.monotonic() > deadline:
                    return res("unknown", kept, f"time limit (learning at {b.short()})", stages[:n + 1])
                shown = stage_enc.model.to_json(bad[-1])
                return res("unknown", kept,
                           f"at {b.short()}, a counterexample to induction of {broke} that no family learned "
                           f"from the samples excludes (state {shown})", stages[:n + 1])
        else:
            return res("unknown", kept, f"round limit at {b.short()}", stages[:n + 1])
        log.append(f"{b.short()}: {len(kept)} of {len(fams)} families inductive with the property "
                   f"({time.monotonic() - t1:.1f} s, {rounds} rounds so far)")
        fams = {key: f for key, f in fams.items() if f in kept}  # the next stage starts from these
        if last:
            by_name = {f.show(): f for f in kept}
            small = _shrink(base, [f.lemma(memo) for f in kept], must, cache, deadline)
            log.append(f"{len(small)} of them suffice at {b.short()}")
            return res("proved", [by_name[lem.name] for lem in small], at=stages)
    raise AssertionError("unreachable: the last stage returns")


def _exclusion(protocol: Protocol, data: Samples, state: State, bounds: Bounds,
               tried: dict[int, set[tuple[int, ...]]], layout: Layout, limit: int = 2,
               deadline: float | None = None, largest: int = 3) -> list[tuple[int, Family]]:
    """The smallest families (of at most ``largest`` terms) under which ``state`` was never
    observed (for some assignment)."""
    rows = np.array([state], dtype=np.int64)
    per_table = []
    for n, table in enumerate(data.tables):
        envs = []
        for env in assignments(table.sig, bounds):
            ev = _Eval(protocol, layout, rows, env).with_sig(table.sig)
            envs.append(np.array([ev.code(t)[0] for t in table.terms], dtype=np.uint8))
        per_table.append(unique_rows(np.array(envs)) if envs else np.zeros((0, len(table.terms)), np.uint8))
    memos: dict[tuple[int, int], dict[Any, Any]] = {}  # (table, assignment row) -> excluding's memo
    for size in range(1, largest + 1):
        for n, table in enumerate(data.tables):
            if deadline is not None and time.monotonic() > deadline:
                return []
            out: list[tuple[int, Family]] = []
            for r, row in enumerate(per_table[n] if size <= 3 else per_table[n][:4]):  # four terms: seconds a row
                for cols in excluding(table, row, size, tried[n], limit - len(out), memos.setdefault((n, r), {})):
                    tried[n].add(cols)
                    out.append((n, family(table, cols, layout, row)))
                if len(out) >= limit:
                    break
            if out:
                return out
    return []


# ---- saving and loading ---------------------------------------------------------------------------
def save(families: Iterable[Family], protocol: Protocol, learned_at: Sequence[Bounds],
         inductive: Iterable[Family] = ()) -> dict[str, Any]:
    """A ``deferral-lemmas/2`` document: the families, readable and loadable by :func:`load`.

    ``inductive``: every family Houdini kept at the learned bounds (the families that prove them
    are a subset); saved under "inductive", loaded too: more candidates for other bounds and for
    ``prove --parametric --lemmas`` (where the subset is often too weak)."""
    shown = {f.show() for f in families}
    more = [f.to_json() for f in inductive if f.show() not in shown]
    return {"format": FORMAT, "variant": protocol.name, "learned_at": [b.as_dict() for b in learned_at],
            "lemmas": [f.to_json() for f in families], **({"inductive": more} if more else {})}


def _signature_of(pairs: Any, protocol: Protocol) -> Signature | None:
    """Variables ``[[name, sort name], ...]`` (distinct names, declared index sorts; any number of
    each, as a diagram family of checks/symbolic/diagram.py has) as a signature, or None."""
    sorts = {s.name: s for s in index_sorts(protocol)}
    names = [str(n) for n, _ in pairs]
    if len(set(names)) != len(names) or any(str(s) not in sorts for _, s in pairs):
        return None
    return Signature(tuple((str(n), sorts[str(s)]) for n, s in pairs))



def family_of_entry(entry: dict[str, Any], sig: Signature, available: Iterable[Term],
                    labels: Callable[[Term], dict[str, int]], bounds: Bounds, default_mode: str,
                    owner: str) -> Family:
    """One saved lemma (a ``deferral-lemmas`` entry) as a :class:`Family` over ``sig``: its terms
    looked up among ``available`` by how they print, its value labels read by ``labels(term)`` (a
    label -> code map); a term, value or mode that does not fit (``owner``: the protocol) is an InferError."""
    by_name = {t.show(): t for t in available}
    missing = [t for t in entry["terms"] if t not in by_name]
    if missing:
        raise InferError(f"lemma {entry.get('shown')!r}: {owner} has no term {missing[0]!r}")
    ts = tuple(by_name[t] for t in entry["terms"])
    decode = [labels(t) for t in ts]
    rows = []
    for values in entry["values"]:
        if len(values) != len(ts) or any(v not in d for v, d in zip(values, decode)):
            raise InferError(f"lemma {entry.get('shown')!r}: values {values} do not fit its terms")
        rows.append(tuple(d[v] for v, d in zip(values, decode)))
    mode = entry.get("mode", default_mode)
    if mode not in ("in", "never"):
        raise InferError(f"lemma {entry.get('shown')!r}: mode must be 'in' or 'never'")
    return Family(sig, ts, tuple(rows), mode, tuple(tuple(v) for v in entry["values"]), elided(sig, bounds))


def load(doc: Any, protocol: Protocol, bounds: Bounds) -> list[Family]:
    """Families from a ``deferral-lemmas/2`` document, over ``protocol``'s terms (InferError, one line)."""
    try:
        if doc.get("format") != FORMAT:
            raise InferError(f"not a {FORMAT} file")
        layout = protocol.layout(bounds)
        sigs = {tuple(n for n, _ in sig.vars): sig for sig in signatures(protocol, twos=len(index_sorts(protocol)))}
        out = []
        for entry in list(doc["lemmas"]) + list(doc.get("inductive", [])):
            names = tuple(str(n) for n, _ in entry["vars"])
            sig = sigs.get(names) or _signature_of(entry["vars"], protocol)
            if sig is None:
                raise InferError(f"lemma {entry.get('shown')!r}: variables {', '.join(names)} are not "
                                 f"a signature of {protocol.name}")
            table = Table(sig, terms(protocol, sig, bounds), np.zeros((0, 0), dtype=np.uint8))
            out.append(family_of_entry(
                entry, sig, table.terms,
                lambda t: {label(t, c, sig, layout): c for c in _codes_of(t, table, layout) + [UNDEF]},
                bounds, default_mode="in", owner=protocol.name))
        return out
    except InferError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InferError(f"malformed lemma file: {type(exc).__name__}: {exc}") from None
