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

from itertools import product
from typing import Any, Callable, Iterator, Mapping, Sequence

from deferral.model.ops import Ops
from deferral.model.schema import Domain, Layout, OrNone, Queue, Sort, Var


class StepError(Exception):
    """A step, procedure or property did something the model does not allow."""


#: What a user's step, procedure, property or variant file may raise that is its own error,
#: reported as bad input: any exception, and ``SystemExit`` (``sys.exit()`` in a variant must
#: never end the run with a verdict's exit code). ``KeyboardInterrupt`` and the CLI's time
#: limit are not in it: they are the user's and the limit's, not the variant's.
USER_ERRORS: tuple[type[BaseException], ...] = (Exception, SystemExit)


def describe_user_error(exc: BaseException) -> str:
    """``raised TypeError: msg``, or ``called sys.exit(0)`` for a SystemExit."""
    if isinstance(exc, SystemExit):
        return f"called sys.exit({exc.code!r})"
    return f"raised {type(exc).__name__}: {exc}"


class StepContext:
    """Reads and writes one state (or a batch, or a symbolic state) through variable views."""

    def __init__(
        self,
        layout: Layout,
        ops: Ops,
        values: Sequence[Any],
        procedures: Mapping[str, Callable[..., Any]] | None = None,
        *,
        copy_values: bool = True,
    ) -> None:
        """``values`` are the per-slot values; with ``copy_values=False`` a mutable sequence
        is used as it is (e.g. one that reads batch columns lazily) and the step writes into it."""
        object.__setattr__(self, "_layout", layout)
        object.__setattr__(self, "ops", ops)
        object.__setattr__(self, "values", list(values) if copy_values else values)
        object.__setattr__(self, "written", set())
        object.__setattr__(self, "reads", set())
        object.__setattr__(self, "_conds", [])
        object.__setattr__(self, "_vars", {v.name: v for v in layout.variables})
        object.__setattr__(self, "proc", _Procedures(self, procedures or {}))
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
        if var is None or var.index or isinstance(var, Queue):
            raise AttributeError(f"cannot assign to {name!r}; assign to its elements, e.g. s.{name}[i] = ...")
        self.write(var, (), None, value)

    # ---- logic -------------------------------------------------------------------
    def ite(self, cond: Any, then: Any, other: Any) -> Any:
        return self.ops.ite(cond, then, other)

    def not_(self, x: Any) -> Any:
        return self.ops.not_(x)

    def all(self, xs: Any) -> Any:
        return self.ops.all_(xs)

    def any(self, xs: Any) -> Any:
        return self.ops.any_(xs)

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
        return _When(self, cond)

    def _false_concrete(self) -> bool:
        """On a concrete state: is some enclosing ``when`` condition false?"""
        return self.ops.concrete and not all(self._conds)

    # ---- slot access (used by the views) -------------------------------------------
    def read(self, var: Var, index: tuple[Any, ...], part: Any) -> Any:
        """Read an element; symbolic indices become a selection over all candidates."""
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

    def _assign(self, slot: int, value: Any) -> None:
        if self._conds:
            cond = self.ops.all_(self._conds)
            if self.ops.concrete:
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
        shape = var.shape(self._layout.bounds)
        choices = [range(n) if self.ops.is_value(i) else (i,) for i, n in zip(index, shape)]
        if self.ops.is_value(part):
            assert isinstance(var, Queue)
            part_choices: Sequence[Any] = range(var.cap(self._layout.bounds))
        else:
            part_choices = (part,)
        for concrete_index in product(*choices):
            for concrete_part in part_choices:
                conds = [i == c for i, c in zip(index, concrete_index) if self.ops.is_value(i)]
                if self.ops.is_value(part):
                    conds.append(part == concrete_part)
                yield self.ops.all_(conds), concrete_index, concrete_part


class VarView:
    """``s.name[i][j]``: indexes an array variable one sort at a time."""

    __slots__ = ("_ctx", "_var", "_index")

    def __init__(self, ctx: StepContext, var: Var, index: tuple[Any, ...]) -> None:
        self._ctx, self._var, self._index = ctx, var, index

    def __getitem__(self, i: Any) -> Any:
        index = self._index + (i,)
        if len(index) < len(self._var.index):
            return VarView(self._ctx, self._var, index)
        if isinstance(self._var, Queue):
            return QueueView(self._ctx, self._var, index)
        return self._ctx.read(self._var, index, None)

    def __setitem__(self, i: Any, value: Any) -> None:
        index = self._index + (i,)
        if len(index) != len(self._var.index) or isinstance(self._var, Queue):
            raise StepError(f"cannot assign to part of {self._var.name}: index it fully")
        self._ctx.write(self._var, index, None, value)

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
        if ctx.ops.concrete and not (self._cond and all(ctx._conds)):
            return body  # not evaluated where the condition is false
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
        return lambda *args: fn(self._ctx, *args)
