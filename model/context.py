"""The step context: how a step function reads and writes the state.

Step, procedure and property functions receive a :class:`StepContext` ``s`` and write
the protocol almost as PROTOCOL.md does (docs/notation.md is the full guide)::

    s.gpt[p] = f                      # assignment
    s.tlb[k][s.pg[i]] = 0             # index by a state value
    for k in s.each(VCPU):            # loop over a sort
        with s.when(s.shadow[k][p] != 0):   # conditional effect
            s.shadow[k][p] = s.gpt[p]
    s.cur[k] = s.none(VCPU)           # the named "none" of VCPU-or-none values
    s.pc[i] == PC.Idle                # enum values by name
    s.queue[i].push(p)                # queues: push, pop, pop_back, head, tail, q[n],
                                      # length, full, empty, contains
    s.proc.drain_one(i)               # call a named procedure of the protocol

Rules that keep one definition valid on every backend: loop only over sorts and bounds
(``s.each(SORT)``; ``range(s.N)`` still works), never branch with Python ``if`` on a state
value (use ``s.when`` or ``s.ite``), and combine conditions with ``&``, ``|`` and
``s.not_`` (never ``and``, ``or``, ``not``). Reads see the writes made earlier in the
same step.
"""

from __future__ import annotations

import inspect
from functools import lru_cache
from itertools import product
from typing import Any, Callable, Iterator, Mapping, Sequence

from deferral.model.call_memo import CallMemo
from deferral.model.ops import Ops
from deferral.model.schema import Domain, Layout, OrNone, Queue, Sort, Var


class StepError(Exception):
    """A step, procedure or property did something the model does not allow."""


class OneSpaceError(StepError):
    """A function in the one-space notation ran at more than one address space."""


#: What a user's step, procedure, property or variant file may raise that is its own error,
#: reported as bad input: any exception, and ``SystemExit`` (``sys.exit()`` in a variant must
#: never end the run with a verdict's exit code). ``KeyboardInterrupt`` and the CLI's time
#: limit are not in it: they are the user's and the limit's, not the variant's.
USER_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit)


class ProcessExit(SystemExit):
    """A user's code called a function that ends the process (``os._exit``, ``os.kill`` of its
    own process, ``os.exec*``); raised instead while a command runs (see deferral.cli.contain)."""

    def __init__(self, call: str) -> None:
        super().__init__(call)
        self.call = call


def describe_user_error(exc: BaseException) -> str:
    """``raised TypeError: msg``, or ``called sys.exit(0)`` for a SystemExit (``called os._exit(0)``...)."""
    if isinstance(exc, ProcessExit):
        return f"called {exc.call}"
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    return f"raised {type(exc).__name__}: {exc}"


