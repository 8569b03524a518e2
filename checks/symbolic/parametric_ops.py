"""The parametric backend of the step context: the model's functions on uninterpreted-sort terms.

The same step, procedure, property and lemma functions that run on Python ints, numpy
batches and bit-vectors (checks/terms/encoding.py) run here on terms whose sorts have no
fixed size, so a proof over them holds for every number of VCPUs, pages and frames.

Values. Every open sort of the protocol (VCPU, PAGE, FRAME and a protocol's own sorts) is a
Z3 ``DeclareSort`` with one distinguished element, its 0 (page 0, frame 0 = not present,
VCPU 0); the bounds kept concrete (the queue capacity Q and the address spaces S) make
finite sorts (``EnumSort``), as do enums (``pc``) and queue lengths. A VCPU-or-none value
is a datatype ``none | some(vcpu)``, a notice of two sorts (space, page) a datatype pair
(at one space, the page itself). Values are wrapped in :class:`PVal`, which knows its
domain, so Python literals coerce to the right constant (``s.pg[i] = 0`` is page 0,
``s.pc[i] == PC.Idle`` the enum constant); a frame or page literal other than 0 names no
element of every instance and is refused.

State. A variable is a function of its indices (a Python closure over Z3 terms): the base
state applies uninterpreted functions, a write ``v[idx] = x`` under ``when`` conditions
``c`` is ``lambda *xs: If(xs == idx & c, x, old(*xs))`` ("every other element unchanged").

Loops. ``s.each(SORT)`` over an open sort yields ONE fresh constant ``k``; the body's writes,
which must be indexed by ``k``, become one update "for every j: the body's value at k = j"
(``k`` substituted by the index). That reads the loop as parallel iterations, which is what
sequential iterations do when each iteration reads and writes only its own elements: both
are checked, and a loop that reads another iteration's element is refused. A write at an index that is
not the loop variable (``tlb[i][pg[k]] = 0`` for every pending ``k``: iterations may write one element) is
"every element some iteration writes takes the value", where the order cannot matter: one value, the
same in every iteration, and no read of that variable in the loop (else refused).
``s.all``/``s.any`` over such a loop are ``ForAll``/``Exists``. A Python ``if`` on the loop
variable and a step argument (``if k != i:``) splits the loop: the step is evaluated again
with iteration ``k = i`` first and the generic iteration under ``k != i``. A Python ``if``
on a state value, or ``range(s.N)``, cannot be evaluated for every N: a one-line
:class:`ParamError` naming the construct.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import z3

from deferral.checks.terms.encoding import junction
from deferral.model.bounds import Bound
from deferral.model.context import StepContext, StepError, _Procedures, _v
from deferral.model.ops import Ops
from deferral.model.schema import BOOL, FRAME, Domain, Enum, OrNone, Pair, Queue, Range, Sort, Var


class ParamError(StepError):
    """A construct the parametric backend cannot evaluate for every number of elements."""


class BranchError(ParamError):
    """A Python ``if``/``and``/``or``/``not`` on a value that is not known here."""


class _Split(BaseException):
    """Evaluate again with loop ``key``'s iteration ``term`` taken apart (a Python ``if``
    comparing the loop variable with ``term``). BaseException: a user's ``except Exception``
    must not swallow it."""

    def __init__(self, key: Any, term: Any) -> None:
        super().__init__(key, term)
        self.key, self.term = key, term


Fn = Callable[..., Any]
Key = tuple[str, Any]  # (variable name, part: None, "len" or a queue position)


# ---- bounds --------------------------------------------------------------------------------------
class ParamBounds(Mapping[str, int]):
    """The protocol's bounds where only ``concrete`` ones have values; another (the number of
    VCPUs) reads as a :class:`Count`: no number (``range()`` of it is refused), but still
    the old notation of none (``s.N``, ``OrNone.none(b)``)."""

    def __init__(self, decls: Sequence[Bound], concrete: Mapping[str, int],
                 sorts: Mapping[str, Sort] | None = None) -> None:
        self.decls = tuple(decls)
        self.concrete = dict(concrete)
        self.sorts = dict(sorts or {})

    def __getitem__(self, name: str) -> Any:
        if name in self.concrete:
            return self.concrete[name]
        for d in self.decls:
            if d.name == name:
                sort = self.sorts.get(name)
                return Count(sort or Sort(name, name), d.letter, sort is not None)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.concrete)

    def __len__(self) -> int:
        return len(self.concrete)

    def __getattr__(self, name: str) -> Any:
        for d in self.__dict__.get("decls", ()):
            if name in (d.name, d.letter):
                return self[d.name]
        raise AttributeError(name)

    def get(self, name: str, default: Any = None) -> Any:  # type: ignore[override]
        return self.concrete.get(name, default)

    def short(self) -> str:
        return ",".join(f"{d.letter}={self.concrete[d.name]}" for d in self.decls if d.name in self.concrete)


@dataclass(frozen=True, eq=False)
class Count:
    """The number of elements of an open sort (``s.N``): no number, but still the old notation
    of none (``s.cur[k] = s.N``, ``s.cur[k] < s.N``); ``range(s.N)`` and ``s.N == 2`` are refused."""

    sort: Sort
    letter: str  # the bound's declared letter: s.N, s.V, s.F, ...
    declared: bool  # is ``sort`` one the protocol declares (VCPU, PAGE), not a bare range (frames)?

    def _refuse(self) -> ParamError:
        what = f"range(s.{self.letter}) / s.{self.letter} as a number"
        if self.declared:
            name = self.sort.name.upper()
            return ParamError(f"{what} cannot be evaluated for every number of {self.sort.bound}: write "
                              f"`for x in s.each({name})`, s.none({name}) (docs/notation.md)")
        return ParamError(f"{what} cannot be evaluated for every number of {self.sort.bound} "
                          "(docs/notation.md)")

    def __index__(self) -> int:
        raise self._refuse()

    __int__ = __index__

    def __eq__(self, other: Any) -> Any:
        if isinstance(other, PVal):
            return other == self
        if isinstance(other, Count):
            return other.sort == self.sort
        raise self._refuse()

    def __ne__(self, other: Any) -> Any:
        if isinstance(other, PVal):
            return other != self
        raise self._refuse()

    def __hash__(self) -> int:
        return hash(("count", self.sort))

    def __bool__(self) -> bool:
        return True

    def __add__(self, other: Any) -> Any:
        raise self._refuse()

    __radd__ = __sub__ = __rsub__ = __lt__ = __le__ = __gt__ = __ge__ = __add__


# ---- the universe: Z3 sorts of the domains ---------------------------------------------------------
def _dkey(dom: Domain) -> tuple[Any, ...]:
    """A hashable identity of a domain (two OrNone of the same sort are the same domain)."""
    if dom is BOOL:
        return ("bool",)
    if dom is FRAME:
        return ("frame",)
    if isinstance(dom, Sort):
        return ("sort", dom.name, dom.bound)
    if isinstance(dom, OrNone):
        return ("opt",) + _dkey(dom.sort)
    if isinstance(dom, Pair):
        return ("pair", _dkey(dom.first), _dkey(dom.second))
    if isinstance(dom, Enum):
        return ("enum", dom.name, dom.names)
    if isinstance(dom, Range):
        return ("range", dom.low, dom.high)
    raise ParamError(f"values of the domain {dom!r} ({type(dom).__name__}) have no parametric encoding")


@lru_cache(maxsize=None)
def _enum(name: str, labels: tuple[str, ...]) -> tuple[Any, tuple[Any, ...]]:
    """An enumeration sort (memoized: Z3 refuses to declare one twice)."""
    sort, values = z3.EnumSort(name, list(labels))
    return sort, tuple(values)


@lru_cache(maxsize=None)
def _option(name: str, inner: Any) -> Any:
    dt = z3.Datatype(name)
    dt.declare("none_" + name)
    dt.declare("some_" + name, ("val_" + name, inner))
    return dt.create()


@lru_cache(maxsize=None)
def _pair(name: str, first: Any, second: Any) -> Any:
    dt = z3.Datatype(name)
    dt.declare("mk_" + name, ("fst_" + name, first), ("snd_" + name, second))
    return dt.create()


class Universe:
    """The Z3 sort of every domain: open sorts uninterpreted (or, for the agreement tests,
    ``finite`` = exactly that many elements per bound), ``concrete`` bounds as enumerations."""

    def __init__(self, concrete: Mapping[str, int], finite: Mapping[str, int] | None = None) -> None:
        self.concrete = dict(concrete)
        self.finite = None if finite is None else dict(finite)
        sizes = {**self.concrete, **(self.finite or {})}
        self.tag = "" if not sizes else "_" + "_".join(f"{k[0]}{v}" for k, v in sorted(sizes.items()))
        self._cache: dict[tuple[Any, ...], Any] = {}

    # ---- classification -------------------------------------------------------------------------
    def is_open(self, dom: Domain) -> bool:
        """Uninterpreted (no fixed number of elements): open sorts and frames."""
        if dom is FRAME:
            return True
        return isinstance(dom, Sort) and dom.bound not in self.concrete

    def size(self, dom: Domain) -> int:
        """The number of values of a finite domain (a concrete sort, an enum, a length, a bool)."""
        if dom is BOOL:
            return 2
        if isinstance(dom, Sort):
            return self.concrete[dom.bound]
        if isinstance(dom, Enum):
            return len(dom.names)
        if isinstance(dom, Range):
            high = dom.high if isinstance(dom.high, int) else self.concrete.get(dom.high)
            if high is None:
                raise ParamError(f"a range up to {dom.high} has no parametric encoding")
            return high - dom.low + 1
        raise ParamError(f"{dom!r} is not a finite domain here")

    def single(self, dom: Domain) -> bool:
        """A pair whose first sort is an elided sort with one element is its second alone."""
        return isinstance(dom, Sort) and dom.elided and not self.is_open(dom) and self.size(dom) == 1

    # ---- sorts ----------------------------------------------------------------------------------
    def sort(self, dom: Domain) -> Any:
        key = _dkey(dom)
        if key not in self._cache:
            self._cache[key] = self._make_sort(dom)
        return self._cache[key]

    def _make_sort(self, dom: Domain) -> Any:
        if dom is BOOL:
            return z3.BoolSort()
        if self.is_open(dom):
            bound = "frames" if dom is FRAME else dom.bound  # type: ignore[union-attr]
            name = dom.name.upper().replace("-", "_")
            if self.finite is None:
                return z3.DeclareSort(name)
            n = self.finite[bound] + (1 if dom is FRAME else 0)
            return _enum(f"{name}{n}", tuple(f"{name.lower()}{j}" for j in range(n)))[0]
        if isinstance(dom, Pair) and self.single(dom.first):
            return self.sort(dom.second)
        name = dom.name.replace("-", "_") + self.tag
        if isinstance(dom, OrNone):
            return _option(name, self.sort(dom.sort))
        if isinstance(dom, Pair):
            return _pair(name, self.sort(dom.first), self.sort(dom.second))
        if isinstance(dom, Enum):
            return _enum(dom.name.upper() + "_" + "_".join(dom.names), dom.names)[0]
        n = self.size(dom)
        label = dom.name.lower()
        return _enum(f"{dom.name.upper()}{n}", tuple(f"{label}{j}" if label != "length" else f"len{j}"
                                                    for j in range(n)))[0]

    def values(self, dom: Domain) -> tuple[Any, ...]:
        """The constants of a finite domain (or of an open one in a finite universe), in the
        order of the concrete model's stored integers."""
        if dom is BOOL:
            return (z3.BoolVal(False), z3.BoolVal(True))
        sort = self.sort(dom)
        if isinstance(dom, OrNone):
            inner = self.values(dom.sort)
            return tuple(sort.constructor(1)(e) for e in inner) + (sort.constructor(0)(),)
        if isinstance(dom, Pair):
            if self.single(dom.first):
                return self.values(dom.second)
            return tuple(sort.constructor(0)(a, b) for a in self.values(dom.first) for b in self.values(dom.second))
        if self.is_open(dom) and self.finite is None:
            raise ParamError(f"the elements of {dom!r} are not enumerable here")
        return tuple(sort.constructor(j)() for j in range(sort.num_constructors()))

    def zero(self, dom: Domain) -> Any:
        """The 0 of a domain: page 0, frame 0 (not present), the first enum value, none."""
        if isinstance(dom, OrNone):
            return self.none(dom)
        if isinstance(dom, Pair):
            if self.single(dom.first):
                return self.zero(dom.second)
            return self.sort(dom).constructor(0)(self.zero(dom.first), self.zero(dom.second))
        if self.is_open(dom) and self.finite is None:
            return z3.Const(f"{str(self.sort(dom)).lower()}0", self.sort(dom))
        return self.values(dom)[0]

    def none(self, dom: OrNone) -> Any:
        return self.sort(dom).constructor(0)()

    def some(self, dom: OrNone, x: Any) -> Any:
        return self.sort(dom).constructor(1)(x)

    def is_some(self, dom: OrNone, x: Any) -> Any:
        return self.sort(dom).recognizer(1)(x)

    def val(self, dom: OrNone, x: Any) -> Any:
        return self.sort(dom).accessor(1, 0)(x)

    def literal(self, dom: Domain, value: Any) -> Any:
        """A Python literal as a value of ``dom``."""
        if isinstance(value, Count):
            if isinstance(dom, OrNone):
                return self.none(dom)  # s.N: the old notation of none
            raise ParamError(f"s.{value.letter} used as a value of {dom!r}")
        if dom is BOOL:
            return z3.BoolVal(bool(value))
        if not isinstance(value, int):
            raise ParamError(f"{value!r} ({type(value).__name__}) is not a value of {dom!r}")
        if isinstance(dom, OrNone):
            if value == 0 and self.is_open(dom.sort):
                return self.some(dom, self.zero(dom.sort))
            return self.values(dom)[value] if not self.is_open(dom.sort) else self._refuse(dom, value)
        if isinstance(dom, Pair):
            if value == 0:
                return self.zero(dom)
            return self._refuse(dom, value)
        if self.is_open(dom):
            if value == 0:
                return self.zero(dom)
            if self.finite is not None and 0 <= value < len(self.values(dom)):
                return self.values(dom)[value]
            return self._refuse(dom, value)
        values = self.values(dom)
        if not 0 <= value < len(values):
            raise ParamError(f"{value} is outside {dom!r} (0..{len(values) - 1})")
        return values[value]

    def _refuse(self, dom: Domain, value: int) -> Any:
        raise ParamError(f"the literal {value} of {dom!r} names no element in every instance (only 0 does): "
                         "a parametric proof cannot use it")


