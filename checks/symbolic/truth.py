"""Truth tables of literals and lemmas on explicit states, compiled: each function traced once per parameter assignment.

A learning round asks for the truth of hundreds of literals at every parameter assignment on a few
states (a counterexample to induction, the states run forward from it) many times over. Evaluating
each literal's Python function through a :class:`~deferral.model.context.StepContext` per assignment
and call was a fifth to a third of the learning's time (PROVE.md, 6 Dec, evening). Here each
function is run ONCE per assignment through the step kernels' tracer
(:class:`deferral.checks.explicit.kernels.Tracer`: hash-consed expression nodes over state slots,
the same context code the numpy path runs), every function and assignment into one shared DAG; a
table is then that DAG's needed part evaluated over the rows level by level, all the nodes of one
operation and level in one numpy operation (values as int64, truth as nonzero). The protocol's
statement is unchanged; only its evaluation is.

A function the tracer cannot follow (a Python ``if`` on a state value, an operator it does not
model, an error) is evaluated by :func:`evaluated`, the generic path, as before.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from itertools import product
from typing import Any, Callable, Sequence

import numpy as np

from deferral.model.bounds import Bounds
from deferral.model.protocol import Protocol
from deferral.model.schema import Domain

Fn = Callable[..., Any]

#: Values held at once while a table is evaluated (nodes x rows; int64): rows are taken in chunks below it.
CHUNK_VALUES = 1 << 22
#: Compiled plans kept per bounds (a plan: the DAG part one list of functions needs).
PLANS_KEPT = 64
#: The values' type while evaluating where every node's range (the tracer's interval analysis) and constant
#: fits it (a fifth of int64's time on 3,000 states); int64 otherwise.
SMALL = np.int16

_OPS: dict[str, Callable[..., np.ndarray]] = {
    "==": np.equal, "!=": np.not_equal, "<": np.less, "<=": np.less_equal, ">": np.greater,
    ">=": np.greater_equal, "&": np.bitwise_and, "|": np.bitwise_or, "+": np.add, "-": np.subtract,
    "~": lambda x: 1 - x, "i16": lambda x: x, "ite": lambda c, a, b: np.where(c != 0, a, b),
}


def assignments(params: Sequence[tuple[str, Domain]], b: Bounds) -> list[tuple[int, ...]]:
    """Every assignment of the parameters at ``b``, in the tables' order (the first parameter slowest)."""
    return list(product(*(range(d.size(b)) for _, d in params)))


def evaluated(protocol: Protocol, b: Bounds, rows: np.ndarray, fns: Sequence[Fn],
              params: Sequence[tuple[str, Domain]]) -> np.ndarray:
    """The generic path: each function called per assignment on the numpy backend; shape (len(fns), A * states)."""
    from deferral.checks.explicit.numpy_ops import NUMPY, _Columns
    from deferral.model.context import StepContext

    ctx = StepContext(protocol.layout(b), NUMPY, _Columns(rows), copy_values=False)
    object.__setattr__(ctx, "memo_reads", {})  # each read at each assignment once (the literals share them)
    assigns = assignments(params, b)
    n = rows.shape[0]
    shared = {id(p) for f in fns for p in getattr(f, "all_of", ())}  # parts of a conjunction: kept
    shared |= {id(f.negation_of) for f in fns if hasattr(f, "negation_of")}  # and what a negation negates
    memo: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}

    def value(f: Fn, a: tuple[int, ...]) -> np.ndarray:
        key = (id(f), a)
        if key in memo:
            return memo[key]
        parts = getattr(f, "all_of", None)
        neg = getattr(f, "negation_of", None)
        got = (np.logical_and.reduce([value(p, a) for p in parts]) if parts else
               ~value(neg, a) if neg is not None else
               np.broadcast_to(np.asarray(f(ctx, *a), dtype=bool), (n,)))
        if id(f) in shared:
            memo[key] = got
        return got

    if not fns:
        return np.zeros((0, len(assigns) * n), dtype=bool)
    return np.stack([np.concatenate([value(f, a) for a in assigns]) for f in fns])


