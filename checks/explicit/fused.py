"""The fused successor loop: every step instance of a model as one generated C loop over frontier rows.

:mod:`deferral.checks.explicit.kernels` traces each step instance once into an expression
DAG and runs it as numpy operations over a chunk (one pass over memory per node, and
Python between them). Here the same traced DAGs are emitted as scalar C inside ONE loop
over a chunk's frontier keys: for each row, unpack it once, and for every step instance
evaluate its guard, and where it holds its effect (domain-checked), then the successor's
canonical key (the least image under the VCPU permutations, exactly the keys of
:mod:`deferral.checks.explicit.packing`), written with its parent row and action. The
output is what the numpy path of the search produces: keys grouped by action (in action
order), rows ascending within an action, the transitions per action and the rows where
some instance of each step is enabled (coverage). The C is compiled by
:mod:`deferral.checks.explicit.cbuild` and runs without the GIL.

Every value has the numpy path's type: the type of each DAG node is found by evaluating
the DAG with numpy on one row (NEP 50 promotion), and the C computes in 64 bits and casts
to that type, so a uint8 sum wraps exactly as numpy's does. A written value outside its
slot's domain makes the loop return an error: the caller then runs the chunk through the
numpy path, which raises the step's own error. A protocol with any step instance or
guard the tracer cannot follow, or a value type the loop does not model, gets no fused
loop (:func:`build` returns None) and keeps the numpy path.
"""

from __future__ import annotations

import ctypes
import operator
import os
import re
import threading
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from deferral.checks.explicit import cbuild, fusedcanon
from deferral.checks.explicit.kernels import Node, _const_ok, _range, _traced, _undefined, trace_property
from deferral.checks.explicit.packing import Packer, _JitPlan
from deferral.model.concrete import Action
from deferral.model.protocol import Property
from deferral.model.schema import Layout

_C_TYPES = {np.dtype(np.bool_): "int", np.dtype(np.uint8): "uint8_t", np.dtype(np.uint16): "uint16_t",
            np.dtype(np.uint32): "uint32_t", np.dtype(np.int8): "int8_t", np.dtype(np.int16): "int16_t",
            np.dtype(np.int32): "int32_t", np.dtype(np.int64): "int64_t"}
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
    ">=": operator.ge, "&": operator.and_, "|": operator.or_, "+": operator.add, "-": operator.sub}
_COMPARE = {"==", "!=", "<", "<=", ">", ">="}


class NotFusable(Exception):
    """The traced steps use something the C loop does not model."""


class _Emitter:
    """C statements computing DAG nodes of one tracer, each a typed local ``{prefix}{num}``."""

    def __init__(self, prefix: str, row_dtype: Any, params: list[int] | None = None) -> None:
        """``params``: for the shared form (see :func:`_action_code`), the list the slots read are
        appended to: a read is then ``R[P[i]]`` (i its place in the list), so is a constant
        (``P[i]``, when it fits in 32 bits), and locals are numbered
        in the order they are emitted, so that instances alike but for their slots give one text."""
        self.prefix = prefix
        self.row_dtype = np.dtype(row_dtype)
        self.names: dict[int, str] = {}
        self.types: dict[int, np.dtype] = {}
        self.probes: dict[int, Any] = {}
        self.params = params

    def probe(self, x: Any) -> Any:
        """``x`` evaluated by numpy on one all-zero row: its value there (for its type)."""
        if not isinstance(x, Node):
            return x
        got = self.probes.get(x.num)
        if got is not None:
            return got
        a = [self.probe(y) for y in x.args]
        try:
            if x.op == "read":
                value: Any = np.zeros(1, dtype=self.row_dtype)
            elif x.op == "ite":
                value = np.where(a[0], a[1], a[2])
            elif x.op == "~":
                value = ~a[0]
            elif x.op == "i16":
                value = np.asarray(a[0]).astype(np.int16)
            else:
                value = _OPS[x.op](a[0], a[1])
        except (OverflowError, TypeError, ValueError) as exc:  # numpy refuses it: so does the numpy path
            raise NotFusable(f"{x.op}: {exc}") from None
        value = np.asarray(value)
        if value.dtype not in _C_TYPES:
            raise NotFusable(f"a value of type {value.dtype}")
        self.probes[x.num] = value
        self.types[x.num] = value.dtype
        return value

    def ref(self, x: Any) -> str:
        """A C expression of ``x`` as int64_t (its value, of the numpy path's type)."""
        if isinstance(x, Node):
            return f"(int64_t){self.names[x.num]}"
        if not _const_ok(x):
            raise NotFusable(f"constant {x!r}")
        if self.params is not None and -2 ** 31 <= int(x) < 2 ** 31:
            self.params.append(int(x))
            return f"(int64_t)P[{len(self.params) - 1}]"
        return f"(int64_t){int(x)}LL"

    def emit(self, roots: Sequence[Any], lines: list[str], indent: str) -> None:
        """Append the statements computing ``roots`` (and what they depend on), in order."""

        def visit(node: Any) -> None:
            if not isinstance(node, Node) or node.num in self.names:
                return
            for y in node.args:
                visit(y)
            self.probe(node)
            ctype = _C_TYPES[self.types[node.num]]
            if node.op == "read":
                if self.params is None:
                    self.names[node.num] = f"R[{node.args[0]}]"
                else:
                    self.names[node.num] = f"R[P[{len(self.params)}]]"
                    self.params.append(int(node.args[0]))
                return
            a = [self.ref(y) for y in node.args]
            if node.op == "ite":
                expr = f"({a[0]} ? {a[1]} : {a[2]})"
            elif node.op == "~":
                if self.types[node.args[0].num] != np.bool_:
                    raise NotFusable("~ of an integer array")
                expr = f"!{a[0]}"
            elif node.op == "i16":
                expr = a[0]
            elif node.op in _COMPARE:
                expr = f"({a[0]} {node.op} {a[1]})"
            else:
                expr = f"({a[0]} {node.op} {a[1]})"
            name = f"{self.prefix}{node.num if self.params is None else len(self.names)}"
            lines.append(f"{indent}{ctype} {name} = ({ctype}){expr};")
            self.names[node.num] = name

        for root in roots:
            visit(root)