# ---- values -----------------------------------------------------------------------------------------
class PVal:
    """A Z3 term of a known domain (``dom``), or an untyped if-then-else of literals (``dom``
    None: ``s.ite(c, PC.SdWait, PC.Idle)``) typed when it meets a typed value or a variable."""

    __slots__ = ("term", "dom", "ops", "build", "over")
    __hash__ = object.__hash__

    def __init__(self, term: Any, dom: Domain | None, ops: "ParamOps", build: Fn | None = None,
                 over: Any = None) -> None:
        self.term, self.dom, self.ops, self.build = term, dom, ops, build
        #: where the number this stands for is past its domain (``c + 1`` at the last value: ``term`` is
        #: clamped to it; the concrete model fails where such a value is written). None: nowhere
        self.over = over

    def typed(self, dom: Domain) -> Any:
        """The term as a value of ``dom``."""
        return self.ops.coerce(self, dom)

    # truth and numbers
    def __bool__(self) -> bool:
        return self.ops.decide(self)

    def __index__(self) -> int:
        raise BranchError("uses a value as a Python int (a list index, range(), int()): it is not known "
                          "here; index the state's own variables (s.var[x]) or use s.ite")

    __int__ = __index__

    # comparisons
    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return self.ops.compare(self, other, "==")

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return self.ops.compare(self, other, "!=")

    def __lt__(self, other: Any) -> Any:
        return self.ops.compare(self, other, "<")

    def __le__(self, other: Any) -> Any:
        return self.ops.compare(self, other, "<=")

    def __gt__(self, other: Any) -> Any:
        return self.ops.compare(self, other, ">")

    def __ge__(self, other: Any) -> Any:
        return self.ops.compare(self, other, ">=")

    # logic
    def __and__(self, other: Any) -> Any:
        return self.ops.all_((self, other))

    __rand__ = __and__

    def __or__(self, other: Any) -> Any:
        return self.ops.any_((self, other))

    __ror__ = __or__

    def __invert__(self) -> Any:
        return self.ops.not_(self)

    # arithmetic (lengths and other finite numbered domains)
    def __add__(self, other: Any) -> Any:
        return self.ops.shift(self, other, +1)

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        return self.ops.shift(self, other, -1)

    def __repr__(self) -> str:
        return f"PVal({self.term}, {self.dom!r})"


