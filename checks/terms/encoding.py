"""The Z3 encoding: Init and the transition relation of a protocol as Z3 formulas.

Nothing here restates the protocol. :class:`Z3Ops` is a backend for the model's
:class:`~deferral.model.context.StepContext`: the SAME step, procedure and property
functions that run on Python ints run here on Z3 terms, and produce each step's guard
and its new slot values as formulas over the current-state variables.

Representation. Every slot of the :class:`~deferral.model.schema.Layout` is one state
variable: a Z3 ``Bool`` for a bool-valued slot, otherwise a bit-vector just wide enough
for its values (``slot.bits``), constrained to ``< slot.size``. Step functions compute
on a common, wider bit-vector width (zero-extended reads, two spare bits) so that
``length + 1`` cannot wrap and Z3's signed ``<`` on bit-vectors agrees with integer
``<``. A transition whose new value does not fit its slot's domain is not a
transition (the concrete model raises :class:`StepError` there instead).

The transition relation is functional in an *action selector* ``act``: one bit-vector
naming which step instance fires; ``T(x, act, y)`` is ``guard_act(x)`` and, for every
slot, ``y_j = (ite over the actions that write j) else x_j``.

What cannot be encoded: a variant whose step functions branch with Python ``if``/``and``/
``or``/``not`` on a state value, use one as a Python int (a list index, ``range``), mix
bool-valued variables with integer arithmetic (``s.ipi[k][i] + 1``), or raise. Every
state value is wrapped in :class:`Sym`, whose truth test raises (z3's own terms would
answer ``bool(a == b)`` structurally and silently encode something else), so those raise
:class:`EncodingError`, one line naming the variant, its file and the step.
:func:`crosscheck` compares the terms with the concrete model on the first states as a
second net. Anything written in the StepContext notation encodes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Callable, Iterable, Sequence

import z3

from deferral.checks.terms.interrupts import raise_if_interrupt
from deferral.model.bounds import Bounds
from deferral.model.call_memo import CallMemo
from deferral.model.concrete import Model, State
from deferral.model.context import USER_ERRORS, StepContext, StepError, describe_user_error
from deferral.model.ops import Ops
from deferral.model.protocol import Property, Protocol, Step
from deferral.model.schema import BOOL, Layout, Slot


class EncodingError(Exception):
    """A protocol (variant) whose functions cannot be evaluated over Z3 terms."""


class BranchError(StepError):
    """A step used a state value as a Python bool (``if``, ``and``, ``or``, ``not``, ``bool()``)."""


_BINARY = ("__eq__", "__ne__", "__lt__", "__le__", "__gt__", "__ge__", "__add__", "__radd__", "__sub__",
           "__rsub__", "__and__", "__rand__", "__or__", "__ror__", "__xor__", "__rxor__", "__mul__", "__rmul__")


class Sym:
    """A Z3 term as a step-context value: every operator yields a ``Sym``; truth testing raises.

    z3's own terms answer ``bool(a == b)`` *structurally* (no exception), so a step written
    ``if s.pc[i] == IDLE:`` would silently encode "is the term ``pc[i]`` the constant 0"
    (always false). Wrapping every state value refuses that: ``__bool__`` (used by ``if``,
    ``and``, ``or``, ``not``) and ``__index__``/``__int__`` raise :class:`BranchError`.
    """

    __slots__ = ("term",)
    __hash__ = object.__hash__

    def __init__(self, term: Any) -> None:
        self.term = term

    def __bool__(self) -> bool:
        raise BranchError("branches with Python `if`/`and`/`or`/`not` on a state value; "
                          "use s.when / s.ite / & | s.not_")

    def __index__(self) -> int:
        raise BranchError("uses a state value as a Python int (a list index, range(), int()); "
                          "index the state's own variables (s.var[x]) or use s.ite")

    __int__ = __index__

    def __invert__(self) -> "Sym":
        return Sym(z3.Not(self.term) if isinstance(self.term, z3.BoolRef) else ~self.term)

    def __neg__(self) -> "Sym":
        return Sym(-self.term)

    def __repr__(self) -> str:
        return f"Sym({self.term})"


_BOOL_OPS = {"__and__": z3.And, "__rand__": z3.And, "__or__": z3.Or, "__ror__": z3.Or}


def _fast_eq(a: Any, b: Any, equal: bool) -> Any:
    """``a == b`` (or ``a != b``) for a bit-vector and a Python int or a bit-vector of its width, by
    the C API (the most frequent operation of the steps over Z3 terms); None for anything else."""
    if type(a) is not z3.BitVecRef:
        return None
    ctx = a.ctx
    if type(b) is int and 0 <= b < 2 ** 63:
        other = z3.Z3_mk_unsigned_int64(ctx.ref(), b, z3.Z3_get_sort(ctx.ref(), a.as_ast()))
    elif type(b) is z3.BitVecRef and b.ctx is ctx and b.size() == a.size():
        other = b.as_ast()
    else:
        return None
    eq = z3.Z3_mk_eq(ctx.ref(), a.as_ast(), other)
    return z3.BoolRef(eq if equal else z3.Z3_mk_not(ctx.ref(), eq), ctx)


def _fast_bool(a: Any, b: Any, conjunction: bool) -> Any:
    """``z3.And(a, b)`` (``conjunction``) or ``z3.Or(a, b)`` of a Bool term and a Bool term or Python bool, by the
    C API (z3.And's argument checks were a sixth of building a learner's families at 3,2,2); None for others."""
    if type(a) is not z3.BoolRef:
        return None
    ctx = a.ctx
    if type(b) is bool:
        other = z3.Z3_mk_true(ctx.ref()) if b else z3.Z3_mk_false(ctx.ref())
    elif type(b) is z3.BoolRef and b.ctx is ctx:
        other = b.as_ast()
    else:
        return None
    arr = (z3.Ast * 2)(a.as_ast(), other)
    return z3.BoolRef((z3.Z3_mk_and if conjunction else z3.Z3_mk_or)(ctx.ref(), 2, arr), ctx)


def _binary(name: str) -> Callable[[Sym, Any], Any]:
    def op(self: Sym, other: Any) -> Any:
        raw = other.term if isinstance(other, Sym) else other
        if name in ("__eq__", "__ne__"):
            fast = _fast_eq(self.term, raw, name == "__eq__")
            if fast is not None:
                return Sym(fast)
        if name in _BOOL_OPS and isinstance(self.term, z3.BoolRef) and isinstance(raw, (bool, z3.BoolRef)):
            fast = _fast_bool(self.term, raw, name in ("__and__", "__rand__"))
            # a Python constant on either side (True & c)
            return Sym(fast if fast is not None else _BOOL_OPS[name](self.term, raw))
        result = getattr(self.term, name)(raw)
        return result if result is NotImplemented else Sym(result)
    op.__name__ = name
    return op


for _name in _BINARY:
    setattr(Sym, _name, _binary(_name))


def raw(x: Any) -> Any:
    """The Z3 term (or Python constant) behind a step-context value."""
    return x.term if isinstance(x, Sym) else x


def _is_bool_slot(slot: Slot) -> bool:
    return slot.part != "len" and slot.var.domain is BOOL


def _fast_junction(terms: list[Any], conjunction: bool) -> Any:
    """``z3.And(terms)`` / ``z3.Or(terms)`` of Bools of one context by the C API: the Python
    wrappers re-check every argument's sort and context (a third of the step terms' build time
    at 4,3,3,3 went there); anything else goes through them."""
    ctx = terms[0].ctx
    if not all(type(t) is z3.BoolRef and t.ctx is ctx for t in terms):
        return z3.And(terms) if conjunction else z3.Or(terms)
    arr = (z3.Ast * len(terms))(*(t.as_ast() for t in terms))
    make = z3.Z3_mk_and if conjunction else z3.Z3_mk_or
    return z3.BoolRef(make(ctx.ref(), len(terms), arr), ctx)


def _fast_ite(c: Any, then: Any, other: Any) -> Any:
    """``z3.If(c, then, other)`` for a Bool and two terms of one sort and context, by the C API."""
    ctx = c.ctx
    if (type(c) is z3.BoolRef and type(then) is type(other) and then.ctx is ctx and other.ctx is ctx
            and (type(then) is z3.BoolRef or (type(then) is z3.BitVecRef and then.size() == other.size()))):
        return type(then)(z3.Z3_mk_ite(ctx.ref(), c.as_ast(), then.as_ast(), other.as_ast()), ctx)
    return z3.If(c, then, other)


def junction(xs: Iterable[Any], is_value: Callable[[Any], bool], boolean: Callable[[Any], Any], *,
             conjunction: bool) -> Any:
    """And (``conjunction``) or Or of ``xs`` as a Z3 term, for the Z3 backends: a Python constant
    that decides it (False in an And, True in an Or) returns that constant outright, the others
    are dropped; no term left is the identity (True for And, False for Or)."""
    terms = []
    for x in xs:
        if not is_value(x):
            if bool(x) != conjunction:
                return not conjunction
            continue
        terms.append(boolean(x))
    if not terms:
        return conjunction
    return terms[0] if len(terms) == 1 else _fast_junction(terms, conjunction)


class Z3Ops(Ops):
    """Z3 terms as step-context values: Bools for conditions, bit-vectors of ``width`` for numbers."""

    concrete = False
    immutable = True

    def __init__(self, width: int) -> None:
        self.width = width

    # ---- coercions -----------------------------------------------------------------
    def bv(self, x: Any) -> Any:
        x = raw(x)
        if isinstance(x, z3.BoolRef):
            return z3.If(x, z3.BitVecVal(1, self.width), z3.BitVecVal(0, self.width))
        if isinstance(x, z3.BitVecRef):
            return x
        if isinstance(x, (bool, int)):
            return z3.BitVecVal(int(x), self.width)
        raise EncodingError(f"cannot use {x!r} ({type(x).__name__}) as a number")

    def boolean(self, x: Any) -> Any:
        x = raw(x)
        if isinstance(x, z3.BoolRef):
            return x
        if isinstance(x, z3.BitVecRef):
            return x != 0
        if isinstance(x, (bool, int)):
            return z3.BoolVal(bool(x))
        raise EncodingError(f"cannot use {x!r} ({type(x).__name__}) as a condition")

    # ---- Ops -----------------------------------------------------------------------
    def is_value(self, x: Any) -> bool:
        return isinstance(x, (Sym, z3.ExprRef))

    def term_id(self, x: Any) -> int | None:
        x = raw(x)
        return x.get_id() if isinstance(x, z3.ExprRef) else None

    def ite(self, cond: Any, then: Any, other: Any) -> Any:
        if not self.is_value(cond):
            return then if cond else other
        c = self.boolean(cond)
        then, other = raw(then), raw(other)
        boolish = all(isinstance(v, (bool, z3.BoolRef)) for v in (then, other))
        if boolish:
            return Sym(_fast_ite(c, self.boolean(then), self.boolean(other)))
        return Sym(_fast_ite(c, self.bv(then), self.bv(other)))

    def not_(self, x: Any) -> Any:
        if not self.is_value(x):
            return not x
        return Sym(z3.Not(self.boolean(x)))

    def outside(self, index: Any, size: int) -> Any:
        """``index >= size`` unsigned (a number below 0 wraps past every size), by the C API: one
        comparison per access with a symbolic index, built for every step instance (``defined``)."""
        t = self.bv(index)
        ctx = t.ctx
        bound = z3.Z3_mk_unsigned_int64(ctx.ref(), size, t.sort().ast)
        return Sym(z3.BoolRef(z3.Z3_mk_bvuge(ctx.ref(), t.as_ast(), bound), ctx))

    def all_(self, xs: Iterable[Any]) -> Any:
        found = junction(xs, self.is_value, self.boolean, conjunction=True)
        return Sym(found) if isinstance(found, z3.BoolRef) else found

    def any_(self, xs: Iterable[Any]) -> Any:
        found = junction(xs, self.is_value, self.boolean, conjunction=False)
        return Sym(found) if isinstance(found, z3.BoolRef) else found

    def store(self, slot: Any, value: Any) -> Any:
        return Sym(self.boolean(value) if _is_bool_slot(slot) else self.bv(value))


#: Z3 term classes a C-API result can be wrapped in directly (the sort fixes the class).
_PLAIN = (z3.BoolRef, z3.BitVecRef)


class Renaming:
    """Replace variables by terms in Z3 terms: ``Renaming(old, new)(term)`` (Z3's substitution,
    with the pairs packed once instead of checked on every call as ``z3.substitute`` does)."""

    def __init__(self, old: Sequence[Any], new: Sequence[Any]) -> None:
        self.n = len(old)
        self.ctx = old[0].ctx if self.n else z3.main_ctx()
        self.old, self.new = (z3.Ast * self.n)(), (z3.Ast * self.n)()
        self.keep = (list(old), list(new))  # the packed arrays do not hold references
        for k, (a, b) in enumerate(zip(old, new)):
            self.old[k], self.new[k] = a.as_ast(), b.as_ast()

    def __call__(self, term: Any) -> Any:
        if not self.n or not isinstance(term, z3.ExprRef):
            return term
        return z3.z3._to_expr_ref(z3.Z3_substitute(self.ctx.ref(), term.as_ast(), self.n, self.old, self.new),
                               self.ctx)

    def many(self, terms: Sequence[Any], simplify: bool = False) -> list[Any]:
        """``[self(t) for t in terms]`` in one substitution: the terms are the arguments of one
        application of a fresh function, so subterms they share are renamed once (the step
        terms of all instances share most of theirs); ``simplify``: each result simplified too,
        in one call (a fresh function's application is not rewritten, its arguments are)."""
        if not self.n or len(terms) < 2 or not all(isinstance(t, z3.ExprRef) and t.ctx is self.ctx for t in terms):
            return [z3.simplify(self(t)) if simplify else self(t) for t in terms]
        ref = self.ctx.ref()
        sorts = (z3.Sort * len(terms))(*(z3.Z3_get_sort(ref, t.as_ast()) for t in terms))
        bundle = z3.Z3_mk_fresh_func_decl(ref, "rename", len(terms), sorts, z3.BoolSort(self.ctx).ast)
        app = z3.Z3_mk_app(ref, bundle, len(terms), (z3.Ast * len(terms))(*(t.as_ast() for t in terms)))
        app_ref = z3.BoolRef(app, self.ctx)  # holds a reference while substituting
        out = z3.BoolRef(z3.Z3_substitute(ref, app_ref.as_ast(), self.n, self.old, self.new), self.ctx)
        if simplify:
            out = z3.BoolRef(z3.Z3_simplify(ref, out.as_ast()), self.ctx)
        ast = out.as_ast()  # each argument keeps its term's Python class (z3's arg() looks it up: slow)
        return [type(t)(z3.Z3_get_app_arg(ref, ast, k), self.ctx) if type(t) in _PLAIN else out.arg(k)
                for k, t in enumerate(terms)]


@dataclass(frozen=True)
class ActionTerms:
    """One step instance over given current-state variables: its guard and new slot values."""

    index: int
    step: Step
    args: tuple[int, ...]
    guard: Any  # z3 Bool
    updates: dict[int, Any]  # slot -> new value (wide bit-vector or Bool)
    #: where it runs without an error (``track_undefined``): every access names an element and every
    #: written value is in its slot's domain where the guard holds; None where not tracked
    defined: Any = None
    #: its parts (``track_undefined``): where evaluating the guard fails, and where the effect fails
    #: (``defined`` is ``not fails_at_guard and (guard implies not fails_in_effect)``)
    fails_at_guard: Any = None
    fails_in_effect: Any = None

    def label(self) -> str:
        return self.step.label(self.args)


@dataclass
class Encoding:
    """A protocol at fixed bounds as Z3 formulas over copies of the state variables."""

    protocol: Protocol
    bounds: Bounds
    #: a procedure call several step instances make on the same values is evaluated once (model/call_memo.py;
    #: False: every call, as before: benchmarks/bench_encode.py measures both)
    share_calls: bool = True
    layout: Layout = field(init=False)
    ops: Z3Ops = field(init=False)

    def __post_init__(self) -> None:
        self.layout = self.protocol.layout(self.bounds)
        self.ops = Z3Ops(max(self.layout.bits) + 2)
        self._instance_cache: dict[Any, list[tuple[tuple[int, ...], Any]]] = {}
        #: results derived from this encoding once (checks/symbolic/symmetry.py: the steps' symmetry)
        self.derived: dict[str, Any] = {}

    # ---- state variables -----------------------------------------------------------
    def sort(self, slot: Slot) -> Any:
        return z3.BoolSort() if _is_bool_slot(slot) else z3.BitVecSort(slot.bits)

    def state(self, tag: str) -> list[Any]:
        """Fresh state variables named ``<slot label>@<tag>``."""
        return [z3.Const(f"{s.label()}@{tag}", self.sort(s)) for s in self.layout.slots]

    @cached_property
    def model(self) -> Model:
        return Model(self.protocol, self.bounds)

    @cached_property
    def n_actions(self) -> int:
        return len(self.model.actions)

    @cached_property
    def selector_sort(self) -> Any:
        return z3.BitVecSort(max(1, (self.n_actions - 1).bit_length()))

    def selector(self, tag: str) -> Any:
        return z3.Const(f"act@{tag}", self.selector_sort)

    def wide(self, xs: Sequence[Any]) -> list[Any]:
        """The step-context values of state variables: Bools as is, numbers zero-extended."""
        out = []
        for s, x in zip(self.layout.slots, xs):
            out.append(x if _is_bool_slot(s) else z3.ZeroExt(self.ops.width - s.bits, x))
        return out

    def context(self, xs: Sequence[Any], wide: bool = False, track_undefined: bool = False,
                calls: CallMemo | None = None) -> StepContext:
        """A step context over ``xs`` (state variables, or already wide values if ``wide``); with
        ``track_undefined``, it records where an access names no element (:class:`StepContext`);
        ``calls``: procedure calls shared with the other contexts given it (:mod:`deferral.model.call_memo`)."""
        if not wide and xs is self._base_vars:
            values = self._base_values
        else:
            values = [v if isinstance(v, Sym) else Sym(v) for v in (list(xs) if wide else self.wide(xs))]
        return StepContext(self.layout, self.ops, values, self.protocol.procedure_table,
                           track_undefined=track_undefined, calls=calls)

    def valid(self, xs: Sequence[Any]) -> Any:
        """Every slot holds a value of its domain."""
        terms = [z3.ULT(x, s.size) for s, x in zip(self.layout.slots, xs)
                 if not _is_bool_slot(s) and s.size < 2 ** s.bits]
        return z3.And(terms) if terms else z3.BoolVal(True)

    def equals(self, xs: Sequence[Any], state: Sequence[int]) -> Any:
        """The variables ``xs`` hold the concrete ``state``."""
        return z3.And([self.const(s, v) == x for s, x, v in zip(self.layout.slots, xs, state)])

    def const(self, slot: Slot, value: int) -> Any:
        return z3.BoolVal(bool(value)) if _is_bool_slot(slot) else z3.BitVecVal(value, slot.bits)

    def init(self, xs: Sequence[Any]) -> Any:
        return self.equals(xs, self.layout.initial)

    # ---- steps ---------------------------------------------------------------------
    def action_terms(self, xs: Sequence[Any], wide: bool = False) -> list[ActionTerms]:
        """Guard and updates of every step instance, evaluated by the protocol's own functions.

        Evaluated once per encoding (over variables tagged ``_terms``); for state variables the
        result is that, renamed by Z3's substitution (in C: evaluating the step functions in
        Python took about 4 s per copy of the variables at 4,3,3,3, renaming takes a few ms).
        """
        if wide or not all(z3.is_const(x) for x in xs):
            calls = self._call_memo()
            return [self._evaluate(a.index, a.step, a.args, xs, wide, calls=calls) for a in self.model.actions]
        base = self._base_terms
        flat = [term for t in base for term in (t.guard, *t.updates.values())]
        renamed = iter(Renaming(self._base_vars, xs).many(flat))
        out = []
        for t in base:
            guard = next(renamed)
            out.append(ActionTerms(t.index, t.step, t.args, guard, {j: next(renamed) for j in t.updates}))
        return out

    def _call_memo(self) -> CallMemo | None:
        """A memo for one evaluation of every step instance (None where calls are not shared)."""
        return CallMemo() if self.share_calls else None

    @cached_property
    def _base_vars(self) -> list[Any]:
        return self.state("_terms")

    @cached_property
    def _base_values(self) -> list[Sym]:
        """The step-context values of :attr:`_base_vars`, built once: every lemma instance and step is
        evaluated over them (building the zero-extensions per context was 15 % of a Houdini call at 3,2,2)."""
        return [Sym(v) for v in self.wide(self._base_vars)]

    @cached_property
    def _base_terms(self) -> list[ActionTerms]:
        """Every step instance over the encoding's own variables, with where it fails (``defined``:
        the same guard and updates; recording the conditions costs about half as much again, once)."""
        xs, calls = self._base_vars, self._call_memo()  # the instances' common calls evaluated once (an overflow's drains)
        return [self._evaluate(a.index, a.step, a.args, xs, track_undefined=True, calls=calls)
                for a in self.model.actions]

    def _evaluate(self, index: int, step: Step, args: tuple[int, ...], xs: Sequence[Any],
                  wide: bool = False, track_undefined: bool = False, calls: CallMemo | None = None) -> ActionTerms:
        try:
            at_guard = self.context(xs, wide, track_undefined, calls)
            guard = self.ops.boolean(step.guard(at_guard, *args))
            ctx = self.context(xs, wide, track_undefined, calls)
            step.effect(ctx, *args)
        except BranchError as exc:
            raise EncodingError(f"{self._where(step, args)} {exc}") from None
        except (z3.Z3Exception, EncodingError) as exc:
            raise EncodingError(self._why(step, args, exc)) from None
        except USER_ERRORS as exc:  # a user's step raised or exited: one line naming file, step and error
            raise_if_interrupt(exc)  # Ctrl-C or SIGTERM inside a Z3 call: not the step's error
            raise EncodingError(f"{self._where(step, args)} {describe_user_error(exc)}") from None
        updates = {j: raw(ctx.values[j]) for j in sorted(ctx.written)}
        if not track_undefined:
            return ActionTerms(index, step, args, guard, updates)
        fits = [z3.ULT(v, self.layout.slots[j].size) for j, v in updates.items()
                if not _is_bool_slot(self.layout.slots[j]) and self.layout.slots[j].size < 2 ** self.ops.width]
        runs = _fast_junction([self.none_of(ctx.undefined), *fits], True)
        guard_runs = self.none_of(at_guard.undefined)
        return ActionTerms(index, step, args, guard, updates, z3.And(guard_runs, z3.Implies(guard, runs)),
                           z3.Not(guard_runs), z3.Not(runs))

    def defined_terms(self, xs: Sequence[Any]) -> list[ActionTerms]:
        """Every step instance over the state variables ``xs`` with where it runs without an error
        (``defined``, and its parts): the cached terms renamed, like :meth:`action_terms`."""
        base = self._base_terms
        if list(xs) is self._base_vars or all(x.eq(y) for x, y in zip(xs, self._base_vars)):
            return list(base)
        if not all(z3.is_const(x) for x in xs):
            calls = self._call_memo()
            return [self._evaluate(a.index, a.step, a.args, xs, track_undefined=True, calls=calls)
                    for a in self.model.actions]
        flat = [term for t in base for term in (t.guard, t.defined, t.fails_at_guard, t.fails_in_effect,
                                                 *t.updates.values())]
        renamed = iter(Renaming(self._base_vars, xs).many(flat))
        out = []
        for t in base:
            guard, defined, at_guard, in_effect = (next(renamed) for _ in range(4))
            out.append(ActionTerms(t.index, t.step, t.args, guard, {j: next(renamed) for j in t.updates},
                                   defined, at_guard, in_effect))
        return out

    def none_of(self, conditions: Sequence[Any] | None) -> Any:
        """True where none of ``conditions`` (step-context values) holds."""
        # (by the C API: z3.Or re-checks every argument, 1 s at 6,3,3,3,S=3 where a step has many)
        return z3.Not(_fast_junction([self.ops.boolean(c) for c in conditions], False)) if conditions \
            else z3.BoolVal(True)

    def _where(self, step: Step, args: tuple[int, ...]) -> str:
        return f"{self.protocol.name} ({self.protocol.source}): step {step.label(args)} (encoding for Z3)"

    def _why(self, step: Step, args: tuple[int, ...], exc: Exception) -> str:
        return (f"{self.protocol.name} ({self.protocol.source}): step {step.label(args)} cannot be "
                f"evaluated over Z3 terms ({exc}); write it in the StepContext notation "
                "(s.when / s.ite / & | s.not_, no Python if/and/or/not on state values)")

    def next_values(self, xs: Sequence[Any], act: Any, terms: Sequence[ActionTerms] | None = None) -> list[Any]:
        """Per slot, the new value as a function of the state and the selector (wide form)."""
        terms = self.action_terms(xs) if terms is None else terms
        values = list(self.wide(xs))
        writers: dict[int, list[ActionTerms]] = {}
        for t in terms:
            for j in t.updates:
                writers.setdefault(j, []).append(t)
        for j, ts in writers.items():
            v = values[j]
            for t in reversed(ts):
                v = z3.If(act == t.index, t.updates[j], v)
            values[j] = v
        return values

    def trans(self, xs: Sequence[Any], ys: Sequence[Any], act: Any, only: Sequence[int] | None = None) -> Any:
        """``T(x, act, y)``: action ``act`` is enabled in ``x`` and leads to ``y`` (``only``: ``act`` is
        one of these step instances)."""
        terms = self.action_terms(xs)
        if only is not None:
            keep = set(only)
            terms = [t for t in terms if t.index in keep]
        enabled = z3.Or([z3.And(act == t.index, t.guard) for t in terms])
        nxt = self.next_values(xs, act, terms)
        eqs = [y == v for y, v in zip(self.wide(ys), nxt)]
        return z3.And([enabled, *eqs, self.valid(ys)])

    # ---- properties ----------------------------------------------------------------
    def instances(self, fn: Callable[..., Any], params: Sequence[tuple[str, Any]],
                  xs: Sequence[Any]) -> list[tuple[tuple[int, ...], Any]]:
        """``(args, fn(s, *args))`` for every parameter instance, as Z3 Bools over ``xs`` (state
        variables): evaluated once per (fn, params) and renamed for other variables, like the steps."""
        cached = self._base_instances(fn, tuple(params))
        renamed = Renaming(self._base_vars, xs).many([term for _, term in cached])
        return [(args, term) for (args, _), term in zip(cached, renamed)]

    def _base_instances(self, fn: Callable[..., Any], params: tuple[tuple[str, Any], ...]
                        ) -> list[tuple[tuple[int, ...], Any]]:
        """:meth:`instances` over the encoding's own variables, built once per (fn, params). A function
        with an ``any_of`` attribute (a learned or weakened family: the disjunction of those functions,
        :mod:`deferral.checks.symbolic.strengthen`, :mod:`deferral.checks.symbolic.weaken`) is the Or of
        its parts' cached terms: hundreds of families share a few dozen literals, whose reads at
        symbolic indices are the costly part to build."""
        key = (fn, params)
        if key not in self._instance_cache:
            from itertools import product

            parts = getattr(fn, "any_of", None)
            if parts:
                rows = zip(*(self._base_instances(p, params) for p in parts))
                self._instance_cache[key] = [
                    (row[0][0], self.ops.boolean(self.ops.any_([_constant(t) for _, t in row]))) for row in rows]
            else:
                ctx_vars = self._base_vars
                self._instance_cache[key] = [
                    (args, self.ops.boolean(fn(self.context(ctx_vars), *args)))
                    for args in product(*(range(d.size(self.bounds)) for _, d in params))]
        return self._instance_cache[key]

    def holds(self, fn: Callable[..., Any], params: Sequence[tuple[str, Any]], xs: Sequence[Any],
              undefined: list[Any] | None = None) -> Any:
        """``fn(s, *args)`` for every parameter instance, as one conjunction; given a list ``undefined``,
        the conditions under which an access names no element are appended to it."""
        from itertools import product

        terms = []
        for args in product(*(range(d.size(self.bounds)) for _, d in params)):
            try:
                ctx = self.context(xs, track_undefined=undefined is not None)
                terms.append(self.ops.boolean(fn(ctx, *args)))
                if undefined is not None:
                    undefined.extend(ctx.undefined or ())
            except BranchError as exc:
                raise EncodingError(f"{self.protocol.name} ({self.protocol.source}): "
                                    f"{getattr(fn, '__name__', fn)}{args} {exc}") from None
            except (z3.Z3Exception, EncodingError) as exc:
                raise EncodingError(f"{getattr(fn, '__name__', fn)}{args} cannot be evaluated over Z3 "
                                    f"terms: {exc}") from None
            except USER_ERRORS as exc:
                raise_if_interrupt(exc)
                raise EncodingError(f"{self.protocol.name} ({self.protocol.source}): {getattr(fn, '__name__', fn)}"
                                    f"{args} {describe_user_error(exc)}") from None
        return z3.And(terms) if terms else z3.BoolVal(True)

    def prop(self, prop: Property, xs: Sequence[Any]) -> Any:
        return self.holds(prop.predicate, prop.params, xs)

    def invariants(self, xs: Sequence[Any]) -> Any:
        props = [p for p in self.protocol.properties if p.kind == "invariant"]
        return z3.And([self.prop(p, xs) for p in props]) if props else z3.BoolVal(True)

    # ---- models back to concrete states -----------------------------------------------
    def decode(self, m: z3.ModelRef, xs: Sequence[Any]) -> State:
        out = []
        for s, x in zip(self.layout.slots, xs):
            v = m.eval(x, model_completion=True)
            out.append(int(z3.is_true(v)) if _is_bool_slot(s) else v.as_long())
        return tuple(out)

    def replay(self, states: Sequence[State]) -> list[tuple[Any, State]]:
        """A concrete path through ``states``: each step the (first) action the model agrees on.

        The states come from a solver; the actions and the exact states are the concrete
        model's, so a trace built from them replays. Raises AssertionError if the
        concrete model has no such step (the encoding and the model disagree).
        """
        model = self.model
        path: list[tuple[Any, State]] = [(None, states[0])]
        assert states[0] == model.initial, "solver path does not start in the initial state"
        for j in range(1, len(states)):
            for action, succ in model.successors(path[-1][1]):
                if succ == states[j]:
                    path.append((action, succ))
                    break
            else:
                raise AssertionError(f"step {j} of the solver's path is not a step of the concrete model")
        return path


def crosscheck(enc: Encoding, max_states: int = 24,
               over: tuple[Sequence[Any], Sequence[ActionTerms]] | None = None) -> None:
    """Compare the Z3 terms with the concrete model on the first states of a BFS.

    A second net behind :class:`Sym` (which refuses Python ``if`` on a state value): any
    other way a step could evaluate differently over Z3 terms is caught on the states it
    is tried on; raises EncodingError naming the step. ``over``: the state variables and
    every step instance's terms over them, where the caller has them (else the encoding's).
    """
    model = enc.model
    if over is None:
        xs = enc.state("cc")
        terms = enc.action_terms(xs)
    else:
        xs, terms = over[0], list(over[1])
    frontier, seen = [model.initial], {model.initial}
    flat = [term for t in terms for term in (t.guard, *t.updates.values())]
    while frontier and len(seen) <= max_states:
        state = frontier.pop(0)
        values = iter(Renaming(xs, [enc.const(s, v) for s, v in zip(enc.layout.slots, state)]).many(flat, True))
        for t, action in zip(terms, model.actions):
            expected = model.apply(state, action)
            enabled = z3.is_true(next(values))
            news = {j: next(values) for j in t.updates}
            got = None
            if enabled:
                new = list(state)
                for j, v in news.items():
                    new[j] = int(z3.is_true(v)) if z3.is_bool(v) else int(z3.Z3_get_numeral_string(
                        v.ctx.ref(), v.as_ast()))
                got = tuple(new)
            if got != expected:
                raise EncodingError(f"{enc.protocol.name} ({enc.protocol.source}): step {t.label()} evaluates "
                                    f"differently over Z3 terms than over concrete values in state "
                                    f"{model.to_json(state)} (Python if/and/or/not on a state value?)")
            if expected is not None and expected not in seen:
                seen.add(expected)
                frontier.append(expected)


def encode(protocol: Protocol, bounds: Bounds, check: bool = True, share_calls: bool = True) -> Encoding:
    """The Z3 encoding of ``protocol`` at ``bounds`` (raises EncodingError if it cannot be built);
    ``share_calls``: :attr:`Encoding.share_calls`."""
    enc = Encoding(protocol, bounds, share_calls)
    xs = enc.state("probe")
    enc.action_terms(xs)  # fail early, naming the step, if a function does not encode
    enc.invariants(xs)
    if check:
        crosscheck(enc)
    return enc


def _constant(term: Any) -> Any:
    """A Z3 Bool constant as Python's (so a junction decides on it as the step notation does), else the term."""
    return True if z3.is_true(term) else False if z3.is_false(term) else term


def trans_disjunctive(enc: Encoding, xs: Sequence[Any], ys: Sequence[Any]) -> Any:
    """``exists act. T(x, act, y)`` as a disjunction over step instances (no selector variable)."""
    wide_x, wide_y = enc.wide(xs), enc.wide(ys)
    cases = []
    for t in enc.action_terms(xs):
        eqs = [wide_y[j] == (t.updates[j] if j in t.updates else wide_x[j]) for j in range(len(xs))]
        cases.append(z3.And([t.guard, *eqs]))
    return z3.And(z3.Or(cases), enc.valid(ys))