class StepContext:
    """Reads and writes one state (or a batch, or a symbolic state) through variable views."""

    #: procedure calls shared between contexts (``calls`` of ``__init__``); none for a subclass that sets none
    _calls: CallMemo | None = None

    def __init__(
        self,
        layout: Layout,
        ops: Ops,
        values: Sequence[Any],
        procedures: Mapping[str, Callable[..., Any]] | None = None,
        *,
        copy_values: bool = True,
        track_undefined: bool = False,
        calls: CallMemo | None = None,
    ) -> None:
        """``values`` are the per-slot values; with ``copy_values=False`` a mutable sequence
        is used as it is (e.g. one that reads batch columns lazily) and the step writes into it.
        With ``track_undefined`` (symbolic or batch values), :attr:`undefined` collects the
        conditions under which a read or write at a symbolic index names no element (where the
        concrete model raises "index out of range"): a backend that selects among the elements
        (Z3 terms, numpy batches, traced kernels) would otherwise read one of them instead.
        ``calls``: procedure calls evaluated once across the contexts that share it (Z3 terms:
        :mod:`deferral.model.call_memo`)."""
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "values", list(values) if copy_values else values)
        object.__setattr__(self, "written", set())
        object.__setattr__(self, "reads", set())
        object.__setattr__(self, "_conds", [])
        object.__setattr__(self, "_memo", {})
        object.__setattr__(self, "undefined", [] if track_undefined else None)
        object.__setattr__(self, "_vars", {v.name: v for v in layout.variables})
        object.__setattr__(self, "proc", _Procedures(self, procedures or {}))
        object.__setattr__(self, "_calls", calls)
        b = layout.bounds
        for decl in b.decls:  # the protocol's bounds by letter: s.N, s.V, s.F, s.Q, ...
            object.__setattr__(self, decl.letter, b[decl.name])
        object.__setattr__(self, "bounds", b)

    # ---- variables ---------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        var = self._vars.get(name)
        if var is None:
            raise AttributeError(f"the model has no variable or operation named {name!r}")
        if not var.index:
            return self.read(var, (), None) if not isinstance(var, Queue) else QueueView(self, var, ())
        return VarView(self, var, ())

    def __setattr__(self, name: str, value: Any) -> None:
        var = self._vars.get(name)
        if var is None:
            raise AttributeError(f"the model has no variable named {name!r}; declare it "
                                 f"(derive(add_variables=[Var({name!r}, DOMAIN, (), ...)]) for one of no index)")
        if var.index or isinstance(var, Queue):
            raise AttributeError(f"cannot assign to {name!r}; assign to its elements, e.g. s.{name}[i] = ...")
        self.write(var, (), None, value)

    # ---- logic -------------------------------------------------------------------
    def ite(self, cond: Any, then: Any, other: Any) -> Any:
        return self.ops.ite(_v(cond), _v(then), _v(other))

    def not_(self, x: Any) -> Any:
        return self.ops.not_(_v(x))

    def all(self, xs: Any) -> Any:
        return self.ops.all_(_v(x) for x in xs)

    def any(self, xs: Any) -> Any:
        return self.ops.any_(_v(x) for x in xs)

    def each(self, sort: Domain) -> range:
        """The elements of a sort at these bounds: ``for k in s.each(VCPU)``."""
        return range(sort.size(self.bounds))

    def none(self, sort: Sort | OrNone) -> int:
        """The *none* value of ``sort``-or-none variables (``s.cur[k] = s.none(VCPU)``)."""
        base = sort.sort if isinstance(sort, OrNone) else sort
        return base.size(self.bounds)

    def when(self, cond: Any) -> "_When":
        """Effects only where ``cond`` holds, as a block or a decorated function::

            with s.when(c):        # the block runs; its writes count only where c holds
                ...
            @s.when(c)             # the function runs only where c may hold: on a
            def _():               # concrete state where c is false it is not called
                ...

        On a concrete state where ``c`` is false, reads in a ``with`` block that fall
        outside a variable (``q[q.length - 1]`` of an empty queue) read 0 instead of failing.
        """
        return _When(self, _v(cond))

    def _false_concrete(self) -> bool:
        """On a concrete state: is some enclosing ``when`` condition false?"""
        return self.ops.concrete and not all(self._conds)

    # ---- slot access (used by the views) -------------------------------------------
    def read(self, var: Var, index: tuple[Any, ...], part: Any) -> Any:
        """Read an element; symbolic indices become a selection over all candidates."""
        index = tuple(_v(i) for i in index)
        if not var.held(self._layout.bounds):
            return 0  # a variable of an elided single sort (cr3 at one space): always 0
        if not any(self.ops.is_value(i) for i in index) and not self.ops.is_value(part):
            try:
                slot = self._slot(var, index, part)
            except StepError:
                if self._false_concrete():
                    return 0  # inside a when that does not hold here: the read does not matter
                raise
            self.reads.add(slot)
            return self.values[slot]
        candidates = list(self._candidates(var, index, part))
        result: Any = None
        for cond, concrete_index, concrete_part in reversed(candidates):
            value = self.read(var, concrete_index, concrete_part)
            result = value if result is None else self.ops.ite(cond, value, result)
        return result

    def write(self, var: Var, index: tuple[Any, ...], part: Any, value: Any) -> None:
        """Write an element, under the enclosing ``when`` conditions."""
        index, value = tuple(_v(i) for i in index), _v(value)
        if not var.held(self._layout.bounds):
            return  # always 0 at these bounds: nothing is stored
        if not any(self.ops.is_value(i) for i in index) and not self.ops.is_value(part):
            if self._false_concrete():
                return
            self._assign(self._slot(var, index, part), value)
            return
        for cond, concrete_index, concrete_part in self._candidates(var, index, part):
            self._conds.append(cond)
            try:
                self._assign(self._slot(var, concrete_index, concrete_part), value)
            finally:
                self._conds.pop()

    def _note_undefined(self, terms: list[Any], sizes: list[int]) -> None:
        """Where tracked: an access at the symbolic indices ``terms`` (of ``sizes`` elements) names no
        element where every enclosing ``when`` holds and some index is below 0 or past its size."""
        if self.undefined is not None:
            outside = self.ops.any_([self.ops.outside(t, n) for t, n in zip(terms, sizes)])
            if self.ops.is_value(outside) or outside:
                self.undefined.append(self.ops.all_([*self._conds, outside]))

    def _assign(self, slot: int, value: Any) -> None:
        if self._conds:
            cond = self.ops.all_(self._conds)
            if not self.ops.is_value(cond):  # a constant condition: no select needed
                if not cond:
                    return
            elif self.ops.concrete:
                if not cond:
                    return
            else:
                value = self.ops.ite(cond, value, self.values[slot])
        self.values[slot] = self.ops.store(self._layout.slots[slot], value)
        self.written.add(slot)

    def _slot(self, var: Var, index: tuple[Any, ...], part: Any) -> int:
        key = (var.name, tuple(int(i) for i in index), part if part is None or part == "len" else int(part))
        try:
            return self._layout.where[key]
        except KeyError:
            shown = var.name + "".join(f"[{i}]" for i in key[1]) + ("" if part is None else f"<{part}>")
            raise StepError(f"index out of range: {shown}") from None

    def _candidates(self, var: Var, index: tuple[Any, ...], part: Any) -> Iterator[tuple[Any, tuple[int, ...], Any]]:
        """(condition, concrete index, concrete part) for every element a symbolic index may name."""
        shape = var.shape(self._layout.bounds)
        at = [k for k, i in enumerate(index) if self.ops.is_value(i)]
        terms, sizes = [index[k] for k in at], [shape[k] for k in at]
        if self.ops.is_value(part):
            assert isinstance(var, Queue)
            terms.append(part)
            sizes.append(var.cap(self._layout.bounds))
        self._note_undefined(terms, sizes)
        concrete_index = list(index)
        for cond, values in self._index_conds(terms, sizes):
            for k, v in zip(at, values):
                concrete_index[k] = v
            yield cond, tuple(concrete_index), (values[-1] if len(values) > len(at) else part)

    def _index_conds(self, terms: list[Any], sizes: list[int]) -> list[tuple[Any, tuple[int, ...]]]:
        """``(t0 == v0 & t1 == v1 ..., (v0, v1, ...))`` for every combination of values of the
        symbolic ``terms``; built once per step context for the same terms where the values
        are immutable (Z3 terms: a procedure's symbolic page names a variable of every VCPU)."""
        key = (tuple(map(id, terms)), tuple(sizes)) if self.ops.immutable else None
        if key is not None:
            hit = self._memo.get(key)
            if hit is not None:
                return hit[1]
        found = [(self.ops.all_([t == v for t, v in zip(terms, values)]), values)
                 for values in product(*(range(n) for n in sizes))]
        if key is not None:
            self._memo[key] = (terms, found)  # the terms are kept: their ids stay theirs
        return found