def _is_bool(x: Any) -> bool:
    return isinstance(x, PVal) and x.dom is BOOL


class ParamOps(Ops):
    """The operations on :class:`PVal` values of one context."""

    concrete = False

    def __init__(self, ctx: "ParamContext", universe: Universe) -> None:
        self.ctx, self.u = ctx, universe
        self.pair = _PairOps(self)

    def wrap(self, term: Any, dom: Domain) -> PVal:
        return PVal(term, self.norm(dom), self)

    def norm(self, dom: Domain) -> Domain:
        """A pair whose first sort has one element is its second (a notice at one space: a page)."""
        if isinstance(dom, Pair) and self.u.single(dom.first):
            return dom.second
        return dom

    def is_value(self, x: Any) -> bool:
        return isinstance(x, PVal)

    # ---- coercion -----------------------------------------------------------------------------------
    def coerce(self, x: Any, dom: Domain) -> Any:
        u = self.u
        x = _v(x)
        if not isinstance(x, PVal):
            return u.literal(dom, x)
        if x.dom is None:
            assert x.build is not None
            return x.build(dom)
        dom = self.norm(dom)
        if _dkey(x.dom) == _dkey(dom):
            return x.term
        if isinstance(dom, OrNone) and _dkey(x.dom) == _dkey(dom.sort):
            return u.some(dom, x.term)
        if isinstance(x.dom, OrNone) and _dkey(x.dom.sort) == _dkey(dom):
            # a VCPU-or-none used as a VCPU (cur[k] in ack_ipi): the concrete model fails where it is none
            self.ctx.fails(z3.Not(u.is_some(x.dom, x.term)))
            return u.val(x.dom, x.term)
        raise ParamError(f"a value of {x.dom!r} used as one of {dom!r}")

    def boolean(self, x: Any) -> Any:
        x = _v(x)
        if isinstance(x, PVal):
            return self.coerce(x, BOOL)
        if isinstance(x, (bool, int)):
            return z3.BoolVal(bool(x))
        if isinstance(x, z3.BoolRef):
            return x
        raise ParamError(f"{x!r} is not a condition")

    def truth(self, x: Any) -> Any:
        return self.wrap(self.boolean(x), BOOL)

    # ---- Ops ---------------------------------------------------------------------------------------
    def ite(self, cond: Any, then: Any, other: Any) -> Any:
        cond, then, other = _v(cond), _v(then), _v(other)
        if not isinstance(cond, PVal):
            return then if cond else other
        c = self.boolean(cond)
        doms = [x.dom for x in (then, other) if isinstance(x, PVal) and x.dom is not None]
        # a VCPU and a VCPU-or-none: the value is a VCPU-or-none (as on the concrete model, where none
        # is a number too: nothing fails until it is used as a VCPU)
        dom = next((d for d in doms if isinstance(d, OrNone)), doms[0]) if doms else None
        if dom is None and all(isinstance(x, bool) or _is_bool(x) for x in (then, other)):
            dom = BOOL
        if dom is not None:
            out = self.wrap(z3.If(c, self.coerce(then, dom), self.coerce(other, dom)), dom)
            overs = [x.over if isinstance(x, PVal) and x.over is not None else z3.BoolVal(False)
                     for x in (then, other)]
            if not all(z3.is_false(o) for o in overs):
                out.over = z3.If(c, *overs)
            return out
        return PVal(None, None, self, lambda d: z3.If(c, self.coerce(then, d), self.coerce(other, d)))

    def not_(self, x: Any) -> Any:
        x = _v(x)
        if not isinstance(x, PVal):
            return not x
        return self.wrap(z3.Not(self.boolean(x)), BOOL)

    def all_(self, xs: Iterable[Any]) -> Any:
        found = junction((_v(x) for x in xs), _is_pval, self.boolean, conjunction=True)
        return self.wrap(found, BOOL) if isinstance(found, z3.BoolRef) else found

    def any_(self, xs: Iterable[Any]) -> Any:
        found = junction((_v(x) for x in xs), _is_pval, self.boolean, conjunction=False)
        return self.wrap(found, BOOL) if isinstance(found, z3.BoolRef) else found

    # ---- comparisons and arithmetic ----------------------------------------------------------------
    def compare(self, a: PVal, b: Any, op: str) -> Any:
        b = _v(b)
        if isinstance(b, Count) and isinstance(a.dom, OrNone):
            some = self.u.is_some(a.dom, a.term)  # cur[k] < s.N: the old notation of "not none"
            table = {"<": some, "!=": some, "==": z3.Not(some), ">=": z3.Not(some)}
            if op not in table:
                raise ParamError(f"{op} s.{b.letter} has no parametric meaning")
            return self.wrap(table[op], BOOL)
        dom = a.dom if a.dom is not None else (b.dom if isinstance(b, PVal) else None)
        if dom is None:
            raise ParamError("cannot tell the domain of a comparison of two literals")
        if isinstance(b, PVal) and b.dom is not None and isinstance(b.dom, OrNone) and not isinstance(dom, OrNone):
            dom = b.dom  # a VCPU compared with a VCPU-or-none: compare as VCPU-or-none
        x, y = self.coerce(a, dom), self.coerce(b, dom)
        if op == "==":
            return self.wrap(x == y, BOOL)
        if op == "!=":
            return self.wrap(x != y, BOOL)
        values = self._ordered(dom)
        lt = {"<": lambda i, j: i < j, "<=": lambda i, j: i <= j, ">": lambda i, j: i > j,
              ">=": lambda i, j: i >= j}[op]
        if not isinstance(b, PVal):
            return self.wrap(_or([x == values[i] for i in range(len(values)) if lt(i, b)]), BOOL)
        return self.wrap(_or([z3.And(x == values[i], y == values[j]) for i in range(len(values))
                              for j in range(len(values)) if lt(i, j)]), BOOL)

    def _ordered(self, dom: Domain) -> tuple[Any, ...]:
        if dom is BOOL or self.u.is_open(dom) or isinstance(dom, (OrNone, Pair)):
            raise ParamError(f"values of {dom!r} have no order for every number of elements "
                             "(compare them with == and != only)")
        return self.u.values(dom)

    def shift(self, a: PVal, b: Any, sign: int) -> Any:
        b = _v(b)
        if isinstance(b, PVal) or not isinstance(b, int) or a.dom is None:
            raise ParamError("arithmetic on values is limited to a length (or another numbered finite "
                             "domain) plus or minus a constant here")
        values = self._ordered(a.dom)
        n, step = len(values), sign * b
        out = values[min(max(n - 1 + step, 0), n - 1)]
        for i in range(n - 2, -1, -1):
            out = z3.If(a.term == values[i], values[min(max(i + step, 0), n - 1)], out)
        result = self.wrap(out, a.dom)
        past = [a.term == values[i] for i in range(n) if not 0 <= i + step < n]
        if a.over is not None:
            past.append(a.over)
        if past:
            result.over = _or(past)
        return result

    # ---- Python truth of a value --------------------------------------------------------------------
    def decide(self, x: PVal) -> bool:
        return self.ctx._decide(self.boolean(x))


