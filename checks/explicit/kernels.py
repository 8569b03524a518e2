"""Step kernels: each step instance traced once, compiled into straight-line numpy code.

Evaluating a step through the :class:`StepContext` over a numpy batch costs the same
Python work (views, ``when`` stacks, symbolic selects) for every chunk of every level.
Here each step instance ``(step, args)`` is run ONCE through the same context with a
tracing :class:`Ops` whose values are expression nodes (slot reads, constants, ``==``,
``!=``, ``<``, ``&``, ``|``, ``~``, ``ite``, ``+``, ``-``). The nodes are hash-consed
(common subexpressions are shared), trivially constant-folded, and the DAG is emitted as
a small Python function of numpy operations, compiled with :func:`compile`. The emitted
operations are exactly those :class:`~deferral.checks.explicit.numpy_ops.NumpyOps` would perform on
the same arrays, so the results (values and dtypes) are identical; the protocol stays
defined once (the step functions), only its execution changes.

A written value whose range is not provably inside the slot's domain (interval analysis
over the DAG) is checked at run time with the same message as
:func:`deferral.checks.explicit.numpy_ops.successors`. Anything the tracer cannot follow (a Python
``if`` on a state value, an operator it does not model, a step raising while traced)
makes :func:`compile_step` return ``None`` for that part: the caller then evaluates it
through :mod:`deferral.checks.explicit.numpy_ops` exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from deferral.checks.explicit.numpy_ops import raise_outside
from deferral.model.context import USER_ERRORS, StepContext, StepError
from deferral.model.ops import Ops
from deferral.model.protocol import Property, Step
from deferral.model.schema import Layout


class Untraceable(Exception):
    """The traced function used a value in a way the tracer does not model."""


_BINARY = {"==": "==", "!=": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
           "&": "&", "|": "|", "+": "+", "-": "-"}
_COMPARE = {"==", "!=", "<", "<=", ">", ">="}


class Node:
    """One expression of the trace; Python operators build new (hash-consed) nodes."""

    __slots__ = ("tracer", "op", "args", "kind", "lo", "hi", "num")

    def __init__(self, tracer: "Tracer", op: str, args: tuple[Any, ...], kind: str,
                 lo: int | None, hi: int | None, num: int) -> None:
        self.tracer, self.op, self.args, self.kind = tracer, op, args, kind
        self.lo, self.hi, self.num = lo, hi, num

    __hash__ = object.__hash__

    def __eq__(self, o: Any) -> Any:  # type: ignore[override]
        return self.tracer.binary("==", self, o)

    def __ne__(self, o: Any) -> Any:  # type: ignore[override]
        return self.tracer.binary("!=", self, o)

    def __lt__(self, o: Any) -> Any:
        return self.tracer.binary("<", self, o)

    def __le__(self, o: Any) -> Any:
        return self.tracer.binary("<=", self, o)

    def __gt__(self, o: Any) -> Any:
        return self.tracer.binary(">", self, o)

    def __ge__(self, o: Any) -> Any:
        return self.tracer.binary(">=", self, o)

    def __and__(self, o: Any) -> Any:
        return self.tracer.binary("&", self, o)

    def __rand__(self, o: Any) -> Any:
        return self.tracer.binary("&", o, self)

    def __or__(self, o: Any) -> Any:
        return self.tracer.binary("|", self, o)

    def __ror__(self, o: Any) -> Any:
        return self.tracer.binary("|", o, self)

    def __add__(self, o: Any) -> Any:
        return self.tracer.binary("+", self, o)

    def __radd__(self, o: Any) -> Any:
        return self.tracer.binary("+", o, self)

    def __sub__(self, o: Any) -> Any:
        return self.tracer.binary("-", self, o)

    def __rsub__(self, o: Any) -> Any:
        return self.tracer.binary("-", o, self)

    def __invert__(self) -> Any:
        if self.kind != "bool":
            raise Untraceable("~ on an integer value")
        return self.tracer.unary("~", self)

    def __bool__(self) -> bool:
        raise Untraceable("a state value used as a Python truth value")

    def __index__(self) -> int:
        raise Untraceable("a state value used as a Python int")

    __int__ = __index__


def _const_ok(c: Any) -> bool:
    return type(c) in (int, bool)


def _kind(x: Any) -> str:
    if isinstance(x, Node):
        return x.kind
    return "bool" if type(x) is bool else "int"


def _range(x: Any) -> tuple[int | None, int | None]:
    if isinstance(x, Node):
        return x.lo, x.hi
    return int(x), int(x)


class Tracer:
    """Builds the hash-consed expression DAG of one traced function."""

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.nodes: list[Node] = []
        self._table: dict[tuple[Any, ...], Node] = {}
        self.reads = [self._make("read", (j,), "int", 0, layout.slots[j].size - 1)
                      for j in range(len(layout.slots))]

    def _key(self, x: Any) -> Any:
        return ("n", x.num) if isinstance(x, Node) else (type(x).__name__, x)

    def _make(self, op: str, args: tuple[Any, ...], kind: str, lo: int | None, hi: int | None) -> Node:
        key = (op,) + tuple(self._key(a) for a in args)
        node = self._table.get(key)
        if node is None:
            node = Node(self, op, args, kind, lo, hi, len(self.nodes))
            self.nodes.append(node)
            self._table[key] = node
        return node

    def binary(self, op: str, a: Any, b: Any) -> Any:
        for x in (a, b):
            if not isinstance(x, Node) and not _const_ok(x):
                raise Untraceable(f"operand {x!r} of {op}")
        ka, kb = _kind(a), _kind(b)
        if op in ("&", "|") and ka == "bool" and kb == "bool":  # fold x & True, x | False
            for x, y in ((a, b), (b, a)):
                if not isinstance(y, Node) and isinstance(x, Node):
                    if (op == "&") == bool(y):
                        return x
        if op in ("+", "-") and ka == "bool" and kb == "bool":
            raise Untraceable(f"{op} of two truth values")
        (la, ha), (lb, hb) = _range(a), _range(b)
        lo: int | None
        hi: int | None
        if op in _COMPARE:
            kind, lo, hi = "bool", 0, 1
        elif op in ("&", "|"):
            kind = "bool" if ka == "bool" and kb == "bool" else "int"
            if None in (la, ha, lb, hb) or min(la, lb) < 0:  # type: ignore[type-var]
                lo = hi = None
            elif op == "&":
                lo, hi = 0, min(ha, hb)  # type: ignore[type-var]
            else:
                lo, hi = 0, (1 << max(ha, hb).bit_length()) - 1  # type: ignore[type-var]
        else:
            kind = "int"
            if None in (la, ha, lb, hb):
                lo = hi = None
            elif op == "+":
                lo, hi = la + lb, ha + hb  # type: ignore[operator]
            else:
                lo, hi = la - hb, ha - lb  # type: ignore[operator]
            if lo is not None and (lo < 0 or hi > 127):  # type: ignore[operator]
                lo = hi = None  # may wrap (uint8 rows): checked at run time
        return self._make(op, (a, b), kind, lo, hi)

    def unary(self, op: str, a: Node) -> Node:
        if op == "~":
            if a.op == "~":
                return a.args[0]
            return self._make("~", (a,), "bool", 0, 1)
        assert op == "i16"
        return self._make("i16", (a,), "int", a.lo, a.hi)

    def ite(self, c: Node, a: Any, b: Any) -> Any:
        for x in (a, b):
            if not isinstance(x, Node) and not _const_ok(x):
                raise Untraceable(f"branch {x!r} of ite")
        if isinstance(a, Node) and a is b:
            return a
        kind = "bool" if _kind(a) == "bool" and _kind(b) == "bool" else "int"
        (la, ha), (lb, hb) = _range(a), _range(b)
        if None in (la, ha, lb, hb):
            lo = hi = None
        else:
            lo, hi = min(la, lb), max(ha, hb)  # type: ignore[type-var]
        return self._make("ite", (c, a, b), kind, lo, hi)


class TraceOps(Ops):
    """An :class:`Ops` whose values are :class:`Node` expressions (mirrors ``NumpyOps``)."""

    concrete = False

    def __init__(self, tracer: Tracer) -> None:
        self.tracer = tracer

    def ite(self, cond: Any, then: Any, other: Any) -> Any:
        if not isinstance(cond, Node):
            return then if cond else other
        return self.tracer.ite(cond, then, other)

    def not_(self, x: Any) -> Any:
        if isinstance(x, Node):
            return ~x if x.kind == "bool" else self.tracer.binary("==", x, 0)
        return not x

    def is_value(self, x: Any) -> bool:
        return isinstance(x, Node)

    def truth(self, x: Node) -> Node:
        return x if x.kind == "bool" else self.tracer.binary("!=", x, 0)

    def outside(self, index: Any, size: int) -> Any:
        """As :meth:`Ops.outside`, False where the index's range (interval analysis) is inside ``0..size-1``."""
        lo, hi = _range(index)
        if lo is not None and hi is not None and 0 <= lo and hi < size:
            return False
        return super().outside(index, size)

    def store(self, slot: Any, value: Any) -> Any:
        if isinstance(value, Node):
            return self.tracer.unary("i16", value) if value.kind == "bool" else value
        return int(value)