_QUEUE_OPS = frozenset(("push", "pop", "pop_back", "head", "tail", "length", "full", "empty", "contains",
                        "capacity"))


def _v(x: Any) -> Any:
    """A value: a partially indexed view used as a value is read in the one-space notation."""
    return x._value() if isinstance(x, VarView) else x


class VarView:
    """``s.name[i][j]``: indexes an array variable one sort at a time.

    A view indexed by fewer sorts than the variable has, used as a value, is the one-space
    notation (``s.gpt[p]`` for ``gpt`` indexed by SPACE × PAGE, written before address
    spaces existed): at one space it reads space 0, the only one; at more spaces it is a
    one-line error saying how to index the space.
    """

    __slots__ = ("_ctx", "_var", "_index")
    __hash__ = object.__hash__

    def __init__(self, ctx: StepContext, var: Var, index: tuple[Any, ...]) -> None:
        self._ctx, self._var, self._index = ctx, var, index

    def _value(self) -> Any:
        ctx, var = self._ctx, self._var
        b = ctx._layout.bounds
        shown = var.shown_dims(b)
        if len(self._index) == len(shown) < len(var.index):
            full = [0] * len(var.index)
            for d, i in zip(shown, self._index):
                full[d] = i
            if isinstance(var, Queue):
                return QueueView(ctx, var, tuple(full))
            return ctx.read(var, tuple(full), None)
        sorts = " × ".join(sort.name.upper() for sort in var.index)
        given = var.name + "".join("[.]" for _ in self._index)
        if len(self._index) < len(shown) and len(shown) < len(var.index) + 1 and any(
                sort.elided for sort in var.index):
            raise OneSpaceError(f"{given} is not a value: {var.name} is indexed by {sorts}; the one-space "
                            f"notation works at one address space only, here index every sort "
                            f"(e.g. s.gpt[sp][p], s.shadow[k][sp][p]; the space VCPU i runs is s.cr3[i]); "
                            f"see docs/notation.md")
        raise StepError(f"{given} is not a value: {var.name} is indexed by {sorts}; index it fully")

    # a partially indexed view used as a value (the one-space notation)
    def __eq__(self, other: Any) -> Any:  # type: ignore[override]
        return self._value() == _v(other)

    def __ne__(self, other: Any) -> Any:  # type: ignore[override]
        return self._value() != _v(other)

    def __lt__(self, other: Any) -> Any:
        return self._value() < _v(other)

    def __le__(self, other: Any) -> Any:
        return self._value() <= _v(other)

    def __gt__(self, other: Any) -> Any:
        return self._value() > _v(other)

    def __ge__(self, other: Any) -> Any:
        return self._value() >= _v(other)

    def __add__(self, other: Any) -> Any:
        return self._value() + _v(other)

    def __radd__(self, other: Any) -> Any:
        return _v(other) + self._value()

    def __sub__(self, other: Any) -> Any:
        return self._value() - _v(other)

    def __rsub__(self, other: Any) -> Any:
        return _v(other) - self._value()

    def __and__(self, other: Any) -> Any:
        return self._value() & _v(other)

    def __rand__(self, other: Any) -> Any:
        return _v(other) & self._value()

    def __or__(self, other: Any) -> Any:
        return self._value() | _v(other)

    def __ror__(self, other: Any) -> Any:
        return _v(other) | self._value()

    def __invert__(self) -> Any:
        return ~self._value()

    def __bool__(self) -> bool:
        return bool(self._value())

    def __index__(self) -> int:
        return int(self._value())

    def __getattr__(self, name: str) -> Any:  # queue operations on a one-space queue view
        if name not in _QUEUE_OPS:
            raise AttributeError(name)
        return getattr(self._value(), name)

    def __getitem__(self, i: Any) -> Any:
        index = self._index + (i,)
        if len(index) < len(self._var.index):
            return VarView(self._ctx, self._var, index)
        if isinstance(self._var, Queue):
            return QueueView(self._ctx, self._var, index)
        return self._ctx.read(self._var, index, None)

    def __setitem__(self, i: Any, value: Any) -> None:
        index = self._index + (i,)
        var, b = self._var, self._ctx._layout.bounds
        if len(index) == len(var.shown_dims(b)) < len(var.index) and not isinstance(var, Queue):
            self._ctx.write(var, self._ctx._layout.full_index(var, index), None, value)  # one-space notation
            return
        if len(index) != len(var.index) or isinstance(var, Queue):
            VarView(self._ctx, var, index)._value()  # raises the one-line error that says how to index it
            raise StepError(f"cannot assign to part of {var.name}: index it fully")
        self._ctx.write(var, index, None, value)

    def __len__(self) -> int:
        return self._var.shape(self._ctx._layout.bounds)[len(self._index)]


