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
import threading
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from deferral.checks.explicit import cbuild
from deferral.checks.explicit.kernels import Node, _const_ok, _range, _traced
from deferral.checks.explicit.packing import Packer, _JitPlan
from deferral.model.concrete import Action
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

    def __init__(self, prefix: str, row_dtype: Any) -> None:
        self.prefix = prefix
        self.row_dtype = np.dtype(row_dtype)
        self.names: dict[int, str] = {}
        self.types: dict[int, np.dtype] = {}
        self.probes: dict[int, Any] = {}

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
                self.names[node.num] = f"R[{node.args[0]}]"
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
            name = f"{self.prefix}{node.num}"
            lines.append(f"{indent}{ctype} {name} = ({ctype}){expr};")
            self.names[node.num] = name

        for root in roots:
            visit(root)


def _action_code(layout: Layout, procs: Mapping[str, Callable[..., Any]], action: Action, k: int,
                 step: int, row_dtype: Any) -> list[str]:
    """The C block of one step instance (raises :class:`NotFusable`)."""
    guard = _traced(layout, procs, action.step.guard, action.args)
    effect = _traced(layout, procs, action.step.effect, action.args)
    if guard is None or effect is None or guard[2] is None:
        raise NotFusable(f"step instance {action.label()} cannot be traced")
    lines = [f"    {{ /* {action.label()} */"]
    g = _Emitter("g", row_dtype)
    value = guard[2]
    if isinstance(value, Node):
        g.emit([value], lines, "      ")
        cond = g.names[value.num] if value.kind == "bool" and g.types[value.num] == np.bool_ \
            else f"({g.names[value.num]} != 0)"
    else:
        cond = "1" if bool(value) else "0"
    lines.append(f"      if ({cond}) {{")
    tracer, ctx, _ = effect
    written = list(ctx.written)
    changed = [(j, ctx.values[j]) for j in written if ctx.values[j] is not tracer.reads[j]]
    e = _Emitter("e", row_dtype)
    e.emit([v for _, v in changed], lines, "        ")
    targets = []
    for j, v in changed:
        size = layout.slots[j].size
        ref = e.ref(v)
        lo, hi = _range(v)
        if lo is None or hi is None or lo < 0 or hi >= size:
            lines.append(f"        if ({ref} < 0 || {ref} >= {size}) {{ err[0] = {k}; err[1] = r; goto fail; }}")
        targets.append((j, ref))
    lines.append("        memcpy(S, R, sizeof(R));")
    for j, ref in targets:
        lines.append(f"        S[{j}] = (row_t){ref};")
    lines.append(f"        EMIT({k}); en[{step}] = 1;")
    lines.append("      }")
    lines.append("    }")
    return lines


def _table(name: str, ctype: str, values: Sequence[int]) -> str:
    body = ", ".join(str(int(v)) + ("ULL" if ctype == "uint64_t" else "") for v in values) or "0"
    return f"static const {ctype} {name}[] = {{{body}}};"


def generate(layout: Layout, procs: Mapping[str, Callable[..., Any]], actions: Sequence[Action],
             step_of: Sequence[int], n_steps: int, packer: Packer, action_dtype: Any) -> str:
    """The C source of the fused loop (raises :class:`NotFusable`)."""
    plan = _JitPlan(packer, None)  # type: ignore[arg-type] - only its tables
    row_c = "uint8_t" if np.dtype(packer.dtype_rows) == np.uint8 else "uint16_t"
    act_c = "uint16_t" if np.dtype(action_dtype) == np.uint16 else "uint32_t"
    n_slots, n_words, n_perm = packer.n_slots, packer.n_words, plan.src.shape[0]
    head = [
        "#include <stdint.h>", "#include <stdlib.h>", "#include <string.h>",
        f"typedef {row_c} row_t;", f"typedef {act_c} act_t;",
        f"#define NS {n_slots}", f"#define NW {n_words}", f"#define NP {n_perm}",
        f"#define NA {len(actions)}", f"#define NSTEP {max(1, n_steps)}",
        f"#define RW {plan.rename.shape[1]}",
        _table("SRC", "int32_t", plan.src.ravel()),
        _table("REMAP", "uint8_t", plan.remap.ravel().astype(np.uint8)),
        _table("RENAME", row_c, plan.rename.ravel()),
        _table("PLACE", "uint64_t", plan.place.ravel()),
        _table("WSTART", "int32_t", plan.word_start),
        _table("WGROUPS", "int32_t", plan.word_groups),
        _table("GFIRST", "int32_t", plan.g_first),
        _table("GLEN", "int32_t", plan.g_len),
        _table("GRADIX", "uint64_t", plan.g_radix),
        _table("GOFF", "int64_t", plan.g_offset),
        _table("TABLE", row_c, plan.table),
        _SUPPORT,
    ]
    body = []
    for k, action in enumerate(actions):
        body += _action_code(layout, procs, action, k, step_of[k], packer.dtype_rows)
    return "\n".join(head) + "\n" + _LOOP.replace("/*ACTIONS*/", "\n".join(body)) + "\n"


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