def _or(terms: list[Any]) -> Any:
    return z3.BoolVal(False) if not terms else terms[0] if len(terms) == 1 else z3.Or(terms)


class _PairOps:
    """The backend of :class:`~deferral.model.schema.Pair` (notices (space, page)) as a datatype."""

    def __init__(self, ops: ParamOps) -> None:
        self.ops = ops

    def make(self, pair: Pair, a: Any, b: Any) -> Any:
        o = self.ops
        sort = o.u.sort(pair)
        return o.wrap(sort.constructor(0)(o.coerce(a, pair.first), o.coerce(b, pair.second)), pair)

    def first_of(self, pair: Pair, x: Any) -> Any:
        o = self.ops
        return o.wrap(o.u.sort(pair).accessor(0, 0)(o.coerce(x, pair)), pair.first)

    def second_of(self, pair: Pair, x: Any) -> Any:
        o = self.ops
        return o.wrap(o.u.sort(pair).accessor(0, 1)(o.coerce(x, pair)), pair.second)


# ---- the context --------------------------------------------------------------------------------------
@dataclass
class _Loop:
    """One ``s.each`` loop over an open sort while it runs."""

    key: Any
    sort: Sort
    var: Any  # the term of the current iteration: a split-off term, or the fresh constant
    generic: bool
    excluded: tuple[Any, ...] = ()
    writes: list[tuple[Key, tuple[Any, ...], Any]] = field(default_factory=list)
    reads: list[tuple[Key, tuple[Any, ...], Any]] = field(default_factory=list)
    #: per write in this iteration (not in an inner loop): (key, index terms, value, condition or None)
    updates: list[tuple[Key, tuple[Any, ...], Any, Any]] = field(default_factory=list)
    #: each key's function before this iteration first wrote it
    before: dict[Key, Fn] = field(default_factory=dict)