def _action_code(layout: Layout, procs: Mapping[str, Callable[..., Any]], action: Action, k: int,
                 step: int, row_dtype: Any, params: list[int]) -> list[str]:
    """The C block of one step instance (raises :class:`NotFusable`), reading its parameters
    from ``P``; ``params``: an empty list that gets them: ``P[0]`` the action, ``P[1]`` its
    step, then the slots read and written and the constants (of 32 bits), in the order the
    block uses them. Instances of one step alike but for the VCPU, page, frame or space they
    are about give the same text (see :func:`_shared_blocks`)."""
    guard = _traced(layout, procs, action.step.guard, action.args)
    effect = _traced(layout, procs, action.step.effect, action.args)
    if guard is None or effect is None or guard[2] is None:
        raise NotFusable(f"step instance {action.label()} cannot be traced")
    params += [k, step]
    ka, sa = "P[0]", "P[1]"
    lines = [f"    {{ /* {action.step.name} */"]
    g = _Emitter("g", row_dtype, params)
    value = guard[2]
    outside = _undefined(guard[1])  # an access at an index naming no element: the numpy path raises
    g.emit([x for x in (value, *outside) if isinstance(x, Node)], lines, "      ")
    _outside_lines(g, outside, ka, lines, "      ")
    if isinstance(value, Node):
        cond = g.names[value.num] if value.kind == "bool" and g.types[value.num] == np.bool_ \
            else f"({g.names[value.num]} != 0)"
    else:
        cond = "1" if bool(value) else "0"
    lines.append(f"      if ({cond}) {{")
    tracer, ctx, _ = effect
    written = list(ctx.written)
    changed = [(j, ctx.values[j]) for j in written if ctx.values[j] is not tracer.reads[j]]
    outside = _undefined(ctx)
    e = _Emitter("e", row_dtype, params)
    e.emit([v for _, v in changed] + [x for x in outside if isinstance(x, Node)], lines, "        ")
    _outside_lines(e, outside, ka, lines, "        ")
    targets = []
    for j, v in changed:
        size = layout.slots[j].size
        ref = e.ref(v)
        lo, hi = _range(v)
        if lo is None or hi is None or lo < 0 or hi >= size:
            lines.append(f"        if ({ref} < 0 || {ref} >= {size}) {{ err[0] = {ka}; err[1] = r; goto fail; }}")
        targets.append((f"P[{len(params)}]", ref))
        params.append(j)
    lines.append("        memcpy(S, R, sizeof(row_t) * NS);")
    for j, ref in targets:
        lines.append(f"        S[{j}] = (row_t){ref};")
    lines.append(f"        EMIT({ka}); en[{sa}] = 1;")
    lines.append("      }")
    lines.append("    }")
    return lines


def _outside_lines(em: "_Emitter", outside: Sequence[Any], ka: str, lines: list[str], indent: str) -> None:
    """Fail the loop (err: action, row) where an access names no element: the caller then runs the
    chunk through the numpy path, which raises the concrete model's error for the state."""
    for u in outside:
        cond = f"({em.ref(u)} != 0)" if isinstance(u, Node) else "1"
        lines.append(f"{indent}if ({cond}) {{ err[0] = {ka}; err[1] = r; goto fail; }}")


def _instances(layout: Layout, procs: Mapping[str, Callable[..., Any]], actions: Sequence[Action],
               step_of: Sequence[int], row_dtype: Any) -> list[tuple[str, list[int]]]:
    """Each step instance's block (see :func:`_action_code`) and its parameters, in action order."""
    out = []
    for k, action in enumerate(actions):
        params: list[int] = []
        out.append(("\n".join(_action_code(layout, procs, action, k, step_of[k], row_dtype, params)), params))
    return out


def _straight(text: str, params: Sequence[int], label: str | None = None) -> str:
    """A block with its parameters as constants (``label``: its comment's)."""
    code = re.sub(r"P\[(\d+)\]", lambda m: str(params[int(m.group(1))]), text)
    return code if label is None else re.sub(r"/\* \w+ \*/", lambda _: f"/* {label} */", code, count=1)


def _shared_blocks(instances: Sequence[tuple[str, list[int]]]) -> tuple[list[str], list[str]]:
    """The shared form of the step instances (``instances``: see :func:`_instances`): (tables and
    functions, loop body). Instances whose blocks are the same text (instances of one step alike
    but for their slots and constants) share one block, run in a loop over a table of their
    parameters, one row an instance. The C then grows with the number of distinct blocks, not
    of instances: compiling 420 straight-line blocks of 6,3,3,3 with three spaces did not end
    in 15 minutes. Each block is a function of its own (called for every row), which the
    compiler handles much faster than one big function."""
    shapes: dict[str, list[list[int]]] = {}
    for text, params in instances:
        shapes.setdefault(text, []).append(params)
    tables, body = [], []
    for x, (text, rows) in enumerate(shapes.items()):
        if len(rows) == 1:  # straight-line: its parameters as constants
            code = _straight(text, rows[0])
        else:
            width = len(rows[0])
            tables.append(_table(f"PAR{x}", "int32_t", [v for row in rows for v in row]))
            code = (f"    for (int i = 0; i < {len(rows)}; i++) {{ const int32_t *P = PAR{x} + i * {width};\n"
                    f"{text}\n    }}")
        # a function a block: cc's time grows faster than the size of a function; at -O1 (gcc;
        # others ignore it): at 6,3,3,3 S=3 cc took 7.5 CPU-s, not 16.5, the loop 5% longer
        tables.append(f"static __attribute__((noinline, optimize(\"O1\"))) int block{x}(const row_t *R, struct out *o,\n"
                      "    int64_t parent, int64_t *fired, uint8_t *en, int64_t *err, int64_t r) {\n  row_t S[NS];\n"
                      f"{code}\n  return 0;\nfail:\n  return -1;\n}}")
        body.append(f"    if (block{x}(R, &o, r + offset, fired, en, err, r)) goto fail;")
    return tables, body


def _property_code(layout: Layout, procs: Mapping[str, Callable[..., Any]], prop: Property, p: int,
                   row_dtype: Any) -> list[str]:
    """The C block setting ``out[p * n + r]``: whether every instance of ``prop`` holds in row r."""
    conj = trace_property(layout, procs, prop)
    if conj is None:
        raise NotFusable(f"property {prop.name} cannot be traced")
    lines = ["    {"]
    em = _Emitter(f"p{p}_", row_dtype)
    em.emit([v for v in conj if isinstance(v, Node)], lines, "      ")
    terms = [f"({em.ref(v)} != 0)" if isinstance(v, Node) else ("1" if v else "0") for v in conj]
    lines.append(f"      out[{p} * n + r] = (uint8_t)({' && '.join(terms) or '1'});")
    lines.append("    }")
    return lines


def _table(name: str, ctype: str, values: Sequence[int]) -> str:
    suffix = "ULL" if ctype == "uint64_t" else ""
    body = ", ".join(f"{v}{suffix}" for v in np.asarray(values).tolist()) if suffix else \
        ", ".join(map(str, np.asarray(values).tolist()))
    body = body or "0"
    return f"static const {ctype} {name}[] = {{{body}}};"


#: Lines of straight-line C up to which the fused loop has a block per step instance (see
#: :func:`generate`). Measured (4-5 Dec, load 8): straight-line against the shared form, cc CPU
#: and loop CPU: 2,2,1,2 (1,750 lines) 0.6 s and 0.5 s, 1.29x faster; 3,2,1,2 (2,970) 1.13x; 2,2,2,2
#: S=2 (5,390) 2.8 s and 1.2 s, 1.18x; 4,2,2,2 (5,860) 3.4 s and 1.5 s, 1.01x; 4,3,3,3 S=3 (90,000)
#: 467 s and 7 s; 6,3,3,3 S=3 (184,000) more than 15 minutes and 18 s.
MAX_STRAIGHT_LINES = 6_000
#: ``DEFERRAL_FUSED_FORM``: ``straight`` or ``shared`` for every model (measurements, tests).
FORM_DEFAULT = os.environ.get("DEFERRAL_FUSED_FORM", "").strip() or None