class QueueView:
    """One bounded FIFO: ``length``, ``head()``, ``push(x)``, ``pop()``, ``full()``, ``empty()``."""

    __slots__ = ("_ctx", "_var", "_index")

    def __init__(self, ctx: StepContext, var: Queue, index: tuple[Any, ...]) -> None:
        self._ctx, self._var, self._index = ctx, var, index

    @property
    def capacity(self) -> int:
        return self._var.cap(self._ctx._layout.bounds)

    @property
    def length(self) -> Any:
        return self._ctx.read(self._var, self._index, "len")

    def __getitem__(self, position: Any) -> Any:
        """The entry at ``position`` (0 = oldest); 0 past the end (normal form)."""
        return self._ctx.read(self._var, self._index, position)

    def full(self) -> Any:
        return self.length == self.capacity

    def empty(self) -> Any:
        return self.length == 0

    def head(self) -> Any:
        """The oldest entry (the FIFO end); 0 when empty."""
        return self[0]

    def tail(self) -> Any:
        """The newest entry (the LIFO end); 0 when empty."""
        length = self.length
        return self[self._ctx.ite(length > 0, length - 1, 0)]

    def contains(self, item: Any) -> Any:
        """Does the queue hold ``item``?"""
        ctx = self._ctx
        return ctx.any((self.length > pos) & (self[pos] == item) for pos in range(self.capacity))

    def pop_back(self) -> Any:
        """Remove and return the newest entry (where the queue is not empty): the LIFO end."""
        ctx = self._ctx
        length = self.length
        last = self.tail()
        with ctx.when(length > 0):
            ctx.write(self._var, self._index, ctx.ite(length > 0, length - 1, 0), 0)
            ctx.write(self._var, self._index, "len", length - 1)
        return last

    def push(self, item: Any) -> None:
        """Append ``item`` (where the queue is not full; a full queue is left as is)."""
        ctx = self._ctx
        length = self.length
        with ctx.when(length < self.capacity):
            if ctx.ops.is_value(length):
                ctx.write(self._var, self._index, length, item)
            elif length < self.capacity:
                ctx.write(self._var, self._index, length, item)
            ctx.write(self._var, self._index, "len", length + 1)

    def pop(self) -> Any:
        """Remove and return the oldest entry (where the queue is not empty)."""
        ctx = self._ctx
        length = self.length
        head = self.head()
        with ctx.when(length > 0):
            for position in range(self.capacity - 1):
                ctx.write(self._var, self._index, position, self[position + 1])
            ctx.write(self._var, self._index, self.capacity - 1, 0)
            ctx.write(self._var, self._index, "len", length - 1)
        return head