static void canonical(const row_t *S, uint64_t *out) {
  int best = 0;
  for (int p = 1; p < NP; p++) {
    const int32_t *sp = SRC + p * NS, *sb = SRC + best * NS;
    const uint8_t *mp = REMAP + p * NS, *mb = REMAP + best * NS;
    for (int j = 0; j < NS; j++) {
      int v = S[sp[j]];
      if (mp[j]) v = RENAME[p * RW + v];
      int b = S[sb[j]];
      if (mb[j]) b = RENAME[best * RW + b];
      if (v != b) { if (v < b) best = p; break; }
    }
  }
  row_t image[NS];
  const row_t *x = S;
  if (best != 0) {
    const int32_t *sb = SRC + best * NS;
    const uint8_t *mb = REMAP + best * NS;
    for (int j = 0; j < NS; j++) {
      int v = S[sb[j]];
      image[j] = mb[j] ? RENAME[best * RW + v] : (row_t)v;
    }
    x = image;
  }
  for (int w = 0; w < NW; w++) {
    uint64_t acc = 0;
    for (int j = WSTART[w]; j < WSTART[w + 1]; j++) acc += (uint64_t)x[j] * PLACE[w * NS + j];
    out[w] = acc;
  }
}
"""

_LOOP = r"""
/* The transitions found so far (row-major), grown by doubling. */
struct out { int64_t cap, n; uint64_t *k; uint32_t *p; act_t *a; };

static __attribute__((noinline)) int push(struct out *o, const row_t *S, int64_t parent, int action) {
  if (o->n == o->cap) {
    int64_t cap = o->cap * 2;
    uint64_t *k = realloc(o->k, sizeof(uint64_t) * NW * cap); if (!k) return 1; o->k = k;
    uint32_t *p = realloc(o->p, sizeof(uint32_t) * cap); if (!p) return 1; o->p = p;
    act_t *a = realloc(o->a, sizeof(act_t) * cap); if (!a) return 1; o->a = a;
    o->cap = cap;
  }
  canonical(S, o->k + o->n * NW);
  o->p[o->n] = (uint32_t)parent;
  o->a[o->n] = (act_t)action;
  o->n++;
  return 0;
}
/* Successors of n frontier rows (key words: words[r * NW ...]); returns their number, -1
   if a step wrote outside a domain (err: action, row), -2 if more than cap (err[0]: how
   many), -3 if out of memory. Outputs grouped by action, rows ascending in each. */