def generate(layout: Layout, procs: Mapping[str, Callable[..., Any]], actions: Sequence[Action],
             step_of: Sequence[int], n_steps: int, packer: Packer, action_dtype: Any,
             properties: Sequence[Property] = (), form: str | None = None) -> str:
    """The C source of the fused loop (raises :class:`NotFusable`). ``form``: ``"straight"``
    (a block of straight-line C per step instance), ``"shared"`` (instances alike share a block
    run over a table of their parameters, see :func:`_shared_blocks`), or None: shared when there
    straight-line C would have more than :data:`MAX_STRAIGHT_LINES` lines (``DEFERRAL_FUSED_FORM``
    overrides it)."""
    plan = _JitPlan(packer, None)  # type: ignore[arg-type] - only its tables
    row_c = "uint8_t" if np.dtype(packer.dtype_rows) == np.uint8 else "uint16_t"
    act_c = "uint16_t" if np.dtype(action_dtype) == np.uint16 else "uint32_t"
    head = [
        *_key_head(packer, plan, row_c), f"typedef {act_c} act_t;",
        f"#define NA {len(actions)}", f"#define NSTEP {max(1, n_steps)}",
        _table("WGROUPS", "int32_t", plan.word_groups),
        _table("GFIRST", "int32_t", plan.g_first),
        _table("GLEN", "int32_t", plan.g_len),
        _table("GRADIX", "uint64_t", plan.g_radix),
        _table("GOFF", "int64_t", plan.g_offset),
        _table("TABLE", row_c, plan.table),
        _SUPPORT,
        canonical_code(plan, packer, row_c),
        _CANONICAL_ROWS,
    ]
    instances = _instances(layout, procs, actions, step_of, packer.dtype_rows)
    if form is None:
        lines = sum(text.count("\n") + 1 for text, _ in instances)
        form = FORM_DEFAULT or ("shared" if lines > MAX_STRAIGHT_LINES else "straight")
    blocks: list[str] = []
    if form == "shared":
        blocks, body = _shared_blocks(instances)
    else:
        body = [_straight(text, params, a.label()) for (text, params), a in zip(instances, actions)]
    checks = []
    for p, prop in enumerate(properties):
        checks += _property_code(layout, procs, prop, p, packer.dtype_rows)
    blocks = ["#define EMIT(K) do { push(o, S, parent, K); fired[K]++; } while (0)", *blocks, "#undef EMIT"]
    loop = _LOOP.replace("/*BLOCKS*/", "\n".join(blocks)).replace("/*ACTIONS*/", "\n".join(body))
    return ("\n".join(head) + "\n" + _DEDUP + loop
            + _PRUNE + _HOLDS.replace("/*PROPERTIES*/", "\n".join(checks)) + "\n")


def _key_head(packer: Packer, plan: _JitPlan, row_c: str) -> list[str]:
    """The includes, the row type and the constants of ``canonical`` (see :func:`canonical_code`)."""
    return ["#include <stdint.h>", "#include <stdlib.h>", "#include <string.h>", f"typedef {row_c} row_t;",
            f"#define NS {packer.n_slots}", f"#define NW {packer.n_words}", f"#define NP {plan.src.shape[0]}",
            f"#define RW {plan.rename.shape[1]}",
            _table("SRC", "int32_t", plan.src.ravel()),
            _table("REMAP", "uint8_t", plan.remap.ravel().astype(np.uint8)),
            _table("RENAME", row_c, plan.rename.ravel()),
            *_many_perm_tables(packer, plan)]


def canonical_source(packer: Packer) -> str:
    """C with only the canonical key of ``packer``'s layout, as ``canonical_rows`` (see
    :func:`canonical_keys`): for any layout, with no protocol steps (tests key rows with it)."""
    plan = _JitPlan(packer, None)  # type: ignore[arg-type] - only its tables
    row_c = "uint8_t" if np.dtype(packer.dtype_rows) == np.uint8 else "uint16_t"
    return "\n".join(_key_head(packer, plan, row_c)) + "\n" + canonical_code(plan, packer, row_c) + _CANONICAL_ROWS


def canonical_keys(lib: ctypes.CDLL, packer: Packer, rows: np.ndarray) -> np.ndarray:
    """The canonical keys of ``rows`` (any values in their slots' domains) by the library's
    ``canonical_rows``, as sortable keys: what :meth:`Packer.canonical_keys` gives."""
    fn = lib.canonical_rows
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
    rows = np.ascontiguousarray(rows, dtype=packer.dtype_rows)
    out = np.empty((rows.shape[0], packer.n_words), dtype=np.uint64)
    fn(rows.ctypes.data, rows.shape[0], out.ctypes.data)
    return packer.to_sortable(out)


_CANONICAL_ROWS = r"""
/* out[r * NW ...]: the canonical key words of row r (rows: n rows of NS slots). */
void canonical_rows(const row_t *rows, int64_t n, uint64_t *out) {
  for (int64_t r = 0; r < n; r++) canonical(rows + r * NS, out + r * NW);
}
"""


def _many_perm_tables(packer: Packer, plan: _JitPlan) -> list[str]:
    """The constants of :mod:`deferral.checks.explicit.fusedcanon`'s canonical key (none for
    the staged one)."""
    if plan.src.shape[0] <= MAX_STAGED_PERMS:
        return []
    defines, tables = fusedcanon.tables(packer, plan)
    return defines + [_table(*t) for t in tables]


_SUPPORT = r"""
static inline void unpack_row(const uint64_t *w, row_t *R) {
  for (int x = 0; x < NW; x++) {
    uint64_t value = w[x];
    for (int g = WGROUPS[x]; g < WGROUPS[x + 1]; g++) {
      uint64_t q = value / GRADIX[g];
      int64_t digit = (int64_t)(value - q * GRADIX[g]);
      value = q;
      const row_t *t = TABLE + GOFF[g] + digit * GLEN[g];
      for (int i = 0; i < GLEN[g]; i++) R[GFIRST[g] + i] = t[i];
    }
  }
}

"""

#: Slots a stage of the generated canonical key (see :func:`canonical_code`): measured at
#: 3,2,1,2, 16 made the fused loop 0.48x of the table version's time (8: 0.51x, 32: 0.59x).
STAGE_SLOTS = 16
#: The generated canonical key for at most this many permutations (a bit each in a mask).
MAX_STAGED_PERMS = 24