class _ParamLayout:
    """What :class:`~deferral.model.context.VarView` and lemma families need of a layout: the
    bounds, the variables, and the full index of the one-space notation."""

    def __init__(self, bounds: ParamBounds, variables: Sequence[Var]) -> None:
        self.bounds = bounds
        self.variables = tuple(variables)

    def var(self, name: str) -> Var:
        for var in self.variables:
            if var.name == name:
                return var
        raise KeyError(name)

    def full_index(self, var: Var, index: tuple[Any, ...]) -> tuple[Any, ...]:
        if len(index) == len(var.index):
            return tuple(index)
        shown = var.shown_dims(self.bounds)
        if len(index) != len(shown):
            return tuple(index)
        full: list[Any] = [0] * len(var.index)
        for d, i in zip(shown, index):
            full[d] = i
        return tuple(full)


class ParamContext(StepContext):
    """A :class:`StepContext` whose state is functions over the universe's sorts.

    ``fns`` maps each (variable, part) to its function; a step's writes replace them, so
    after a step ``ctx.fns`` is the post-state. ``plan`` says which loops are split (see
    :func:`evaluate`)."""

    def __init__(self, universe: Universe, variables: Sequence[Var], fns: Mapping[Key, Fn],
                 procedures: Mapping[str, Callable[..., Any]], bounds: ParamBounds,
                 plan: Mapping[Any, list[Any]] | None = None) -> None:
        setter = object.__setattr__
        setter(self, "_layout", _ParamLayout(bounds, variables))
        setter(self, "u", universe)
        setter(self, "ops", ParamOps(self, universe))
        setter(self, "_conds", [])
        setter(self, "_vars", {v.name: v for v in variables})
        setter(self, "proc", _Procedures(self, procedures))
        setter(self, "bounds", bounds)
        setter(self, "fns", dict(fns))
        setter(self, "_loops", [])
        setter(self, "_pending", [])
        setter(self, "_counters", {})
        setter(self, "_plan", dict(plan or {}))
        setter(self, "fresh", [])  # (loop constant, sentinel) of every loop over an open sort
        setter(self, "failures", [])  # where an access names no element (:meth:`fails`), as Z3 Bools
        for d in bounds.decls:  # s.N, s.V, ...: a number if concrete, else a Count
            setter(self, d.letter, bounds[d.name])

    # ---- sorts --------------------------------------------------------------------------------------
    def none(self, sort: Sort | OrNone) -> Any:  # type: ignore[override]
        dom = sort if isinstance(sort, OrNone) else OrNone(sort)
        return self.ops.wrap(self.u.none(dom), dom)

    def each(self, sort: Domain) -> Any:  # type: ignore[override]
        if not self.u.is_open(sort):
            return range(self.u.size(sort))
        if not isinstance(sort, Sort):
            raise ParamError(f"cannot loop over {sort!r} for every number of elements")
        return self._loop(sort)

    def _loop(self, sort: Sort) -> Iterator[PVal]:
        parent = (self._loops[-1].key, self._loops[-1].generic) if self._loops else ()
        count = self._counters.get(parent, 0)
        self._counters[parent] = count + 1
        key = (parent, count)
        split = list(self._plan.get(key, ()))
        for term in split:  # the split-off iterations first: the loop variable is that term
            loop = _Loop(key, sort, term, False)
            self._loops.append(loop)
            yield self.ops.wrap(term, sort)
            self._close(self._loops.pop())
        # named by the encoding's own count, not Z3's process-wide one (FreshConst): a query's terms, and
        # so MBQI's course on them, then do not depend on what the process built before (parametric.Isolated)
        k = z3.Const(f"each_{sort.name}!{len(self.fresh)}", self.u.sort(sort))
        self.fresh.append(sentinel(k))
        loop = _Loop(key, sort, k, True, tuple(split))
        self._loops.append(loop)
        guard = [self.ops.wrap(k != t, BOOL) for t in split]
        self._conds.extend(guard)
        yield self.ops.wrap(k, sort)
        del self._conds[len(self._conds) - len(guard):]
        self._close(self._loops.pop())

    def _close(self, loop: _Loop) -> None:
        """Turn the iteration's writes into "for every element" updates (generic iteration)."""
        written: dict[Key, list[tuple[Any, ...]]] = {}
        for key, index, var in loop.writes:
            if z3.eq(var, loop.var):
                written.setdefault(key, []).append(index)
        for key, indices in written.items():
            at = [d for d in range(len(indices[0])) if all(z3.eq(ix[d], loop.var) for ix in indices)]
            if not at:
                if loop.generic:
                    self._close_shared(loop, key)
                elif self._loops:  # a split iteration inside another loop: see _close_shared
                    raise ParamError(self._shared_refusal(loop, key, "inside another loop over an open sort"))
                continue
            for rkey, index, var in loop.reads:
                if rkey == key and z3.eq(var, loop.var) and not z3.eq(index[at[0]], loop.var):
                    raise ParamError(f"`for x in s.each({loop.sort.name.upper()})` writes {key[0]}[x] and reads "
                                     f"another iteration's {key[0]}: not evaluable for every number of elements")
            if loop.generic:
                old, k, pos = self.fns[key], loop.var, at[0]
                self.fns[key] = lambda *xs, old=old, k=k, pos=pos: z3.substitute(old(*xs), (k, xs[pos]))
        if loop.generic and not written:
            self._pending.append(loop)

    def _close_shared(self, loop: _Loop, key: Key) -> None:
        """A loop's writes of ``key`` at an index that is not the loop variable (``tlb[k][pg[j]] = 0``
        for every pending ``j``): iterations may write the same element, so this is evaluable for
        every number of elements only when the order cannot matter: every such write stores one
        value that does not depend on the iteration, and no iteration reads ``key``. Then the loop
        is "every element some iteration writes takes that value": ``v'[x] = If(exists k: some
        write of iteration k hits x, value, v[x])``. Else a one-line refusal naming the cause."""
        if self._loops:
            raise ParamError(self._shared_refusal(loop, key, "inside another loop over an open sort"))
        updates = [(index, new, c) for k, index, new, c in loop.updates if k == key]
        if len(updates) != sum(1 for k, _, _ in loop.writes if k == key):
            raise ParamError(self._shared_refusal(loop, key, "in a loop nested in it"))
        value = updates[0][1]
        if any(_mentions(new, [loop.var]) or not z3.eq(z3.simplify(new), z3.simplify(value))
               for _, new, _ in updates):
            raise ParamError(self._shared_refusal(loop, key, "with a value that differs between iterations"))
        if any(rkey == key for rkey, _, _ in loop.reads):
            raise ParamError(self._shared_refusal(loop, key, "and reads it"))
        old, k = loop.before[key], loop.var

        def fn(*xs: Any, old: Fn = old, k: Any = k, value: Any = value, updates: Any = updates) -> Any:
            hits = [z3.And([x == i for x, i in zip(xs, index)] + ([c] if c is not None else []))
                    for index, _, c in updates]
            some = self.quantify([k], hits[0] if len(hits) == 1 else z3.Or(hits), universal=False)
            return z3.If(some, value, old(*xs))

        self.fns[key] = fn

    def _shared_refusal(self, loop: _Loop, key: Key, why: str) -> str:
        return (f"`for x in s.each({loop.sort.name.upper()})` writes {key[0]} at an index that is not the loop "
                f"variable {why}: the iterations are not independent (such a write is evaluable for every "
                "number of elements only with one value, the same in every iteration, and no read of it in the loop)")

    def _decide(self, cond: Any) -> bool:
        """A Python ``if`` on a condition: known, a split of a loop, or refused."""
        simple = z3.simplify(cond)
        if z3.is_true(simple):
            return True
        if z3.is_false(simple):
            return False
        for loop in reversed(self._loops):
            if not loop.generic:
                continue
            match = _equality(cond, loop.var)
            if match is None:
                continue
            positive, other = match
            if any(z3.eq(other, t) for t in loop.excluded):
                return not positive
            raise _Split(loop.key, other)
        raise BranchError("branches with Python `if`/`and`/`or`/`not` on a value that is not known "
                          "here (a state value); use s.when / s.ite / & | s.not_")

    # ---- quantifiers --------------------------------------------------------------------------------
    def all(self, xs: Any) -> Any:  # type: ignore[override]
        return self._quantified(xs, universal=True)

    def any(self, xs: Any) -> Any:  # type: ignore[override]
        return self._quantified(xs, universal=False)

    def _quantified(self, xs: Any, universal: bool) -> Any:
        mark = len(self._pending)
        items = [_v(x) for x in xs]
        loops = self._pending[mark:]
        del self._pending[mark:]
        if not loops:
            return self.ops.all_(items) if universal else self.ops.any_(items)
        bound = [lp.var for lp in loops]
        plain = [x for x in items if not (isinstance(x, PVal) and _mentions(self.ops.boolean(x), bound))]
        inner = [x for x in items if isinstance(x, PVal) and _mentions(self.ops.boolean(x), bound)]
        excl = [k != t for lp in loops for t in lp.excluded for k in (lp.var,)]
        if universal:
            body = z3.Implies(z3.And(excl), z3.And([self.ops.boolean(x) for x in inner])) if excl \
                else z3.And([self.ops.boolean(x) for x in inner] or [z3.BoolVal(True)])
            q = self.ops.wrap(self.quantify(bound, body, True), BOOL)
            return self.ops.all_([*plain, q])
        found = [self.ops.boolean(x) for x in inner]
        either = found[0] if len(found) == 1 else z3.Or(found) if found else z3.BoolVal(False)
        body = z3.And(excl + [either]) if excl else either
        q = self.ops.wrap(self.quantify(bound, body, False), BOOL)
        return self.ops.any_([*plain, q])

    def quantify(self, bound: Sequence[Any], body: Any, universal: bool) -> Any:
        """``ForAll``/``Exists`` (expanded over the elements in a finite universe)."""
        if not universal and len(bound) == 1:
            body, bound = _one_point(self.u, bound[0], body)
            if not bound:
                return body
        if self.u.finite is not None:
            cases = [z3.substitute(body, *zip(bound, combo)) for combo in
                     itertools.product(*(self._elements(b) for b in bound))]
            return z3.And(cases) if universal else z3.Or(cases)
        return z3.ForAll(list(bound), body) if universal else z3.Exists(list(bound), body)

    def _elements(self, const: Any) -> list[Any]:
        sort = const.sort()
        return [sort.constructor(j)() for j in range(sort.num_constructors())]

    # ---- reads and writes ---------------------------------------------------------------------------
    def _index_terms(self, var: Var, index: tuple[Any, ...]) -> tuple[Any, ...]:
        if len(index) != len(var.index):
            raise StepError(f"{var.name} is indexed by {len(var.index)} sort(s), got {len(index)} index(es)")
        return tuple(self.ops.coerce(i, sort) for i, sort in zip(index, var.index))

    def _elem_domain(self, var: Var, part: Any) -> Domain:
        if part == "len":
            return Range(0, var.cap(self.bounds), name="length")  # type: ignore[attr-defined]
        return var.domain

    def read(self, var: Var, index: tuple[Any, ...], part: Any) -> Any:
        index = tuple(_v(i) for i in index)
        if not var.held(self.bounds):
            return 0
        if isinstance(part, PVal):  # a queue position known only as a value: select among all
            out: Any = None
            self._position_fails(var, part)
            for pos in reversed(range(var.cap(self.bounds))):  # type: ignore[attr-defined]
                value = self.read(var, index, pos)
                out = value if out is None else self.ops.ite(part == pos, value, out)
            return out
        if isinstance(var, Queue) and part not in ("len", None) and not 0 <= part < var.cap(self.bounds):
            self.fails(z3.BoolVal(True))  # past the capacity: the concrete model fails (unless in a false when)
            return self.ops.wrap(self.u.zero(var.domain), var.domain)
        terms = self._index_terms(var, index)
        key = (var.name, part)
        for loop in self._loops:
            loop.reads.append((key, terms, loop.var))
        return self.ops.wrap(self.fns[key](*terms), self._elem_domain(var, part))

    def fails(self, cond: Any) -> None:
        """Record that the step fails (the concrete model raises) where ``cond`` holds and every
        enclosing ``when`` does (:attr:`failures`; a loop variable in it is free: some iteration)."""
        if z3.is_false(cond):
            return
        whole = self.ops.all_([*self._conds, self.ops.wrap(cond, BOOL)])
        term = self.ops.boolean(whole) if isinstance(whole, PVal) else z3.BoolVal(bool(whole))
        if not z3.is_false(term):
            self.failures.append(term)

    def _position_fails(self, var: Var, part: PVal) -> None:
        """A queue position known as a value fails where it names no position (the capacity or past)."""
        cap = var.cap(self.bounds)  # type: ignore[attr-defined]
        self.fails(z3.Not(_or([self.ops.boolean(part == pos) for pos in range(cap)])))

    def write(self, var: Var, index: tuple[Any, ...], part: Any, value: Any) -> None:
        index, value = tuple(_v(i) for i in index), _v(value)
        if not var.held(self.bounds):
            return
        if isinstance(part, PVal):
            self._position_fails(var, part)
            for pos in range(var.cap(self.bounds)):  # type: ignore[attr-defined]
                self._conds.append(part == pos)
                try:
                    self.write(var, index, pos, value)
                finally:
                    self._conds.pop()
            return
        cond = self.ops.all_(self._conds)
        if not isinstance(cond, PVal) and not cond:
            return
        if isinstance(var, Queue) and part not in ("len", None) and not 0 <= part < var.cap(self.bounds):
            self.fails(z3.BoolVal(True))  # past the capacity: the concrete model fails
            return
        c = self.ops.boolean(cond) if isinstance(cond, PVal) else None
        terms = self._index_terms(var, index)
        new = self.ops.coerce(value, self._elem_domain(var, part))
        if isinstance(value, PVal) and value.over is not None:
            self.fails(value.over)  # a number past its domain written: the concrete model fails
        key = (var.name, part)
        old = self.fns[key]
        self.fns[key] = _update(old, terms, new, c)
        for loop in self._loops:
            loop.writes.append((key, terms, loop.var))
        if self._loops:
            self._loops[-1].updates.append((key, terms, new, c))
            self._loops[-1].before.setdefault(key, old)