# ---- code generation -------------------------------------------------------------------
def _operand(x: Any, names: dict[int, str]) -> str:
    return names[x.num] if isinstance(x, Node) else repr(x)


def _emit(roots: list[Any], matrix: str, lines: list[str], names: dict[int, str]) -> None:
    """Append assignments computing every node ``roots`` depend on (topological order)."""

    def visit(node: Any) -> None:
        if not isinstance(node, Node) or node.num in names:
            return
        if node.op == "read":
            name = f"c{node.args[0]}"
            lines.append(f"    {name} = {matrix}[:, {node.args[0]}]")
            names[node.num] = name
            return
        for x in node.args:
            visit(x)
        a = [_operand(x, names) for x in node.args]
        if node.op == "ite":
            expr = f"_where({a[0]}, {a[1]}, {a[2]})"
        elif node.op == "~":
            expr = f"~{a[0]}"
        elif node.op == "i16":
            expr = f"{a[0]}.astype(_int16)"
        else:
            expr = f"({a[0]} {_BINARY[node.op]} {a[1]})"
        name = f"t{node.num}"
        lines.append(f"    {name} = {expr}")
        names[node.num] = name

    for root in roots:
        visit(root)


def _mask_code(value: Any, names: dict[int, str], lines: list[str]) -> None:
    if isinstance(value, Node):
        v = names[value.num]
        lines.append(f"    return {v}" if value.kind == "bool" else f"    return {v} != 0")
    else:
        lines.append(f"    return {bool(value)!r}")