def canonical_code(plan: _JitPlan, packer: Packer, row_c: str) -> str:
    """The C of ``canonical(S, out)``: the least image of the row S under the VCPU
    permutations, packed into its key words (the keys of :mod:`deferral.checks.explicit.packing`).

    Keys order as their slots do (mixed radix, first slot most significant), so the least
    image is found a stage of :data:`STAGE_SLOTS` slots at a time: each permutation still a
    candidate packs the stage's slots of its image (straight-line code, the slots and the
    VCPU renaming tables constants) onto its packed prefix, and only those with the least
    value stay. Candidates share their prefix, so comparing the packed values compares the
    stage's slots; once one candidate is left, the rest is packing its image alone. For
    more than :data:`MAX_STAGED_PERMS` permutations, the table version (each image compared
    with the least so far; see :mod:`deferral.checks.explicit.fusedcanon`)."""
    n_perm, n_slots = plan.src.shape
    if n_perm > MAX_STAGED_PERMS:
        return fusedcanon.code(packer, plan)
    sizes = packer.layout.sizes
    starts = [int(x) for x in plan.word_start]
    lines = ["static void canonical(const row_t *S, uint64_t *out) {"]
    for p in range(n_perm):
        if plan.remap[p].any():
            values = ", ".join(map(str, plan.rename[p].tolist()))
            lines.append(f"  static const {row_c} RN{p}[] = {{{values}}};")
    lines.append(f"  uint32_t cand = {(1 << n_perm) - 1}u;  /* the permutations whose image may be least */")
    lines.append(f"  uint64_t acc[{n_perm}], m = 0;")
    for w in range(len(starts) - 1):
        lines.append(f"  for (int p = 0; p < {n_perm}; p++) acc[p] = 0;")
        for a in range(starts[w], starts[w + 1], STAGE_SLOTS):
            b = min(starts[w + 1], a + STAGE_SLOTS)
            lines.append("  m = UINT64_MAX;")
            for p in range(n_perm):
                expr = f"acc[{p}]"
                for j in range(a, b):
                    x = f"RN{p}[S[{int(plan.src[p, j])}]]" if plan.remap[p, j] else f"S[{int(plan.src[p, j])}]"
                    expr = f"({expr}) * {int(sizes[j])}u + {x}"
                lines.append(f"  if (cand & {1 << p}u) {{ uint64_t v = {expr}; acc[{p}] = v; if (v < m) m = v; }}")
            lines.append(f"  if (cand & (cand - 1)) {{ uint32_t keep = 0; for (int p = 0; p < {n_perm}; p++)"
                         f" if ((cand >> p & 1) && acc[p] == m) keep |= 1u << p; cand = keep; }}")
        lines.append(f"  out[{w}] = m;")
    lines.append("}")
    return "\n".join(lines) + "\n"


_DEDUP = r"""
/* Keys of one or two words as one integer (key order == integer order). A chunk's keys come
   as native words (most significant first); the runs' and the candidates' two-word keys are
   big-endian bytes (numpy void keys, see packing): byte-swapped on the way in and out. */
#if NW == 1
typedef uint64_t key_t;
#define DIGITS 8
static inline key_t key_in(const uint64_t *p, int64_t i) { return p[i]; }
static inline key_t key_run(const uint64_t *p, int64_t i) { return p[i]; }
static inline void key_out(uint64_t *p, int64_t i, key_t k) { p[i] = k; }
static inline uint64_t key_hash(key_t k) { return k * 0x9E3779B97F4A7C15ULL; }
#else
typedef unsigned __int128 key_t __attribute__((aligned(8)));
#define DIGITS 16
static inline key_t key_in(const uint64_t *p, int64_t i) { return ((key_t)p[2 * i] << 64) | p[2 * i + 1]; }
static inline key_t key_run(const uint64_t *p, int64_t i) {
  return ((key_t)__builtin_bswap64(p[2 * i]) << 64) | __builtin_bswap64(p[2 * i + 1]);
}
static inline void key_out(uint64_t *p, int64_t i, key_t k) {
  p[2 * i] = __builtin_bswap64((uint64_t)(k >> 64)); p[2 * i + 1] = __builtin_bswap64((uint64_t)k);
}
static inline uint64_t key_hash(key_t k) {
  return ((uint64_t)k ^ ((uint64_t)(k >> 64) * 0xC2B2AE3D27D4EB4FULL)) * 0x9E3779B97F4A7C15ULL;
}
#endif
/* A chunk's successor keys (in transition order) deduplicated and looked up in the visited
   runs: returns the number d of distinct keys. Distinct keys
   are numbered in key order; known[x] is the state number of distinct key x, or -1 - c when it
   is the c-th new candidate (cand_keys[c], first reached by transition cand_first[c]); uidx
   (if not NULL) gives each transition's distinct key; ka, kb: t keys of scratch, ia, ib: t
   entries. As the numpy path (a stable sort, unique, the earliest transition of each key,
   searchsorted in each run), but sorting only the distinct keys: a hash table (linear
   probing, ids of 4 bytes) numbers the keys in order of first transition, then an LSD radix
   sort (8-bit digits; digits all distinct keys share are skipped) orders the distinct keys
   only; then one walk of each run. table: 2**hbits >= 2t entries of scratch; first: t. */
#define BITS 8
#define BUCKETS 256
int64_t dedup_chunk(const uint64_t *keys, int64_t t, const uint64_t *const *run_keys,
                    const uint32_t *const *run_ids, const int64_t *run_lens, int64_t n_runs,
                    int64_t *known, uint32_t *uidx, uint64_t *cand_keys, int64_t *cand_first,
                    int64_t *n_cand, key_t *ka, key_t *kb, uint32_t *ia, uint32_t *ib,
                    uint32_t *table, int hbits, uint32_t *first) {
  int64_t d = 0, rc = 0;
  uint64_t hmask = ((uint64_t)1 << hbits) - 1;
  memset(table, 0, (hmask + 1) * sizeof(uint32_t));  /* id + 1; 0: empty */
  /* distinct keys numbered by first transition: ka[id] (ka may be keys itself: id <= i) */
  for (int64_t i = 0; i < t; i++) {
    key_t k = key_in(keys, i);
    uint64_t h = key_hash(k) >> (64 - hbits);
    uint32_t id;
    for (;;) {
      uint32_t e = table[h];
      if (e == 0) { id = (uint32_t)d; table[h] = id + 1; ka[d] = k; first[d] = (uint32_t)i; d++; break; }
      if (ka[e - 1] == k) { id = e - 1; break; }
      h = (h + 1) & hmask;
    }
    if (uidx) uidx[i] = id;
  }
  /* the distinct keys sorted (with their ids) */
  uint32_t count[DIGITS * BUCKETS];
  memset(count, 0, sizeof(count));
  for (int64_t x = 0; x < d; x++) {
    key_t k = ka[x];
    ia[x] = (uint32_t)x;
    for (int g = 0; g < DIGITS; g++) count[g * BUCKETS + (unsigned)((k >> (BITS * g)) & (BUCKETS - 1))]++;
  }
  for (int g = 0; g < DIGITS && d > 0; g++) {
    uint32_t *c = count + g * BUCKETS;
    if (c[(unsigned)((ka[0] >> (BITS * g)) & (BUCKETS - 1))] == (uint32_t)d) continue;
    uint32_t at = 0;
    for (int b = 0; b < BUCKETS; b++) { uint32_t n = c[b]; c[b] = at; at += n; }
    for (int64_t x = 0; x < d; x++) {
      uint32_t p = c[(unsigned)((ka[x] >> (BITS * g)) & (BUCKETS - 1))]++; kb[p] = ka[x]; ib[p] = ia[x];
    }
    key_t *tk = ka; ka = kb; kb = tk;
    uint32_t *ti = ia; ia = ib; ib = ti;
  }
  /* sorted keys into kb, their first transitions into ib; first[id] becomes id's rank */
  for (int64_t x = 0; x < d; x++) {
    uint32_t id = ia[x];
    kb[x] = ka[x]; ib[x] = first[id]; first[id] = (uint32_t)x;
  }
  if (uidx) for (int64_t i = 0; i < t; i++) uidx[i] = first[uidx[i]];
  for (int64_t x = 0; x < d; x++) known[x] = -1;
  for (int64_t r = 0; r < n_runs; r++) {  /* sorted queries: each run walked forward once */
    const uint64_t *rk = run_keys[r];
    const uint32_t *ri = run_ids[r];
    int64_t n = run_lens[r], lo = 0, x0 = 0, x1 = d;
    /* a run may be one block of a bigger one: start at the first key not below its first */
    if (n > 0) {
      key_t k0 = key_run(rk, 0);
      while (x0 < x1) { int64_t m = (x0 + x1) >> 1; if (kb[m] < k0) x0 = m + 1; else x1 = m; }
    }
    for (int64_t x = x0; x < d && lo < n; x++) {
      key_t q = kb[x];
      int64_t step = 1, hi = lo;
      while (hi < n && key_run(rk, hi) < q) { lo = hi + 1; hi += step; step *= 2; }
      if (hi > n) hi = n;
      while (lo < hi) { int64_t mid = (lo + hi) >> 1; if (key_run(rk, mid) < q) lo = mid + 1; else hi = mid; }
      if (lo < n && key_run(rk, lo) == q) known[x] = ri[lo];
    }
  }
  int64_t c = 0;
  for (int64_t x = 0; x < d; x++) {
    if (known[x] < 0) { key_out(cand_keys, c, kb[x]); cand_first[c] = ib[x]; known[x] = -1 - c; c++; }
  }
  *n_cand = c;
  rc = d;
  return rc;
}
"""