int64_t expand_chunk(const uint64_t *words, int64_t n, int64_t offset,
                     uint64_t *out_keys, uint32_t *out_par, act_t *out_act, int64_t cap,
                     int64_t *fired, int64_t *per_step, int64_t *err) {
  struct out o = {n * 4 + 64, 0, NULL, NULL, NULL};
  o.k = malloc(sizeof(uint64_t) * NW * o.cap);
  o.p = malloc(sizeof(uint32_t) * o.cap);
  o.a = malloc(sizeof(act_t) * o.cap);
  int64_t rc = 0, t;
  if (!o.k || !o.p || !o.a) { rc = -3; goto done; }
  row_t R[NS], S[NS];
  uint8_t en[NSTEP];
  for (int64_t r = 0; r < n; r++) {
    unpack_row(words + r * NW, R);
    memset(en, 0, sizeof(en));
#define EMIT(K) do { if (push(&o, S, r + offset, K)) { rc = -3; goto done; } fired[K]++; } while (0)
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
  free(o.k); free(o.p); free(o.a);
  return rc;
}
"""


class FusedLoop:
    """A loaded fused loop: :meth:`successors` of a chunk of frontier keys."""

    def __init__(self, lib: ctypes.CDLL, packer: Packer, n_actions: int, n_steps: int, action_dtype: Any) -> None:
        self.fn = lib.expand_chunk
        self.fn.restype = ctypes.c_int64
        self.fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p,
                            ctypes.c_void_p, ctypes.c_int64, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
        self.lib = lib  # keeps the library loaded
        self.packer = packer
        self.n_actions, self.n_steps = n_actions, n_steps
        self.action_dtype = action_dtype
        self.fanout = float(n_actions)  # successors per row to allocate for; the largest seen since

    def successors(self, keys: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                                   np.ndarray, np.ndarray] | None:
        """Every transition out of the states ``keys`` (frontier rows ``offset``...): successor
        keys, parent rows (uint32, ``offset`` added), actions, transitions per action, rows
        with some instance of each step enabled; None where a step wrote outside a domain."""
        words = np.ascontiguousarray(self.packer.words(keys), dtype=np.uint64)
        m, n_words = words.shape[0], self.packer.n_words
        fired = np.zeros(self.n_actions, dtype=np.int64)
        per_step = np.zeros(max(1, self.n_steps), dtype=np.int64)
        err = np.zeros(2, dtype=np.int64)
        cap = int(m * min(self.fanout * 1.1 + 0.5, self.n_actions)) + 64
        while True:
            out_keys = np.empty((cap, n_words), dtype=np.uint64)
            out_par = np.empty(cap, dtype=np.uint32)
            out_act = np.empty(cap, dtype=self.action_dtype)
            fired[:] = 0
            per_step[:] = 0
            got = self.fn(words.ctypes.data, m, offset, out_keys.ctypes.data, out_par.ctypes.data,
                          out_act.ctypes.data, cap, fired.ctypes.data, per_step.ctypes.data, err.ctypes.data)
            if got == -2:
                cap = int(err[0])
                continue
            if got == -3:
                raise MemoryError("the fused successor loop could not allocate its buffers")
            break
        if got < 0:
            return None
        if m:
            self.fanout = max(self.fanout if self.fanout < self.n_actions else 0.0, got / m)
        keys_out = self.packer.to_sortable(out_keys[:got])
        return keys_out, out_par[:got], out_act[:got], fired, per_step[:self.n_steps]


def build(layout: Layout, procs: Mapping[str, Callable[..., Any]], actions: Sequence[Action],
          step_of: Sequence[int], n_steps: int, packer: Packer, action_dtype: Any) -> FusedLoop | None:
    """The model's fused loop, compiled (or from the cache) and loaded; None if not possible."""
    if cbuild.compiler() is None or not actions:
        return None
    try:
        source = generate(layout, procs, actions, step_of, n_steps, packer, action_dtype)
    except NotFusable:
        return None
    lib = cbuild.load(source)
    if lib is None:
        return None
    return FusedLoop(lib, packer, len(actions), n_steps, action_dtype)


#: Chunks of fewer rows take the per-action path (a small search never builds the loop).
MIN_ROWS = 1 << 12


class LazyFused:
    """The fused loop, built in a background thread when a chunk of :data:`MIN_ROWS` rows asks.

    Until it is ready (the C compiled on this machine's first run, a second or two; loaded
    from the cache on later runs, milliseconds) chunks take the per-action path, so the
    compiler never holds up the search; the results are the same either way.
    """

    def __init__(self, factory: Callable[[], FusedLoop | None]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._done = threading.Event()
        self._loop: FusedLoop | None = None

    def _build(self) -> None:
        try:
            self._loop = self._factory()
        finally:
            self._done.set()

    def get(self, rows: int | None = None) -> FusedLoop | None:
        """The loop for a chunk of ``rows`` rows (None: not now, or never); ``rows=None``
        builds it here and waits for it."""
        if self._done.is_set():
            return self._loop
        if rows is not None and rows < MIN_ROWS:
            return None
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._build, name="deferral-fused-build", daemon=True)
                self._thread.start()
        if rows is None:
            self._done.wait()
            return self._loop
        return None