@dataclass
class _Plan:
    """The DAG part some functions need, as grouped numpy operations over a value matrix."""

    size: int  # rows of the value matrix: needed nodes, then constants
    reads: tuple[np.ndarray, np.ndarray]  # (positions, state slots)
    consts: tuple[np.ndarray, np.ndarray]  # (positions, values)
    steps: list[tuple[str, np.ndarray, tuple[np.ndarray, ...]]]  # (operation, out positions, arg positions)
    roots: np.ndarray  # (functions traced, assignments): the position of each one's value
    dtype: Any  # the values' type: :data:`SMALL` where everything fits it, else int64


class _AtBounds:
    """Every function traced at one bounds, into one tracer, and the plans made of them."""

    def __init__(self, protocol: Protocol, b: Bounds) -> None:
        from deferral.checks.explicit.kernels import Tracer

        self.layout = protocol.layout(b)
        self.tracer = Tracer(self.layout)
        self.level: list[int] = []  # per node: 0 a read, else 1 + its deepest argument's
        #: (id(fn), params) -> (fn, each assignment's value: a node or a constant; None where untraceable)
        self.traced: dict[tuple[int, tuple], tuple[Fn, list[Any] | None]] = {}
        #: per parameter list, the vocabulary's reads traced so far by (text, assignment) (vocabulary._read's memo:
        #: the literals share their reads; half of the tracing's time was reading them again)
        self.reads: dict[tuple, dict[Any, Any]] = {}
        self.plans: OrderedDict[tuple, _Plan] = OrderedDict()

    def roots(self, fn: Fn, params: tuple, assigns: list[tuple[int, ...]]) -> list[Any] | None:
        key = (id(fn), params)
        hit = self.traced.get(key)
        if hit is None:
            hit = (fn, self._trace(fn, assigns, self.reads.setdefault(params, {})))  # fn kept: its id stays its own
            self.traced[key] = hit
        return hit[1]

    def _trace(self, fn: Fn, assigns: list[tuple[int, ...]], reads: dict[Any, Any]) -> list[Any] | None:
        from deferral.checks.explicit.kernels import Node, TraceOps
        from deferral.model.context import StepContext

        out: list[Any] = []
        for a in assigns:
            ctx = StepContext(self.layout, TraceOps(self.tracer), self.tracer.reads)
            object.__setattr__(ctx, "memo_reads", reads)  # read-only, one tracer: a read's node is the same node
            try:
                value = fn(ctx, *a)
            except BaseException as exc:  # noqa: BLE001 - Untraceable, or the function's own error: the generic path
                if isinstance(exc, KeyboardInterrupt):
                    raise
                return None
            if not isinstance(value, (Node, bool, int, np.bool_, np.integer)):
                return None
            out.append(value)
        for node in self.tracer.nodes[len(self.level):]:
            below = [self.level[x.num] for x in node.args if isinstance(x, Node)]
            self.level.append(0 if node.op == "read" else 1 + max(below, default=0))
        return out

    def plan(self, values: list[list[Any]]) -> _Plan:
        """The plan computing ``values`` (per function, per assignment: a node or a constant)."""
        from deferral.checks.explicit.kernels import Node

        key = tuple(id(v) if isinstance(v, Node) else ("c", int(v)) for vs in values for v in vs)
        hit = self.plans.get(key)
        if hit is not None:
            self.plans.move_to_end(key)
            return hit
        nodes = self.tracer.nodes
        needed: set[int] = set()
        todo = [v.num for vs in values for v in vs if isinstance(v, Node)]
        while todo:
            num = todo.pop()
            if num not in needed:
                needed.add(num)
                todo.extend(x.num for x in nodes[num].args if isinstance(x, Node))
        order = sorted(needed)
        pos = {num: j for j, num in enumerate(order)}
        consts: dict[int, int] = {}

        def at(x: Any) -> int:
            if isinstance(x, Node):
                return pos[x.num]
            c = int(x)
            if c not in consts:
                consts[c] = len(order) + len(consts)
            return consts[c]

        groups: dict[tuple[int, str], list[Any]] = {}
        reads = []
        for num in order:
            node = nodes[num]
            if node.op == "read":
                reads.append((pos[num], node.args[0]))
            else:
                groups.setdefault((self.level[num], node.op), []).append(node)
        steps = []
        for (_, op), members in sorted(groups.items(), key=lambda kv: kv[0][0]):
            out = np.array([pos[m.num] for m in members], dtype=np.intp)
            args = tuple(np.array([at(m.args[k]) for m in members], dtype=np.intp) for k in range(len(members[0].args)))
            steps.append((op, out, args))
        roots = np.array([[at(v) for v in vs] for vs in values], dtype=np.intp).reshape(len(values), -1)
        rp = np.array([p for p, _ in reads], dtype=np.intp)
        rs = np.array([s for _, s in reads], dtype=np.intp)
        cp = np.array(list(consts.values()), dtype=np.intp)
        small = np.iinfo(SMALL)
        fits = all(nodes[num].lo is not None and nodes[num].hi is not None and small.min <= nodes[num].lo
                   and nodes[num].hi <= small.max for num in order) and all(small.min <= c <= small.max for c in consts)
        dtype = SMALL if fits else np.int64
        cv = np.array(list(consts.keys()), dtype=dtype)
        made = _Plan(len(order) + len(consts), (rp, rs), (cp, cv), steps, roots, dtype)
        self.plans[key] = made
        while len(self.plans) > PLANS_KEPT:
            self.plans.popitem(last=False)
        return made