_PRUNE = r"""
/* The AG EF edges out of one chunk (level-local source rows lo..hi-1) that are still needed:
   transition i goes from row par[i] to state code[uidx[i]] (skipped if negative). Per goal
   flag array: a source with a goal successor gets its flag set (after all are looked at);
   an edge is kept while some goal flag of its source is unset, unless it is a self-loop.
   Returns the number of kept edges (out_src: state numbers, base added). */
int64_t prune_edges(const uint32_t *uidx, int64_t t, const void *code, int code64, const uint32_t *par,
                    int64_t base, int64_t lo, int64_t hi, uint8_t *const *goals, int64_t n_goals,
                    uint8_t *needed, uint8_t *hit, uint32_t *out_src, uint32_t *out_dst) {
  const int64_t *c64 = (const int64_t *)code;
  const int32_t *c32 = (const int32_t *)code;
  int64_t m = hi - lo, n = 0;
  memset(needed, 0, m);
  for (int64_t g = 0; g < n_goals; g++) {
    uint8_t *flag = goals[g];
    memset(hit, 0, m);
    for (int64_t i = 0; i < t; i++) {
      int64_t d = code64 ? c64[uidx[i]] : c32[uidx[i]];
      if (d >= 0 && flag[d]) hit[par[i] - lo] = 1;
    }
    uint8_t *mine = flag + base + lo;
    for (int64_t x = 0; x < m; x++) { mine[x] |= hit[x]; needed[x] |= !mine[x]; }
  }
  for (int64_t i = 0; i < t; i++) {
    int64_t d = code64 ? c64[uidx[i]] : c32[uidx[i]];
    if (d < 0 || !needed[par[i] - lo]) continue;
    int64_t src = (int64_t)par[i] + base;
    if (d == src) continue;
    out_src[n] = (uint32_t)src; out_dst[n] = (uint32_t)d; n++;
  }
  return n;
}
"""

_LOOP = r"""
/* The transitions found so far (row-major, in the caller's buffers of cap entries; counted
   past cap, so that the caller can retry with enough). */
struct out { int64_t cap, n; uint64_t *k; uint32_t *p; act_t *a; };

static __attribute__((noinline)) void push(struct out *o, const row_t *S, int64_t parent, int action) {
  if (o->n < o->cap) {
    canonical(S, o->k + o->n * NW);
    o->p[o->n] = (uint32_t)parent;
    o->a[o->n] = (act_t)action;
  }
  o->n++;
}
/*BLOCKS*/
/* Successors of n frontier rows (key words: words[r * NW ...]); returns their number, -1
   if a step wrote outside a domain (err: action, row), -2 if more than cap (err[0]: how
   many). Outputs grouped by action, rows ascending in each; tk, tp, ta: cap entries of
   scratch. */
int64_t expand_chunk(const uint64_t *words, int64_t n, int64_t offset,
                     uint64_t *out_keys, uint32_t *out_par, act_t *out_act, int64_t cap,
                     int64_t *fired, int64_t *per_step, int64_t *err,
                     uint64_t *tk, uint32_t *tp, act_t *ta) {
  struct out o = {cap, 0, tk, tp, ta};
  int64_t rc = 0, t;
  row_t R[NS], S[NS];
  uint8_t en[NSTEP];
  for (int64_t r = 0; r < n; r++) {
    unpack_row(words + r * NW, R);
    memset(en, 0, sizeof(en));
#define EMIT(K) do { push(&o, S, r + offset, K); fired[K]++; } while (0)
/*ACTIONS*/
    for (int s = 0; s < NSTEP; s++) per_step[s] += en[s];
  }
  t = o.n;
  if (t > cap) { err[0] = t; rc = -2; goto done; }
  {
    int64_t pos[NA];
    int64_t at = 0;
    for (int k = 0; k < NA; k++) { pos[k] = at; at += fired[k]; }
    for (int64_t i = 0; i < t; i++) {
      int64_t p = pos[o.a[i]]++;
      for (int w = 0; w < NW; w++) out_keys[p * NW + w] = o.k[i * NW + w];
      out_par[p] = o.p[i];
      out_act[p] = o.a[i];
    }
  }
  rc = t;
  goto done;
fail:
  rc = -1;
done:
  return rc;
}
"""


_HOLDS = r"""
/* out[p * n + r]: whether property p holds in state r (key words: words[r * NW ...]). */
void holds_rows(const uint64_t *words, int64_t n, uint8_t *out) {
  row_t R[NS];
  for (int64_t r = 0; r < n; r++) {
    unpack_row(words + r * NW, R);
/*PROPERTIES*/
  }
}
"""


class Scratch:
    """Arrays reused from chunk to chunk (a fresh big array costs a page fault per 4 KiB)."""

    def __init__(self) -> None:
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, n: int, dtype: Any) -> np.ndarray:
        """``n`` entries of ``dtype``, contents undefined, valid until the next ``get(name, ...)``."""
        a = self._arrays.get(name)
        if a is None or a.shape[0] < n or a.dtype != dtype:
            a = self._arrays[name] = np.empty(max(n, 1), dtype=dtype)
        return a[:n]