def _update(old: Fn, index: tuple[Any, ...], new: Any, cond: Any) -> Fn:
    """``old`` with ``new`` at ``index`` where ``cond`` holds (None: always)."""
    def fn(*xs: Any) -> Any:
        hit = [x == i for x, i in zip(xs, index)]
        if cond is not None:
            hit.append(cond)
        if not hit:
            return new
        return z3.If(hit[0] if len(hit) == 1 else z3.And(hit), new, old(*xs))
    return fn


def _equality(cond: Any, var: Any) -> tuple[bool, Any] | None:
    """(True, t) for ``var == t``, (False, t) for ``var != t``, else None (t without var)."""
    positive = True
    if z3.is_not(cond):
        positive, cond = False, cond.arg(0)
    if not (z3.is_eq(cond) or (z3.is_distinct(cond) and cond.num_args() == 2)):
        return None
    if z3.is_distinct(cond):
        positive = not positive
    a, b = cond.arg(0), cond.arg(1)
    if z3.eq(a, var) and not _mentions(b, [var]):
        return positive, b
    if z3.eq(b, var) and not _mentions(a, [var]):
        return positive, a
    return None


def _mentions(term: Any, consts: Sequence[Any]) -> bool:
    """Does ``term`` contain one of ``consts`` (free)?"""
    return mentions(term, [sentinel(c) for c in consts])