def _run(plan: _Plan, rows: np.ndarray) -> np.ndarray:
    """``plan``'s roots over ``rows``: bool, shape (functions, assignments, rows)."""
    n = rows.shape[0]
    out = np.empty(plan.roots.shape + (n,), dtype=bool)
    step = max(1, CHUNK_VALUES // max(1, plan.size))
    for lo in range(0, n, step):
        chunk = rows[lo:lo + step].astype(plan.dtype, copy=False)
        v = np.empty((plan.size, chunk.shape[0]), dtype=plan.dtype)
        if plan.consts[0].size:
            v[plan.consts[0]] = plan.consts[1][:, None]
        if plan.reads[0].size:
            v[plan.reads[0]] = chunk[:, plan.reads[1]].T
        for op, where, args in plan.steps:
            v[where] = _OPS[op](*(v[a] for a in args))
        out[..., lo:lo + step] = v[plan.roots] != 0
    return out


class TruthTables:
    """Truth tables of functions over one protocol's states, compiled per bounds and kept across calls
    (a caller asking again and again, a learner's signatures and its forward runs, owns one)."""

    def __init__(self, protocol: Protocol) -> None:
        self.protocol = protocol
        self._at: dict[Bounds, _AtBounds] = {}

    def table(self, b: Bounds, rows: np.ndarray, fns: Sequence[Fn],
              params: Sequence[tuple[str, Domain]]) -> np.ndarray:
        """Per function, the truth value on every (parameter assignment, state): shape (len(fns), A * states),
        as :func:`evaluated` computes it."""
        at = self._at.get(b)
        if at is None:
            at = self._at[b] = _AtBounds(self.protocol, b)
        assigns = assignments(params, b)
        key = tuple(params)
        n = rows.shape[0]
        out = np.empty((len(fns), len(assigns), n), dtype=bool)
        traced, generic = [], []
        values = []
        for k, fn in enumerate(fns):
            got = at.roots(fn, key, assigns)
            if got is None:
                generic.append(k)
            else:
                traced.append(k)
                values.append(got)
        if traced and n:
            out[traced] = _run(at.plan(values), rows)
        if generic:
            out[generic] = evaluated(self.protocol, b, rows, [fns[k] for k in generic], params).reshape(
                len(generic), len(assigns), n)
        return out.reshape(len(fns), len(assigns) * n)