def _domain_error(value: Any, size: int, n: int, where: str, slot_label: str) -> None:
    """Raise the StepError of :func:`numpy_ops.successors` if ``value`` leaves 0..size-1."""
    if isinstance(value, np.ndarray):
        bad = value >= size if value.dtype.kind == "u" else (value < 0) | (value >= size)
        if bad.any():
            first = int(np.flatnonzero(np.broadcast_to(bad, (n,)))[0])
            shown = int(np.broadcast_to(value, (n,))[first])
            raise StepError(f"{where}: wrote {shown} to {slot_label}, outside its domain 0..{size - 1}")
    elif not 0 <= value < size:
        raise StepError(f"{where}: wrote {value} to {slot_label}, outside its domain 0..{size - 1}")


_GLOBALS = {"_where": np.where, "_int16": np.int16, "_check": _domain_error, "_outside": raise_outside}


def _undefined(ctx: StepContext) -> list[Any]:
    """The traced conditions under which ``ctx``'s accesses name no element (constants False dropped)."""
    return [u for u in ctx.undefined or () if isinstance(u, Node) or u]


def _outside_code(undefined: list[Any], names: dict[int, str], lines: list[str], where: str) -> None:
    """Lines raising where some ``undefined`` condition holds (its nodes emitted before)."""
    for u in undefined:
        lines.append(f"    _outside({names[u.num] if isinstance(u, Node) else 'True'}, {where})")


def _compile(name: str, lines: list[str], env: dict[str, Any]) -> Callable[..., Any]:
    source = "\n".join(lines) + "\n"
    namespace: dict[str, Any] = dict(_GLOBALS, **env)
    exec(compile(source, f"<kernel {name}>", "exec"), namespace)  # noqa: S102 - generated above
    fn = namespace[name]
    fn.source = source  # type: ignore[attr-defined]
    return fn


def _traced(layout: Layout, procedures: Mapping[str, Callable[..., Any]],
            fn: Callable[..., Any], args: tuple[int, ...]) -> tuple[Tracer, StepContext, Any] | None:
    tracer = Tracer(layout)
    ctx = StepContext(layout, TraceOps(tracer), tracer.reads, procedures, track_undefined=True)
    try:
        value = fn(ctx, *args)
    except USER_ERRORS:  # anything, sys.exit() too: the numpy path reproduces it exactly
        return None
    if not (isinstance(value, Node) or _const_ok(value) or value is None):
        return None
    return tracer, ctx, value