class _When:
    """``s.when(cond)``: a context manager, or a decorator that runs the function under ``cond``."""

    __slots__ = ("_ctx", "_cond")

    def __init__(self, ctx: StepContext, cond: Any) -> None:
        self._ctx, self._cond = ctx, cond

    def __enter__(self) -> None:
        self._ctx._conds.append(self._cond)

    def __exit__(self, *exc: Any) -> None:
        self._ctx._conds.pop()

    def __call__(self, body: Callable[[], Any]) -> Callable[[], Any]:
        ctx = self._ctx
        constant = not ctx.ops.is_value(self._cond)
        if (constant and not self._cond) or (ctx.ops.concrete and not all(ctx._conds)):
            return body  # not evaluated where the condition is (known to be) false
        with self:
            body()
        return body


class _Procedures:
    """``s.proc.name(args)`` calls the protocol's procedure ``name`` with this context."""

    __slots__ = ("_ctx", "_table")

    def __init__(self, ctx: StepContext, table: Mapping[str, Callable[..., Any]]) -> None:
        self._ctx, self._table = ctx, table

    def __getattr__(self, name: str) -> Callable[..., Any]:
        fn = self._table.get(name)
        if fn is None:
            raise StepError(f"the protocol has no procedure named {name!r}")
        ctx = self._ctx

        def run(args: tuple[Any, ...]) -> Any:
            return fn(ctx, *args) if ctx._calls is None else ctx._calls.run(ctx, name, fn, args)

        def call(*args: Any) -> Any:
            most = max_positional(fn) - 1  # after s
            if len(args) <= most:
                return run(args)
            extra = args[most:]
            if all(not ctx.ops.is_value(a) and a == 0 for a in extra) and _optional_bounds_at_default(ctx):
                return run(args[:most])  # written before a trailing argument (a space) existed
            raise OneSpaceError(f"procedure {name} takes {most} argument(s) after s, the protocol passes "
                            f"{len(args)}: the last one(s) name a space (address spaces); add a parameter "
                            f"for it, e.g. def {name}(s, {', '.join(f'a{n}' for n in range(most))}, sp) "
                            "(docs/notation.md), or check at --spaces 1")
        return call


def _optional_bounds_at_default(ctx: StepContext) -> bool:
    b = ctx.bounds
    return all(b[d.name] == d.default for d in b.decls if not d.always_shown)


@lru_cache(maxsize=None)
def max_positional(fn: Callable[..., Any]) -> int:
    """How many positional arguments ``fn`` takes (a large number for ``*args``)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return 1 << 16
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return 1 << 16
    return sum(1 for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD))