class _Pool:
    """Scratch sets handed to one chunk at a time (as many as there are worker threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._free: list[Scratch] = []

    def take(self) -> Scratch:
        with self._lock:
            return self._free.pop() if self._free else Scratch()

    def give(self, scratch: Scratch) -> None:
        with self._lock:
            self._free.append(scratch)


class FusedLoop:
    """A loaded fused loop: :meth:`successors` of a chunk of frontier keys."""

    def __init__(self, lib: ctypes.CDLL, packer: Packer, n_actions: int, n_steps: int, action_dtype: Any) -> None:
        self.fn = lib.expand_chunk
        self.fn.restype = ctypes.c_int64
        self.fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self.lib = lib  # keeps the library loaded
        self.packer = packer
        self.n_actions, self.n_steps = n_actions, n_steps
        self.action_dtype = action_dtype
        self.fanout = float(n_actions)  # successors per row to allocate for; the largest seen since
        self.dedup: Dedup | None = None  # set by make() for one-word keys
        self.properties: tuple[Property, ...] = ()  # set by make(): those holds() evaluates
        self.prune: Prune | None = None  # set by make()
        self.holds_fn = lib.holds_rows
        self.holds_fn.restype = None
        self.holds_fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p]
        self._pool = _Pool()

    def canonical_keys(self, rows: np.ndarray) -> np.ndarray:
        """The canonical keys of ``rows`` (see :func:`canonical_keys`)."""
        return canonical_keys(self.lib, self.packer, rows)

    def holds(self, keys: np.ndarray) -> dict[str, np.ndarray]:
        """Per property of the loop: where it holds (every instance) over the states ``keys``."""
        words = np.ascontiguousarray(self.packer.words(keys), dtype=np.uint64)
        out = np.empty((len(self.properties), words.shape[0]), dtype=np.bool_)
        if self.properties:
            self.holds_fn(words.ctypes.data, words.shape[0], out.ctypes.data)
        return {p.name: out[i] for i, p in enumerate(self.properties)}

    def successors(self, keys: np.ndarray, offset: int, scratch: Scratch | None = None, native: bool = False
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
        """Every transition out of the states ``keys`` (frontier rows ``offset``...): successor
        keys, parent rows (uint32, ``offset`` added), actions, transitions per action, rows
        with some instance of each step enabled; None where a step wrote outside a domain.
        With ``scratch``, the keys and actions are in it (valid until it is used again).
        ``native``: the keys as (transitions, words) native uint64 words, not sortable keys."""
        scratch = scratch if scratch is not None else Scratch()
        words = np.ascontiguousarray(self.packer.words(keys), dtype=np.uint64)
        m, n_words = words.shape[0], self.packer.n_words
        fired = np.zeros(self.n_actions, dtype=np.int64)
        per_step = np.zeros(max(1, self.n_steps), dtype=np.int64)
        err = np.zeros(2, dtype=np.int64)
        cap = int(m * min(self.fanout * 1.1 + 0.5, self.n_actions)) + 64
        while True:
            out_keys = scratch.get("keys", cap * n_words, np.uint64).reshape(cap, n_words)
            out_par = np.empty(cap, dtype=np.uint32)
            out_act = scratch.get("actions", cap, self.action_dtype)
            tk = scratch.get("row_keys", cap * n_words, np.uint64)
            tp = scratch.get("row_parents", cap, np.uint32)
            ta = scratch.get("row_actions", cap, self.action_dtype)
            fired[:] = 0
            per_step[:] = 0
            got = self.fn(words.ctypes.data, m, offset, out_keys.ctypes.data, out_par.ctypes.data,
                          out_act.ctypes.data, cap, fired.ctypes.data, per_step.ctypes.data, err.ctypes.data,
                          tk.ctypes.data, tp.ctypes.data, ta.ctypes.data)
            if got != -2:
                break
            cap = int(err[0])
        if got < 0:
            return None
        if m:
            self.fanout = max(self.fanout if self.fanout < self.n_actions else 0.0, got / m)
        keys_out = out_keys[:got] if native else self.packer.to_sortable(out_keys[:got])
        return keys_out, out_par[:got], out_act[:got], fired, per_step[:self.n_steps]

    def release(self) -> None:
        """Drop the reused buffers (between levels: they are not in the merge's peak)."""
        self._pool = _Pool()

    def expand(self, keys: np.ndarray, offset: int, runs: Sequence[tuple[np.ndarray, np.ndarray]],
               want_codes: bool, code_dtype: Any) -> tuple[Any, ...] | None:
        """:meth:`successors` then :class:`Dedup` (keys of one or two words), on reused scratch: the
        transitions' number, the candidates (sorted keys, first parent row and action of each),
        and for AG EF (``want_codes``) each transition's distinct key, the distinct keys' codes
        (``code_dtype``) and every transition's parent row; then the per-action and per-step
        counts. None where a step wrote outside a domain (or :class:`Dedup` cannot take the runs)."""
        assert self.dedup is not None
        scratch = self._pool.take()
        try:
            got = self.successors(keys, offset, scratch, native=True)
            if got is None:
                return None
            succ, par, act, fired, per_step = got
            # the sort runs over the successor keys' own buffer and the row-major ones, spent by now
            t = succ.shape[0]
            deduped = self.dedup(succ, runs, want_codes, scratch,
                                 sort_keys=scratch.get("row_keys", t * self.packer.n_words, np.uint64),
                                 sort_index=scratch.get("row_parents", t, np.uint32))
            if deduped is None:
                return None
            cand, first, codes, uidx = deduped
            return (t, cand, par[first], act[first], uidx,
                    codes.astype(code_dtype) if want_codes else None, par if want_codes else None,
                    fired, per_step)
        finally:
            self._pool.give(scratch)


class Dedup:
    """A chunk's successors deduplicated and looked up in the visited runs (one- or two-word keys)."""

    def __init__(self, lib: ctypes.CDLL, packer: Packer) -> None:
        self.n_words, self.key_dtype = packer.n_words, np.dtype(packer.key_dtype)
        self.fn = lib.dedup_chunk
        self.fn.restype = ctypes.c_int64
        self.fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p]

    def __call__(self, keys: np.ndarray, runs: Sequence[tuple[np.ndarray, np.ndarray]], want_uidx: bool,
                 scratch: Scratch | None = None, sort_keys: np.ndarray | None = None,
                 sort_index: np.ndarray | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None] | None:
        """(candidate keys sorted, the first transition reaching each, per distinct key in key
        order its state number or -(1 + candidate), per transition its distinct key or None);
        None where a run is not of the packer's keys and uint32 state numbers. ``keys``: uint64,
        one a transition, or (transitions, 2) native words for two-word keys (the candidates
        come as the packer's sortable keys). With ``scratch``, the first transitions and the
        codes are in it (valid until it is used again). ``sort_keys`` (``keys``' size) and
        ``sort_index`` (an entry a transition): buffers the radix sort may use; with them it
        also overwrites ``keys`` (which must then be contiguous)."""
        nw = self.n_words
        if (keys.dtype != np.uint64 or keys.size != keys.shape[0] * nw
                or any(k.dtype != self.key_dtype or i.dtype != np.uint32 for k, i in runs)):
            return None
        scratch = scratch if scratch is not None else Scratch()
        keys = np.ascontiguousarray(keys)
        runs = [(np.ascontiguousarray(k), np.ascontiguousarray(i)) for k, i in runs]
        t = keys.shape[0]
        ptrs_k = (ctypes.c_void_p * max(1, len(runs)))(*[k.ctypes.data for k, _ in runs])
        ptrs_i = (ctypes.c_void_p * max(1, len(runs)))(*[i.ctypes.data for _, i in runs])
        lens = np.array([k.shape[0] for k, _ in runs] or [0], dtype=np.int64)
        known = scratch.get("known", t, np.int64)
        uidx = np.empty(t, dtype=np.uint32) if want_uidx else None
        cand = scratch.get("cand", t * nw, np.uint64)
        first = scratch.get("first", t, np.int64)
        if sort_keys is not None and sort_index is not None and keys.flags.c_contiguous:
            sort_k = [keys, sort_keys]
        else:
            sort_k = [scratch.get(f"sort_keys_{x}", t * nw, np.uint64) for x in range(2)]
            sort_index = scratch.get("sort_index_0", t, np.uint32)
        sort_i = [sort_index, scratch.get("sort_index_1", t, np.uint32)]
        n_cand = np.zeros(1, dtype=np.int64)
        hbits = max(4, (2 * t - 1).bit_length())  # a hash table of at least 2t entries
        table = scratch.get("table", 1 << hbits, np.uint32)
        first_id = scratch.get("first_id", t, np.uint32)
        d = self.fn(keys.ctypes.data, t, ptrs_k, ptrs_i, lens.ctypes.data, len(runs), known.ctypes.data,
                    None if uidx is None else uidx.ctypes.data, cand.ctypes.data, first.ctypes.data,
                    n_cand.ctypes.data, sort_k[0].ctypes.data, sort_k[1].ctypes.data, sort_i[0].ctypes.data,
                    sort_i[1].ctypes.data, table.ctypes.data, hbits, first_id.ctypes.data)
        c = int(n_cand[0])
        return cand[:c * nw].copy().view(self.key_dtype), first[:c], known[:d], uidx