def sentinel(const: Any) -> tuple[Any, Any]:
    """``(const, a constant no term contains)``: substituting it shows whether a term has ``const``."""
    return const, z3.Const(f"__not_{const}", const.sort())


def mentions(term: Any, pairs: Sequence[tuple[Any, Any]]) -> bool:
    """Does ``term`` contain one of the constants of ``pairs`` (see :func:`sentinel`)?"""
    return bool(pairs) and not z3.eq(z3.substitute(term, *pairs), term)


def _one_point(u: Universe, var: Any, body: Any) -> tuple[Any, list[Any]]:
    """``exists j. (t == some(j)) & rest`` is ``is_some(t) & rest[j := val(t)]`` (and ``j == t``
    gives ``rest[j := t]``): no quantifier left for the solver."""
    conj = list(body.children()) if z3.is_and(body) else [body]
    for n, c in enumerate(conj):
        if not z3.is_eq(c):
            continue
        for a, b in ((c.arg(0), c.arg(1)), (c.arg(1), c.arg(0))):
            if _mentions(b, [var]):
                continue
            if z3.eq(a, var):
                rest = [z3.substitute(x, (var, b)) for m, x in enumerate(conj) if m != n]
                return (z3.And(rest) if rest else z3.BoolVal(True)), []
            if z3.is_app(a) and a.num_args() == 1 and z3.eq(a.arg(0), var) and \
                    z3.is_app_of(a, z3.Z3_OP_DT_CONSTRUCTOR):
                dt = a.sort()
                ctor = a.decl()
                idx = next(j for j in range(dt.num_constructors()) if dt.constructor(j) == ctor)
                value = dt.accessor(idx, 0)(b)
                rest = [dt.recognizer(idx)(b)] + [z3.substitute(x, (var, value)) for m, x in enumerate(conj) if m != n]
                return z3.And(rest), []
    return body, [var]


