"""State schema: the domains of values, the variables of a protocol, and their flat layout.

A state is stored as a flat tuple of small non-negative integers, one per *slot*. Every
variable is an array indexed by zero or more index sorts (VCPU, PAGE); each element is a
slot. A :class:`Queue` is a bounded FIFO stored as a length slot plus ``capacity`` element
slots kept in normal form (unused slots hold 0). The :class:`Layout` fixes this mapping
for one protocol at one set of bounds, and knows how a permutation of VCPUs acts on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from itertools import permutations, product
from typing import Any, Iterator, Sequence

from deferral.model.bounds import Bounds


class Domain:
    """A finite set of values ``0..size-1`` with a name and a display form."""

    name: str = "domain"
    vcpu_valued: bool = False  # values name VCPUs (renamed by a VCPU permutation)

    def size(self, b: Bounds) -> int:
        raise NotImplementedError

    def default(self, b: Bounds) -> int:
        return 0

    def show(self, value: int, b: Bounds) -> Any:
        """The JSON / display form of a value."""
        return value

    def parse(self, shown: Any, b: Bounds) -> int:
        """Inverse of :meth:`show`; raises ValueError on anything else."""
        if isinstance(shown, bool) or not isinstance(shown, int):
            raise ValueError(f"expected an integer for {self.name}, got {shown!r}")
        if not 0 <= shown < self.size(b):
            raise ValueError(f"{shown!r} is outside {self.name} (0..{self.size(b) - 1})")
        return shown

    def __repr__(self) -> str:
        return self.name


class _Bool(Domain):
    name = "bool"

    def __reduce__(self) -> str:  # one instance (compared with ``is``), also when unpickled
        return "BOOL"

    def size(self, b: Bounds) -> int:
        return 2

    def show(self, value: int, b: Bounds) -> Any:
        return bool(value)

    def parse(self, shown: Any, b: Bounds) -> int:
        if not isinstance(shown, bool):
            raise ValueError(f"expected true or false, got {shown!r}")
        return int(shown)


@dataclass(frozen=True, repr=False)
class Range(Domain):
    """Integers ``low..high``, stored as ``0..high-low``; ``high`` may name a bound ("F")."""

    low: int
    high: int | str
    name: str = "range"

    def top(self, b: Bounds) -> int:
        return getattr(b, self.high) if isinstance(self.high, str) else self.high

    def size(self, b: Bounds) -> int:
        return self.top(b) - self.low + 1

    def show(self, value: int, b: Bounds) -> Any:
        return value + self.low

    def parse(self, shown: Any, b: Bounds) -> int:
        if isinstance(shown, bool) or not isinstance(shown, int):
            raise ValueError(f"expected an integer for {self.name}, got {shown!r}")
        return super().parse(shown - self.low, b)


class _Frame(Domain):
    name = "frame"

    def __reduce__(self) -> str:  # one instance (compared with ``is``), also when unpickled
        return "FRAME"

    def size(self, b: Bounds) -> int:
        return b["frames"] + 1


@dataclass(frozen=True, repr=False)
class Sort(Domain):
    """An index sort: the values ``0..b[bound]-1`` (VCPUs, pages, a protocol's own sort).

    ``symmetric``: its elements are interchangeable, so permuting them (in every index of
    this sort and in every value of it) maps reachable states to reachable states; the
    checkers reduce by that symmetry. At most one sort of a protocol is symmetric.
    """

    name: str = "sort"
    bound: str = ""
    symmetric: bool = False
    elided: bool = False  # at one element: its indices and arguments are 0 and not shown

    def size(self, b: Bounds) -> int:
        return b[self.bound]

    @property
    def vcpu_valued(self) -> bool:  # type: ignore[override]
        return self.symmetric

    def single(self, b: Bounds) -> bool:
        """Elided at these bounds: an elided sort with one element (its value is always 0)."""
        return self.elided and self.size(b) == 1

    def or_none(self, name: str | None = None) -> "OrNone":
        """This sort plus a value *none* (stored as the sort's size, shown as null)."""
        return OrNone(self, name or f"{self.name}-or-none")


@dataclass(frozen=True, repr=False)
class OrNone(Domain):
    """A value of ``sort`` or *none*; none is stored as the sort's size and shown as null."""

    sort: Sort
    name: str = "or-none"

    @property
    def vcpu_valued(self) -> bool:  # type: ignore[override]
        return self.sort.symmetric

    def size(self, b: Bounds) -> int:
        return self.sort.size(b) + 1

    def default(self, b: Bounds) -> int:
        return self.sort.size(b)

    def none(self, b: Bounds) -> int:
        return self.sort.size(b)

    def show(self, value: int, b: Bounds) -> Any:
        return None if value == self.sort.size(b) else value

    def parse(self, shown: Any, b: Bounds) -> int:
        n = self.sort.size(b)
        if shown is None:
            return n
        if isinstance(shown, bool) or not isinstance(shown, int) or not 0 <= shown < n:
            raise ValueError(f"expected a {self.sort.name} 0..{n - 1} or null, got {shown!r}")
        return shown


@dataclass(frozen=True, repr=False)
class Pair(Domain):
    """A pair (a, b) of two sorts' values, stored as ``a * size(second) + b``.

    Shown as ``[a, b]``, or as ``b`` alone when ``first`` is elided at these bounds (then a
    is always 0 and the stored value is b). Step functions build and take pairs apart with
    :meth:`make`, :meth:`first` and :meth:`second`, which use only ``+``, ``-``, ``>=`` and
    ``ite`` (every backend has them) and are the identity on b when ``first`` is elided.
    """

    first: Sort
    second: Sort
    name: str = "pair"

    def size(self, b: Bounds) -> int:
        return self.first.size(b) * self.second.size(b)

    def show(self, value: int, b: Bounds) -> Any:
        m = self.second.size(b)
        return value if self.first.single(b) else [value // m, value % m]

    def parse(self, shown: Any, b: Bounds) -> int:
        m = self.second.size(b)
        if self.first.single(b) and not isinstance(shown, list):
            return self.second.parse(shown, b)  # one space: the page alone
        if isinstance(shown, int) and not isinstance(shown, bool):
            return self.second.parse(shown, b)  # written before the first sort existed: a = 0
        if not isinstance(shown, list) or len(shown) != 2:
            raise ValueError(f"expected [{self.first.name}, {self.second.name}], got {shown!r}")
        return self.first.parse(shown[0], b) * m + self.second.parse(shown[1], b)

    def make(self, s: Any, a: Any, b: Any) -> Any:
        """The pair (a, b) as a stored value."""
        backend = getattr(s.ops, "pair", None)  # a backend with pairs of its own (the parametric one)
        if backend is not None and not self.first.single(s.bounds):
            return backend.make(self, a, b)
        if isinstance(a, int) and not s.ops.is_value(a):
            return b + a * self.second.size(s.bounds) if a else b
        value = b
        for _ in range(self.second.size(s.bounds)):
            value = value + a
        return value

    def first_of(self, s: Any, x: Any) -> Any:
        """a of a stored pair."""
        if self.first.single(s.bounds):
            return 0
        if getattr(s.ops, "pair", None) is not None:
            return s.ops.pair.first_of(self, x)
        m, out = self.second.size(s.bounds), 0
        for j in range(1, self.first.size(s.bounds)):
            out = s.ite(x >= j * m, j, out)
        return out

    def second_of(self, s: Any, x: Any) -> Any:
        """b of a stored pair."""
        if self.first.single(s.bounds):
            return x
        if getattr(s.ops, "pair", None) is not None:
            return s.ops.pair.second_of(self, x)
        m, out = self.second.size(s.bounds), x
        for j in range(1, self.first.size(s.bounds)):
            out = s.ite(x >= j * m, x - j * m, out)
        return out


@dataclass(frozen=True, repr=False)
class Enum(Domain):
    """Named values, stored as their position in ``names``."""

    names: tuple[str, ...]
    name: str = "enum"

    def size(self, b: Bounds) -> int:
        return len(self.names)

    def show(self, value: int, b: Bounds) -> Any:
        return self.names[value]

    def parse(self, shown: Any, b: Bounds) -> int:
        if shown not in self.names:
            raise ValueError(f"expected one of {', '.join(self.names)}, got {shown!r}")
        return self.names.index(shown)

    def __getitem__(self, label: str) -> int:
        return self.names.index(label)

    def __getattr__(self, label: str) -> int:
        """A value by name: ``PC.Idle`` is ``PC["Idle"]``."""
        names = self.__dict__.get("names", ())
        if label in names:
            return names.index(label)
        raise AttributeError(f"{self.__dict__.get('name', 'enum')} has no value or attribute {label!r}")


BOOL = _Bool()
FRAME = _Frame()
VCPU = Sort("vcpu", "vcpus", symmetric=True)
PAGE = Sort("page", "pages")
SPACE = Sort("space", "spaces", elided=True)
VCPU_OR_NONE = VCPU.or_none("vcpu-or-none")

#: The reference's index sorts (any :class:`Sort` can index a variable).
INDEX_SORTS = (VCPU, PAGE, SPACE)


@dataclass(frozen=True)
class Var:
    """An array variable: ``index`` sorts (VCPU, PAGE, any :class:`Sort`), element ``domain``."""

    name: str
    domain: Domain
    index: tuple[Domain, ...] = ()
    doc: str = ""
    ghost: bool = False
    init: int | None = None  # stored initial value; None means the domain's default

    def __post_init__(self) -> None:
        if not self.name.isidentifier() or self.name.startswith("_"):
            raise ValueError(f"variable name {self.name!r} must be a plain identifier")
        for sort in self.index:
            if not isinstance(sort, Sort):
                raise ValueError(f"variable {self.name}: index {sort!r} is not a sort (VCPU, PAGE or a Sort)")

    def shape(self, b: Bounds) -> tuple[int, ...]:
        return tuple(sort.size(b) for sort in self.index)

    def held(self, b: Bounds) -> bool:
        """Does the variable hold state at these bounds? Not when its values are of an elided
        sort with one element (``cr3`` at one space): it is always 0 and has no slots."""
        return not (isinstance(self.domain, Sort) and self.domain.single(b))

    def shown_dims(self, b: Bounds) -> tuple[int, ...]:
        """The index positions shown at these bounds (elided single sorts left out)."""
        return tuple(d for d, sort in enumerate(self.index) if not sort.single(b))


@dataclass(frozen=True)
class Queue(Var):
    """A bounded FIFO per index tuple: a length slot, then ``capacity`` element slots."""

    capacity: int | str = "queue"

    def cap(self, b: Bounds) -> int:
        return getattr(b, self.capacity) if isinstance(self.capacity, str) else self.capacity


@dataclass(frozen=True)
class Slot:
    """One stored integer: element ``index`` of ``var`` (``part`` = 'len' or a queue position)."""

    var: Var
    index: tuple[int, ...]
    part: str | int | None
    size: int  # number of values
    shown: tuple[int, ...] = ()  # index positions shown in labels (elided single sorts left out)

    @property
    def bits(self) -> int:
        return max(1, (self.size - 1).bit_length())

    @property
    def vcpu_valued(self) -> bool:
        return self.part != "len" and self.var.domain.vcpu_valued

    def label(self) -> str:
        text = self.var.name + "".join(f"[{self.index[d]}]" for d in self.shown)
        if self.part == "len":
            return f"len({text})"
        if self.part is not None:
            return f"{text}<{self.part}>"
        return text


@dataclass(frozen=True)
class Layout:
    """The flat slot layout of a protocol's variables at given bounds."""

    bounds: Bounds
    variables: tuple[Var, ...]
    slots: tuple[Slot, ...] = field(init=False)
    where: dict[tuple[str, tuple[int, ...], Any], int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        b = self.bounds
        slots: list[Slot] = []
        where: dict[tuple[str, tuple[int, ...], Any], int] = {}
        for var in self.variables:
            if not var.held(b):
                continue
            shown = var.shown_dims(b)
            for idx in product(*(range(n) for n in var.shape(b))):
                parts: list[tuple[Any, int]]
                if isinstance(var, Queue):
                    parts = [("len", var.cap(b) + 1)] + [(s, var.domain.size(b)) for s in range(var.cap(b))]
                else:
                    parts = [(None, var.domain.size(b))]
                for part, size in parts:
                    where[(var.name, idx, part)] = len(slots)
                    slots.append(Slot(var, idx, part, size, shown))
        object.__setattr__(self, "slots", tuple(slots))
        object.__setattr__(self, "where", where)

    def __len__(self) -> int:
        return len(self.slots)

    def var(self, name: str) -> Var:
        for var in self.variables:
            if var.name == name:
                return var
        raise KeyError(name)

    def slot(self, name: str, index: tuple[int, ...] = (), part: Any = None) -> int:
        """The slot of an element; an index may leave out elided single sorts (``gpt[p]``)."""
        return self.where[(name, self.full_index(self.var(name), index), part)]

    def full_index(self, var: Var, index: tuple[int, ...]) -> tuple[int, ...]:
        """``index`` with 0 put in for the elided single sorts it leaves out."""
        if len(index) == len(var.index):
            return tuple(index)
        shown = var.shown_dims(self.bounds)
        if len(index) != len(shown):
            return tuple(index)
        full = [0] * len(var.index)
        for d, i in zip(shown, index):
            full[d] = i
        return tuple(full)

    def shown_shape(self, var: Var) -> tuple[int, ...]:
        """The shape of ``var`` as shown (elided single sorts left out)."""
        return _shown_shape(var, self.bounds)

    @cached_property
    def shown_variables(self) -> tuple[Var, ...]:
        """The variables that hold state at these bounds (the fields of a shown state)."""
        return tuple(v for v in self.variables if v.held(self.bounds))

    @cached_property
    def initial(self) -> tuple[int, ...]:
        b = self.bounds
        values = []
        for s in self.slots:
            if s.part is not None:
                values.append(0)
            else:
                values.append(s.var.domain.default(b) if s.var.init is None else s.var.init)
        return tuple(values)

    @cached_property
    def sizes(self) -> tuple[int, ...]:
        return tuple(s.size for s in self.slots)

    @cached_property
    def bits(self) -> tuple[int, ...]:
        return tuple(s.bits for s in self.slots)

    @property
    def total_bits(self) -> int:
        return sum(self.bits)

    # ---- symmetry (of the protocol's symmetric sort, VCPUs in the reference) ----------
    @cached_property
    def symmetric_sort(self) -> Sort | None:
        """The sort whose elements are interchangeable, if any (at most one)."""
        found: list[Sort] = []
        for var in self.variables:
            for d in (*var.index, var.domain):
                sort = d.sort if isinstance(d, OrNone) else d
                if isinstance(sort, Sort) and sort.symmetric and sort not in found:
                    found.append(sort)
        if len(found) > 1:
            raise ValueError(f"at most one symmetric sort is supported, got {', '.join(s.name for s in found)}")
        return found[0] if found else None

    @property
    def symmetric_size(self) -> int:
        """How many elements the symmetric sort has (1 without one: only the identity)."""
        sort = self.symmetric_sort
        return sort.size(self.bounds) if sort is not None else 1

    @cached_property
    def permutations(self) -> tuple[tuple[int, ...], ...]:
        """All permutations of the symmetric sort, identity first; ``perm[i]`` is i's new number."""
        return tuple(permutations(range(self.symmetric_size)))

    @cached_property
    def generators(self) -> tuple[tuple[int, ...], ...]:
        """The transposition (0 1) and the cycle (0 1 ... n-1) of the symmetric sort's n elements:
        together they generate every permutation (one of them at n=2, none below)."""
        n = self.symmetric_size
        if n < 2:
            return ()
        swap = (1, 0, *range(2, n))
        cycle = tuple((i + 1) % n for i in range(n))
        return (swap,) if n == 2 else (swap, cycle)

    def permute_plan(self, perm: Sequence[int]) -> tuple[list[int], list[bool]]:
        """How ``perm`` acts: image slot j takes source slot ``src[j]``, renamed if ``remap[j]``.

        A VCPU-valued slot's value v becomes ``perm[v]`` (and *none*, stored as N, stays).
        """
        src = [0] * len(self.slots)
        for j, s in enumerate(self.slots):
            new_index = tuple(perm[i] if sort.symmetric else i for sort, i in zip(s.var.index, s.index))
            src[self.where[(s.var.name, new_index, s.part)]] = j
        remap = [self.slots[src[j]].vcpu_valued for j in range(len(self.slots))]
        return src, remap

    def permute(self, state: Sequence[int], perm: Sequence[int]) -> tuple[int, ...]:
        """The image of a concrete state under a VCPU permutation."""
        src, remap = self.permute_plan(perm)
        n = self.symmetric_size
        out = []
        for j, k in enumerate(src):
            v = state[k]
            out.append(perm[v] if remap[j] and v < n else v)
        return tuple(out)

    # ---- display -------------------------------------------------------------------
    def to_json(self, state: Sequence[int]) -> dict[str, Any]:
        """The state as ``{variable: nested lists}``; queues as lists, oldest first."""
        b = self.bounds
        out: dict[str, Any] = {}
        for var in self.shown_variables:
            def element(idx: tuple[int, ...], var: Var = var) -> Any:
                idx = self.full_index(var, idx)
                if isinstance(var, Queue):
                    length = state[self.where[(var.name, idx, "len")]]
                    return [var.domain.show(state[self.where[(var.name, idx, s)]], b) for s in range(length)]
                return var.domain.show(state[self.where[(var.name, idx, None)]], b)

            out[var.name] = _nest(_shown_shape(var, b), element)
        return out

    def from_json(self, shown: Any) -> tuple[int, ...]:
        """Inverse of :meth:`to_json`; raises ValueError naming the first bad field."""
        b = self.bounds
        if not isinstance(shown, dict):
            raise ValueError("a state must be a JSON object")
        missing = [v.name for v in self.shown_variables if v.name not in shown]
        extra = sorted(set(shown) - {v.name for v in self.shown_variables})
        if missing or extra:
            raise ValueError(f"state fields differ from the model: missing {missing}, unknown {extra}")
        values = [0] * len(self.slots)
        for var in self.shown_variables:
            shape = _shown_shape(var, b)
            for sidx in product(*(range(n) for n in shape)):
                node = shown[var.name]
                for depth, i in enumerate(sidx):
                    if not isinstance(node, list) or len(node) != shape[depth]:
                        raise ValueError(f"{var.name}: expected a list of {shape[depth]}")
                    node = node[i]
                where = var.name + "".join(f"[{i}]" for i in sidx)
                idx = self.full_index(var, sidx)
                try:
                    if isinstance(var, Queue):
                        if not isinstance(node, list) or len(node) > var.cap(b):
                            raise ValueError(f"expected a list of at most {var.cap(b)} entries")
                        values[self.where[(var.name, idx, "len")]] = len(node)
                        for s, item in enumerate(node):
                            values[self.where[(var.name, idx, s)]] = var.domain.parse(item, b)
                    else:
                        values[self.where[(var.name, idx, None)]] = var.domain.parse(node, b)
                except ValueError as exc:
                    raise ValueError(f"{where}: {exc}") from None
        return tuple(values)

    def diff(self, before: Sequence[int], after: Sequence[int]) -> dict[str, tuple[Any, Any]]:
        """Changed elements as ``{"shadow[1][0]": (old, new)}``; queues compared whole."""
        old, new = self.to_json(before), self.to_json(after)
        changes: dict[str, tuple[Any, Any]] = {}
        for var in self.shown_variables:
            for path, a, c in _leaves(var, old[var.name], new[var.name], self.bounds):
                if a != c:
                    changes[var.name + path] = (a, c)
        return changes


def _nest(shape: tuple[int, ...], element: Any, prefix: tuple[int, ...] = ()) -> Any:
    if len(prefix) == len(shape):
        return element(prefix)
    return [_nest(shape, element, prefix + (i,)) for i in range(shape[len(prefix)])]


def _shown_shape(var: Var, b: Bounds) -> tuple[int, ...]:
    shape = var.shape(b)
    return tuple(shape[d] for d in var.shown_dims(b))


def _leaves(var: Var, a: Any, c: Any, b: Bounds, path: str = "", depth: int = 0) -> Iterator[tuple[str, Any, Any]]:
    shape = _shown_shape(var, b)
    if depth == len(shape):
        yield path, a, c
        return
    for i in range(shape[depth]):
        yield from _leaves(var, a[i], c[i], b, f"{path}[{i}]", depth + 1)