def compile_guard(layout: Layout, procedures: Mapping[str, Callable[..., Any]], fn: Callable[..., Any],
                  args: tuple[int, ...], where: str = "guard") -> Callable[[np.ndarray], Any] | None:
    """``f(rows)`` -> bool mask array (or a Python bool) of ``fn(s, *args)``; None if untraceable.
    Raises StepError where it reads at an index that names no element (as the concrete model does)."""
    traced = _traced(layout, procedures, fn, args)
    if traced is None:
        return None
    _, ctx, value = traced
    if value is None:
        return None
    undefined = _undefined(ctx)
    lines = ["def guard(R):"]
    names: dict[int, str] = {}
    _emit([value, *undefined], "R", lines, names)
    _outside_code(undefined, names, lines, "WHERE")
    _mask_code(value, names, lines)
    return _compile("guard", lines, {"WHERE": where})


def compile_effect(layout: Layout, procedures: Mapping[str, Callable[..., Any]], step: Step,
                   args: tuple[int, ...], where: str) -> Callable[[np.ndarray], None] | None:
    """``f(out)`` applies ``step(args)`` to the rows ``out`` in place (domain-checked)."""
    traced = _traced(layout, procedures, step.effect, args)
    if traced is None:
        return None
    tracer, ctx, _ = traced
    written = list(ctx.written)  # the same set iteration order as numpy_ops.successors
    values = [ctx.values[j] for j in written]
    changed = [(j, v) for j, v in zip(written, values) if v is not tracer.reads[j]]
    undefined = _undefined(ctx)
    lines = ["def effect(O):", "    n = O.shape[0]"]
    names: dict[int, str] = {}
    _emit([v for _, v in changed] + undefined, "O", lines, names)
    _outside_code(undefined, names, lines, "WHERE")
    env: dict[str, Any] = {}
    targets: list[tuple[int, str]] = []
    for j, v in changed:
        size = layout.slots[j].size
        if isinstance(v, Node):
            name = names[v.num]
            if v.op == "read" and v.args[0] in ctx.written:  # a view of a column written below
                lines.append(f"    w{j} = {name}.copy()")
                name = f"w{j}"
        else:
            name = repr(v)
        lo, hi = _range(v)
        if lo is None or hi is None or lo < 0 or hi >= size:
            env[f"L{j}"] = layout.slots[j].label()
            lines.append(f"    _check({name}, {size}, n, WHERE, L{j})")
        targets.append((j, name))
    for j, name in targets:
        lines.append(f"    O[:, {j}] = {name}")
    lines.append("    return None")
    env["WHERE"] = where
    return _compile("effect", lines, env)


def trace_property(layout: Layout, procedures: Mapping[str, Callable[..., Any]],
                   prop: Property) -> list[Any] | None:
    """The traced value (a node or a constant) of every instance of ``prop``, in one tracer (shared
    reads); None if some instance cannot be traced, or may read at an index that names no element
    (the numpy path then evaluates it, and raises its error)."""
    tracer = Tracer(layout)
    conj: list[Any] = []
    for args in prop.instances(layout.bounds):
        ctx = StepContext(layout, TraceOps(tracer), tracer.reads, procedures, track_undefined=True)
        try:
            value = prop.predicate(ctx, *args)
        except USER_ERRORS:
            return None
        if not (isinstance(value, Node) or _const_ok(value)) or _undefined(ctx):
            return None
        conj.append(value)
    return conj


def compile_property(layout: Layout, procedures: Mapping[str, Callable[..., Any]],
                     prop: Property) -> Callable[[np.ndarray], np.ndarray] | None:
    """``f(rows)`` -> where every instance of ``prop`` holds (one function, shared reads)."""
    conj = trace_property(layout, procedures, prop)
    if conj is None:
        return None
    lines = ["def holds(R):", "    out = _ones(R.shape[0], dtype=bool)"]
    names: dict[int, str] = {}
    _emit([v for v in conj if isinstance(v, Node)], "R", lines, names)
    for v in conj:
        if isinstance(v, Node):
            lines.append(f"    out &= {names[v.num]}" if v.kind == "bool" else f"    out &= {names[v.num]} != 0")
        elif not v:
            lines.append("    out[:] = False")
    lines.append("    return out")
    return _compile("holds", lines, {"_ones": np.ones})


@dataclass(frozen=True)
class Kernel:
    """The compiled guard and effect of one step instance (None: use the numpy path)."""

    guard: Callable[[np.ndarray], Any] | None
    effect: Callable[[np.ndarray], None] | None


def compile_action(layout: Layout, procedures: Mapping[str, Callable[..., Any]], step: Step,
                   args: tuple[int, ...], label: str, protocol_name: str) -> Kernel:
    """Trace and compile one step instance."""
    return Kernel(compile_guard(layout, procedures, step.guard, args, f"step {label} in {protocol_name}: guard"),
                  compile_effect(layout, procedures, step, args, f"step {label} in {protocol_name}"))