def evaluate(make: Callable[[Mapping[Any, list[Any]]], ParamContext], fn: Callable[..., Any],
             args: Sequence[Any], max_splits: int = 32) -> tuple[ParamContext, Any]:
    """Run ``fn(ctx, *args)`` on a fresh context from ``make(plan)``; a :class:`_Split` adds the
    split to the plan and runs it again (the function is pure: running it twice is harmless)."""
    plan: dict[Any, list[Any]] = {}
    for _ in range(max_splits + 1):
        ctx = make(plan)
        try:
            return ctx, fn(ctx, *args)
        except _Split as split:
            if any(z3.eq(split.term, t) for t in plan.get(split.key, [])):
                raise ParamError("a Python `if` on a loop variable could not be decided") from None
            plan.setdefault(split.key, []).append(split.term)
    raise ParamError(f"more than {max_splits} Python `if`s on loop variables")


def base_functions(universe: Universe, variables: Sequence[Var], bounds: ParamBounds, tag: str) -> dict[Key, Fn]:
    """A state of fresh uninterpreted functions, one per (variable, part)."""
    out: dict[Key, Fn] = {}
    for var, part in _parts(variables, bounds):
        args = [universe.sort(s) for s in var.index]
        dom = Range(0, var.cap(bounds), name="length") if part == "len" else var.domain  # type: ignore[attr-defined]
        label = f"{tag}.{var.name}" + ("" if part is None else f"<{part}>")
        f = z3.Function(label, *args, universe.sort(dom))
        out[(var.name, part)] = (lambda *xs, f=f: f(*xs)) if args else (lambda f=f: f())
    return out


def initial_functions(universe: Universe, variables: Sequence[Var], bounds: ParamBounds) -> dict[Key, Fn]:
    """The initial state: every element its domain's default (a variable's ``init`` if given)."""
    out: dict[Key, Fn] = {}
    for var, part in _parts(variables, bounds):
        if part is not None:
            value = universe.zero(var.domain) if part != "len" else \
                universe.values(Range(0, var.cap(bounds), name="length"))[0]  # type: ignore[attr-defined]
        elif var.init is not None:
            value = universe.literal(var.domain, var.init)
        else:
            value = universe.zero(var.domain)  # OrNone: none; a sort, frame, enum, bool: its 0
        out[(var.name, part)] = lambda *xs, value=value: value
    return out


def state_keys(variables: Sequence[Var], bounds: ParamBounds) -> list[Key]:
    """(variable name, part) of every function of a state."""
    return [(var.name, part) for var, part in _parts(variables, bounds)]


def _parts(variables: Sequence[Var], bounds: ParamBounds) -> list[tuple[Var, Any]]:
    """(variable, part) of every function of a state: a queue is its length and its positions."""
    out: list[tuple[Var, Any]] = []
    for var in variables:
        if not var.held(bounds):
            continue
        if isinstance(var, Queue):
            out.append((var, "len"))
            out.extend((var, pos) for pos in range(var.cap(bounds)))  # type: ignore[attr-defined]
        else:
            out.append((var, None))
    return out


def _is_pval(x: Any) -> bool:
    """Is ``x`` a parametric term (as opposed to a Python constant)?"""
    return isinstance(x, PVal)