class Prune:
    """The AG EF edges of one chunk that are still needed (see ``_Search._prune_edges``)."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.fn = lib.prune_edges
        self.fn.restype = ctypes.c_int64
        self.fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                            ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_int64,
                            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]

    def __call__(self, uidx: np.ndarray, code: np.ndarray, parents: np.ndarray, base: int, lo: int, hi: int,
                 goals: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray] | None:
        """(source states, target states) of the kept edges, uint32; the goal flags of the
        chunk's rows updated in place. None where the arrays are not of the types it takes."""
        if (uidx.dtype != np.uint32 or parents.dtype != np.uint32 or code.dtype not in (np.int32, np.int64)
                or any(g.dtype != np.bool_ or not g.flags.c_contiguous for g in goals)):
            return None
        uidx, code, parents = (np.ascontiguousarray(a) for a in (uidx, code, parents))
        t = uidx.shape[0]
        ptrs = (ctypes.c_void_p * max(1, len(goals)))(*[g.ctypes.data for g in goals])
        needed = np.empty(max(1, hi - lo), dtype=np.uint8)
        hit = np.empty(max(1, hi - lo), dtype=np.uint8)
        out_src = np.empty(t, dtype=np.uint32)
        out_dst = np.empty(t, dtype=np.uint32)
        n = self.fn(uidx.ctypes.data, t, code.ctypes.data, int(code.dtype == np.int64), parents.ctypes.data,
                    base, lo, hi, ptrs, len(goals), needed.ctypes.data, hit.ctypes.data, out_src.ctypes.data,
                    out_dst.ctypes.data)
        # views, not copies: the caller only reads them (store_edges), and the pages past n of a
        # fresh array were never touched (not resident); a copy faulted n entries' pages again
        return out_src[:n], out_dst[:n]


def source(layout: Layout, procs: Mapping[str, Callable[..., Any]], actions: Sequence[Action],
           step_of: Sequence[int], n_steps: int, packer: Packer, action_dtype: Any,
           properties: Sequence[Property] = ()) -> str | None:
    """The model's fused loop as C source; None where it cannot be made (C switched off, a step
    or property the tracer cannot follow; a missing compiler is :func:`cbuild.load`'s to say)."""
    if not actions or (cbuild.compiler() is None and cbuild.missing() is None):  # switched off
        return None
    try:
        return generate(layout, procs, actions, step_of, n_steps, packer, action_dtype, properties)
    except NotFusable:
        return None


def make(lib: ctypes.CDLL, packer: Packer, n_actions: int, n_steps: int, action_dtype: Any,
         properties: Sequence[Property] = ()) -> FusedLoop:
    """The loop of a loaded library (its dedup too for keys of one or two words; ``properties``: those
    :func:`generate` was given)."""
    loop = FusedLoop(lib, packer, n_actions, n_steps, action_dtype)
    loop.properties = tuple(properties)
    loop.prune = Prune(lib)
    loop.dedup = Dedup(lib, packer) if packer.n_words <= 2 else None
    return loop


#: The loop is made (compiled, 1-2 s of one core once per machine and model, or loaded from
#: the cache) for the first chunk of this many rows, which waits for it.
MIN_ROWS = 1 << 15
#: A search that has stored this many states builds the loop in a background thread while its
#: numpy path goes on (see :meth:`LazyFused.start`); smaller searches never generate or compile
#: it, and use it only when it is in the cache. ``DEFERRAL_BUILD_FROM`` overrides it.
BUILD_FROM = 16_384
ENV_BUILD_FROM = "DEFERRAL_BUILD_FROM"
#: Seconds a search waits at its end for a background build to finish (then cancels it).
FINISH_WAIT_S = 120.0


def build_from(many_orders: bool = False) -> int:
    """Stored states from which a search builds the loop in the background (see :data:`BUILD_FROM`);
    ``many_orders`` (5 or 6 VCPUs: numpy's key compares up to 720 images a state, some 1,000 states
    a second) from the first level: at 6,1,1,1 the first 300,000 states took 7.0 s so, 12.9 s from
    16,384 states. ``DEFERRAL_BUILD_FROM`` overrides both."""
    default = 0 if many_orders else BUILD_FROM
    text = os.environ.get(ENV_BUILD_FROM, "").strip()
    try:
        return max(0, int(text)) if text else default
    except ValueError:
        return default


#: Seconds between two polls of a search's limits while it waits for the loop's build.
POLL_S = 0.2


class LazyFused:
    """The fused loop of one model: loaded at the first ask when a search before built the same
    loop (with a ``key``, see :mod:`deferral.checks.explicit.fusedkey`: found without
    generating its source), built in a background thread once a search is big enough
    (:meth:`start`, the numpy path going on meanwhile), or built for the first chunk of
    :data:`MIN_ROWS` rows (which waits for it, polling the search's limits; the other threads
    wait too). A build another search left going, in this process or another, is waited for, not
    repeated: a build claims its key in the cache folder (:func:`cbuild.claim`), and a search
    a limit stopped leaves its build going (at nice 19) for the next.

    ``source``: the C source and the names of the properties it checks (None: no loop);
    ``make``: the loop of a loaded library, given those names."""

    def __init__(self, source: Callable[[], tuple[str, list[str]] | None],
                 make: Callable[[ctypes.CDLL, list[str]], FusedLoop], key: Callable[[], str | None] | None = None
                 ) -> None:
        self._source_fn = source
        self._make = make
        self._key_fn = key
        self._key: str | None = None
        self._folder = cbuild.cache_dir()  # where a build goes, even one that outlives the search
        self._lock = threading.Lock()  # held while the loop is built: a big chunk waits for it
        self._done = False
        self._keyed = key is None  # the key was looked up (or there is none)
        self._loop: FusedLoop | None = None
        self._thread: threading.Thread | None = None  # the background build (see start)
        self._cancel = threading.Event()
        self._detached = False  # the search ended, its build left going: nothing waits for it
        self._low = threading.Event()  # set when detached: the build goes on at the lowest priority
        self._tid: int | None = None  # the background build thread's native id
        #: whether every chunk waits for a background build once one started (5 or 6 VCPUs: there
        #: numpy's key takes up to 720 orders a state, while the build's Python, generating the
        #: C, waits for the GIL; at 6,3,3,3 --spaces 3 it had not finished in 10 minutes so)
        self.wait_started = False
        #: whether this search compiled the loop (not found in the cache)
        self.compiled = False
        #: why there is no loop where one was wanted (no compiler, an unwritable cache, the
        #: compiler failed); None when there is one, or C is switched off or cannot express the model
        self.problem: str | None = None

    def get(self, rows: int | None = None, poll: Callable[[], None] | None = None) -> FusedLoop | None:
        """The loop for a chunk of ``rows`` rows (``None``: build it now, whatever the size);
        None: not for this chunk (smaller than :data:`MIN_ROWS`, not in the cache, and no
        background build finished yet, or started with :attr:`wait_started`), or never (switched
        off, untraceable, no compiler). ``poll``: a search's limits, called every :data:`POLL_S`
        seconds while a build is waited for (what it raises ends the wait; the build goes on)."""
        if self._done:
            return self._loop
        if not self._keyed:
            with self._lock:
                if not self._keyed and not self._done:
                    self._key = self._key_fn() if self._key_fn is not None else None
                    self._keyed = True
                    self._from_cache()
        if self._done:
            return self._loop
        if rows is not None and rows < MIN_ROWS and not (rows > 0 and self._building()):
            return None  # the numpy path, until a background build is done
        if self._detached:
            return None  # the search is over: a last look never waits
        self._await(poll)
        if self._detached and not self._done:
            return None
        self._build(None)  # waits for a background build that holds the lock (done: returns at once)
        return self._loop

    @property
    def loaded(self) -> bool:
        """Whether the loop is loaded (asks nothing: no key look-up, no build)."""
        return self._done and self._loop is not None

    def _from_cache(self) -> bool:
        """Load the loop remembered under the key; whether it was there."""
        found = cbuild.load_key(self._key, self._folder) if self._key is not None else None
        if found is not None and isinstance(found[1], list) and not self._done:
            self._loop = self._make(found[0], found[1])
            self._done = True  # after the loop: a reader that sees done sees the loop
        return self._done

    def running(self) -> bool:
        """Whether this loop's background build is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def _hurry(self) -> None:
        """Someone waits for this build, left going at nice 19: back to 0 (where allowed)."""
        if self._low.is_set():
            self._low.clear()
            if self._tid is not None:
                cbuild.set_priority(os.PRIO_PROCESS, self._tid, 0)

    def _await(self, poll: Callable[[], None] | None) -> None:
        """Wait for this search's background build of the loop (started here when ``poll`` is given),
        which waits in turn for a build another search left going (:func:`cbuild.claim`); ``poll``
        is called every :data:`POLL_S` seconds meanwhile (what it raises ends the wait, not the build)."""
        if poll is not None:
            self.start()
        thread = self._thread
        if thread is None or self._cancel.is_set():
            return
        self._hurry()  # waited for now: no longer at the lowest priority
        while thread.is_alive():
            self._hurry_claimant()
            thread.join(POLL_S)
            if self._detached:  # the search ended meanwhile (a worker thread's wait)
                return
            if poll is not None and thread.is_alive():
                poll()

    def _hurry_claimant(self) -> None:
        """The build this search's build waits for (another search's, left going at nice 19): back to 0."""
        who = cbuild.claimant(self._key, self._folder) if self._key is not None else None
        if who is not None and who[1] > 0 and who[1] != self._tid:
            cbuild.set_priority(os.PRIO_PROCESS, who[1], 0)

    def _building(self) -> bool:
        """Whether chunks wait for a background build: :attr:`wait_started` and one is running."""
        if not self.wait_started or self._detached:
            return False
        thread = self._thread
        return thread is not None and thread.is_alive() and not self._cancel.is_set()

    def start(self) -> None:
        """Build the loop in a background thread (not in the cache: generate the C, compile
        it, about 1-2 s of one core at most bounds, tens of seconds at 6,3,3,3 with three spaces;
        or wait for another search's build of it) and use it for every chunk once it is ready; the
        caller goes on by the numpy path meanwhile. Nothing when it is there or being built already."""
        if self.get(0) is not None or self._done or self._thread is not None:
            return
        with self._lock:
            if self._done or self._thread is not None:
                return
            self._thread = threading.Thread(target=self._background, name="deferral-cc", daemon=True)
            self._thread.start()

    def finish(self, wait: bool = True, timeout: float = FINISH_WAIT_S, *, detach: bool = False) -> None:
        """End the search's use of the background build, if any: wait for it (at most ``timeout``
        seconds: the loop is then cached for the next search), then, or at once (``wait`` False),
        leave it going (``detach``: the next search of this loop in this process waits for it, and
        it is cached when done, also after this process ends: :mod:`~deferral.checks.explicit.cbuild`) or
        cancel it (a compiler running is killed, none is started)."""
        thread = self._thread
        if thread is not None and wait:
            try:
                thread.join(timeout)
            except BaseException:  # interrupted while waiting (Ctrl-C, the CLI's deadline): kill the compiler
                self._cancel.set()
                thread.join(1.0)
                raise
        if detach:
            # left going at nice 19 (its thread, its compiler): work that follows in this process
            # (prove's next route, the next test) is not slowed by a build nobody waits for now
            self._detached = True
            self._low.set()
            if thread is not None and thread.is_alive() and self._tid is not None:
                cbuild.set_priority(os.PRIO_PROCESS, self._tid, 19)
            return
        if thread is None or not thread.is_alive():
            return
        self._cancel.set()
        # the compiler is killed within 0.05 s; a build still generating its C (Python) is not
        # waited for: it sees the cancel before it would start the compiler
        thread.join(1.0)

    def _background(self) -> None:
        self._tid = threading.get_native_id()
        if self._low.is_set():
            cbuild.set_priority(os.PRIO_PROCESS, self._tid, 19)
        try:
            self._build(self._cancel)
        except BaseException as exc:  # noqa: BLE001 - said, not raised: the numpy path goes on
            if not self._done:
                self.problem = f"the background build failed: {type(exc).__name__}: {exc}"
                self._done = True

    def _build(self, cancel: threading.Event | None) -> None:
        """Generate, compile (or find in the cache) and load the loop, unless done already."""
        with self._lock:
            if self._done:
                return
            if self._key is None:
                self._generate_and_load(cancel)
                return
            # another search's build of this loop (this process or another) first: waited for
            if not cbuild.claim(self._key, self._folder, cancel):
                return  # cancelled while waiting
            try:
                # what that build left: the loop, or its compiler still running (after its process ended)
                found = cbuild.wait_for_key(self._key, self._folder, cancel)
                if found is not None and isinstance(found[1], list):
                    self._loop, self._done = self._make(found[0], found[1]), True
                    return
                if cancel is not None and cancel.is_set():
                    return
                self._generate_and_load(cancel)
            finally:
                cbuild.release(self._key, self._folder)

    def _generate_and_load(self, cancel: threading.Event | None) -> None:
        """Generate the C, compile it (or find it in the cache) and load the loop (``_lock`` held)."""
        got = self._source_fn()
        if got is None:
            self._done = True
            return
        code, names = got
        lib, problem = cbuild.load(code, key=self._key, meta=names, cancel=cancel, folder=self._folder,
                                   low=self._low if cancel is not None else None)
        if lib is None and cancel is not None and cancel.is_set():
            return  # cancelled: not done, no problem (a later big chunk may still build it)
        self.compiled = lib is not None and cbuild.built_last()
        self._loop = self._make(lib, names) if lib is not None else None
        self.problem = problem
        self._done = True


