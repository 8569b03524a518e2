"""A parametric proof of ``no_stale_translation`` for any number of VCPUs and pages.

VCPUs, pages and frames are *uninterpreted* Z3 sorts (``DeclareSort``), with a
distinguished page ``page0`` (the normal form of ``pg`` and of unused queue slots) and a
distinguished frame ``frame0`` (0 = not present); the queue capacity Q stays a concrete
bound. A state is a tuple of functions over those sorts (``gpt: Page -> Frame``,
``shadow, tlb: Vcpu x Page -> Frame``, ``pc: Vcpu -> Pc``, ``cur, lw: -> OptVcpu``,
``qlen: Vcpu -> Len`` (an enumeration of 0..Q) and ``q0..q{Q-1}: Vcpu -> Page`` ...), and a proof over these sorts
holds for every N, every V and every F (any number of frames).

Honesty note: the step functions of :mod:`deferral.model.reference` loop over
``range(s.N)``, so they cannot be evaluated over an uninterpreted sort. This module is
therefore a SECOND, hand-written statement of the 13 steps, of Init and of the 13 lemmas
of :mod:`deferral.model.invariant` (same names). tests/checks/symbolic/test_parametric.py checks
that it agrees with the reference: instantiated at finite sorts (``EnumSort``: exactly
N VCPUs, V pages, F+1 frames), the successors it allows from reachable states equal
``Model.successors``, and every lemma agrees with its finite form on random states.

A step ``post(x, params)`` returns the post-state as closures (the updated function is
``If(arg == param, new, old)``: "every other element unchanged"). ``trans(x, y)`` is the
relation ``exists params. guard & forall args. y.v(args) == post.v(args)``. The proof
obligations (each unsat = proved):

* initiation: ``Init & !L`` for each lemma L,
* consecution, per step: ``Inv(x) & guard(x, params) & !Inv(post(x, params))`` (with y
  eliminated by its defining equations; the parameters are Skolem constants),
* safety: ``Inv(x) & !no_stale_translation(x)``.

``ack_ipi(k)`` takes the
initiator ``i`` as an existential parameter with ``cur[k] = some(i)``: the concrete model
raises on ``ack_ipi`` with ``cur[k]`` none, i.e. that is no transition there either.
"""

from __future__ import annotations

import functools
import itertools
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import z3

PC_NAMES = ("Idle", "Inv", "Reload", "Sd", "SdWait", "Ipi")
STEP_NAMES = ("write", "fill", "shadow_fault", "invlpg", "shootdown", "reload_cr3", "drain_one",
              "finish_invlpg", "finish_reload", "send_ipis", "shootdown_done", "take_ipi", "ack_ipi")

Fn = Callable[..., Any]
State = dict[str, Fn]


@functools.lru_cache(maxsize=None)
def _lengths(queue: int, tag: str) -> tuple[Any, tuple[Any, ...]]:
    """The queue lengths 0..Q as an enumeration sort (no arithmetic: keeps MBQI in finite sorts)."""
    sort, vals = z3.EnumSort(f"Len{queue}{tag}", [f"len{n}_{queue}{tag}" for n in range(queue + 1)])
    return sort, tuple(vals)


@functools.lru_cache(maxsize=None)
def _sorts(finite: tuple[int, int, int] | None) -> tuple[Any, ...]:
    """The Z3 sorts of one universe (memoized: Z3 refuses to declare an enumeration twice)."""
    tag = "" if finite is None else "_{}_{}_{}".format(*finite)
    if finite is None:
        vcpu, page, frame = z3.DeclareSort("Vcpu"), z3.DeclareSort("Page"), z3.DeclareSort("Frame")
        elems: dict[str, list[Any]] = {}
        page0, frame0 = z3.Const("page0", page), z3.Const("frame0", frame)
    else:
        n, v, f = finite
        vcpu, vs = z3.EnumSort("Vcpu" + tag, [f"v{j}{tag}" for j in range(n)])
        page, ps = z3.EnumSort("Page" + tag, [f"p{j}{tag}" for j in range(v)])
        frame, fs = z3.EnumSort("Frame" + tag, [f"f{j}{tag}" for j in range(f + 1)])
        page0, frame0 = ps[0], fs[0]
        elems = {"Vcpu": list(vs), "Page": list(ps), "Frame": list(fs)}
    pc_sort, pcs = z3.EnumSort("Pc" + tag, [f"{n}{tag}" for n in PC_NAMES])
    opt = z3.Datatype("OptVcpu" + tag)
    opt.declare("none" + tag)
    opt.declare("some" + tag, ("val" + tag, vcpu))
    return vcpu, page, frame, page0, frame0, elems, pc_sort, tuple(pcs), opt.create()


class Universe:
    """The sorts and quantifiers: uninterpreted (``finite=None``) or exactly (N, V, F) elements."""

    def __init__(self, queue: int, finite: tuple[int, int, int] | None = None) -> None:
        self.Q = queue
        self.finite = finite
        (self.Vcpu, self.Page, self.Frame, self.page0, self.frame0, self.elems, self.Pc, pcs,
         self.Opt) = _sorts(finite)
        self.pc = dict(zip(PC_NAMES, pcs))
        self.Len, self.L = _lengths(queue, "" if finite is None else "_{}_{}_{}".format(*finite))
        self._some, self._val, self._is_some = self.Opt.constructor(1), self.Opt.accessor(1, 0), self.Opt.recognizer(1)
        self.none = self.Opt.constructor(0)()
        self._fresh = itertools.count()

    def gt(self, n: Any, s: int) -> Any:
        """length ``n`` > ``s``"""
        return z3.Or([n == self.L[j] for j in range(s + 1, self.Q + 1)])

    def inc(self, n: Any) -> Any:
        """``n + 1`` (``Q + 1`` is not a length: used only where ``n < Q``; maps Q to Q)."""
        out = self.L[self.Q]
        for j in range(self.Q - 1, -1, -1):
            out = z3.If(n == self.L[j], self.L[j + 1], out)
        return out

    def dec(self, n: Any) -> Any:
        """``n - 1`` (used only where ``n > 0``; maps 0 to 0)."""
        out = self.L[0]
        for j in range(self.Q, 0, -1):
            out = z3.If(n == self.L[j], self.L[j - 1], out)
        return out

    def val(self, o: Any) -> Any:
        return self._val(o)

    def is_some(self, o: Any) -> Any:
        return self._is_some(o)

    def some(self, v: Any) -> Any:
        return self._some(v)

    def var(self, sort: Any, name: str) -> Any:
        return z3.Const(f"{name}!{next(self._fresh)}", sort)

    def forall(self, sorts: Sequence[Any], body: Callable[..., Any]) -> Any:
        """``forall xs: body(*xs)``: a Z3 quantifier, or its expansion over a finite universe."""
        if self.finite is None:
            xs = [self.var(s, "x") for s in sorts]
            return z3.ForAll(xs, body(*xs))
        return z3.And([z3.BoolVal(True)] + [body(*xs) for xs in itertools.product(
            *(self.elems[s.name().split("_")[0]] for s in sorts))])

    def signature(self) -> dict[str, tuple[list[Any], Any]]:
        """Variable name -> (argument sorts, value sort)."""
        V, P, F = self.Vcpu, self.Page, self.Frame
        sig: dict[str, tuple[list[Any], Any]] = {
            "gpt": ([P], F), "shadow": ([V, P], F), "tlb": ([V, P], F), "qlen": ([V], self.Len)}
        for s in range(self.Q):
            sig[f"q{s}"] = ([V], P)
        sig.update({"pc": ([V], self.Pc), "pg": ([V], P), "ipi": ([V, V], z3.BoolSort()), "cur": ([V], self.Opt),
                    "waitret": ([V], z3.BoolSort()), "waiting": ([V, V], z3.BoolSort()), "lw": ([P], self.Opt),
                    "req": ([V, P], z3.BoolSort()), "covers": ([V], z3.BoolSort())})
        return sig

    def state(self, prefix: str) -> State:
        """A state of fresh uninterpreted functions."""
        return {name: z3.Function(f"{prefix}.{name}", *args, val)
                for name, (args, val) in self.signature().items()}


# ---- functional updates ("every other element unchanged") ---------------------------------------
def upd1(f: Fn, a: Any, v: Any, when: Any = True) -> Fn:
    return lambda x: z3.If(z3.And(x == a, when), v, f(x))


def upd2(f: Fn, a: Any, b: Any, v: Any, when: Any = True) -> Fn:
    return lambda x, y: z3.If(z3.And(x == a, y == b, when), v, f(x, y))


def in_shootdown(u: Universe, x: State, k: Any) -> Any:
    pc = x["pc"](k)
    return z3.Or(pc == u.pc["Sd"], pc == u.pc["SdWait"], z3.And(pc == u.pc["Ipi"], x["waitret"](k)))


def after_send(u: Universe, x: State, i: Any) -> Any:
    return z3.Or(x["pc"](i) == u.pc["SdWait"], z3.And(x["pc"](i) == u.pc["Ipi"], x["waitret"](i)))


def queued(u: Universe, x: State, j: Any, p: Any) -> Any:
    return z3.Or([z3.And(u.gt(x["qlen"](j), s), x[f"q{s}"](j) == p) for s in range(u.Q)])


def last_writer_has(u: Universe, x: State, p: Any, pending: bool) -> Any:
    lw = x["lw"](p)
    q = queued(u, x, u.val(lw), p)
    return z3.And(u.is_some(lw), q if pending else z3.Not(q))


def _pop(u: Universe, x: State, i: Any) -> State:
    """i's queue after removing its head (slots shift down, the last becomes page0)."""
    y = dict(x)
    for s in range(u.Q):
        nxt = x[f"q{s + 1}"](i) if s + 1 < u.Q else u.page0
        y[f"q{s}"] = upd1(x[f"q{s}"], i, nxt)
    y["qlen"] = upd1(x["qlen"], i, u.dec(x["qlen"](i)))
    return y


def _resync(u: Universe, x: State, shadow: Fn, hit: Callable[[Any], Any]) -> Fn:
    """Every VCPU's non-zero shadow entry of a page with ``hit(page)`` re-reads gpt."""
    return lambda k, q: z3.If(z3.And(hit(q), shadow(k, q) != u.frame0), x["gpt"](q), shadow(k, q))


# ---- the 13 steps: (parameter sorts, guard, post) --------------------------------------------
@dataclass(frozen=True)
class PStep:
    name: str
    params: tuple[str, ...]  # sort names
    guard: Callable[..., Any]  # (u, x, *params) -> Bool
    post: Callable[..., State]  # (u, x, *params) -> State


def _write_post(u: Universe, x: State, i: Any, p: Any, f: Any) -> State:
    y = dict(x)
    full = x["qlen"](i) == u.L[u.Q]
    slots = [x[f"q{s}"](i) for s in range(u.Q)]
    y["shadow"] = _resync(u, x, x["shadow"], lambda q: z3.And(full, z3.Or([sl == q for sl in slots])))
    for s in range(u.Q):
        pushed = z3.If(x["qlen"](i) == u.L[s], p, slots[s])
        y[f"q{s}"] = upd1(x[f"q{s}"], i, z3.If(full, p if s == 0 else u.page0, pushed))
    y["qlen"] = upd1(x["qlen"], i, z3.If(full, u.L[1], u.inc(x["qlen"](i))))
    y["gpt"] = upd1(x["gpt"], p, f)
    y["lw"] = upd1(x["lw"], p, u.some(i))
    y["req"] = lambda k, q: z3.If(q == p, False, x["req"](k, q))
    y["covers"] = lambda k: z3.If(z3.And(x["pg"](k) == p, in_shootdown(u, x, k)), False, x["covers"](k))
    return y


def _fill_post(u: Universe, x: State, i: Any, p: Any) -> State:
    return {**x, "tlb": upd2(x["tlb"], i, p, x["shadow"](i, p))}


def _fault_post(u: Universe, x: State, i: Any, p: Any) -> State:
    return {**x, "shadow": upd2(x["shadow"], i, p, x["gpt"](p)), "tlb": upd2(x["tlb"], i, p, x["gpt"](p))}


def _invlpg_post(u: Universe, x: State, i: Any, p: Any) -> State:
    return {**x, "pc": upd1(x["pc"], i, u.pc["Inv"]), "pg": upd1(x["pg"], i, p)}


def _shootdown_post(u: Universe, x: State, i: Any, p: Any) -> State:
    return {**x, "pc": upd1(x["pc"], i, u.pc["Sd"]), "pg": upd1(x["pg"], i, p),
            "covers": upd1(x["covers"], i, x["lw"](p) == u.some(i))}


def _reload_post(u: Universe, x: State, i: Any) -> State:
    return {**x, "pc": upd1(x["pc"], i, u.pc["Reload"])}


def _drain_post(u: Universe, x: State, i: Any) -> State:
    y = _pop(u, x, i)
    head = x["q0"](i)
    y["shadow"] = _resync(u, x, x["shadow"], lambda q: q == head)
    return y


def _finish_invlpg_post(u: Universe, x: State, i: Any) -> State:
    p = x["pg"](i)
    return {**x, "tlb": upd2(x["tlb"], i, p, u.frame0),
            "req": upd2(x["req"], i, p, True, when=x["lw"](p) == u.some(i)),
            "pc": upd1(x["pc"], i, u.pc["Idle"]), "pg": upd1(x["pg"], i, u.page0)}


def _finish_reload_post(u: Universe, x: State, i: Any) -> State:
    tlb, req, lw = x["tlb"], x["req"], x["lw"]
    return {**x, "tlb": lambda k, q: z3.If(k == i, u.frame0, tlb(k, q)),
            "req": lambda k, q: z3.If(z3.And(k == i, lw(q) == u.some(i)), True, req(k, q)),
            "pc": upd1(x["pc"], i, u.pc["Idle"])}


def _send_ipis_post(u: Universe, x: State, i: Any) -> State:
    p = x["pg"](i)
    ipi, waiting = x["ipi"], x["waiting"]
    return {**x, "tlb": upd2(x["tlb"], i, p, u.frame0),
            "req": upd2(x["req"], i, p, True, when=x["covers"](i)),
            "ipi": lambda k, j: z3.If(z3.And(j == i, k != i), True, ipi(k, j)),
            "waiting": lambda j, k: z3.If(z3.And(j == i, k != i), True, waiting(j, k)),
            "pc": upd1(x["pc"], i, u.pc["SdWait"])}


def _done_post(u: Universe, x: State, i: Any) -> State:
    p, req, cov = x["pg"](i), x["req"], x["covers"](i)
    return {**x, "req": lambda k, q: z3.If(z3.And(cov, q == p), True, req(k, q)),
            "pc": upd1(x["pc"], i, u.pc["Idle"]), "pg": upd1(x["pg"], i, u.page0),
            "covers": upd1(x["covers"], i, False)}


def _take_post(u: Universe, x: State, k: Any, i: Any) -> State:
    return {**x, "ipi": upd2(x["ipi"], k, i, False),
            "waitret": upd1(x["waitret"], k, x["pc"](k) == u.pc["SdWait"]),
            "cur": upd1(x["cur"], k, u.some(i)), "pc": upd1(x["pc"], k, u.pc["Ipi"])}


def _ack_post(u: Universe, x: State, k: Any, i: Any) -> State:
    p = x["pg"](i)
    return {**x, "tlb": upd2(x["tlb"], k, p, u.frame0),
            "req": upd2(x["req"], k, p, True, when=z3.Or(x["covers"](i), x["lw"](p) == u.some(k))),
            "waiting": upd2(x["waiting"], i, k, False),
            "pc": upd1(x["pc"], k, z3.If(x["waitret"](k), u.pc["SdWait"], u.pc["Idle"])),
            "waitret": upd1(x["waitret"], k, False), "cur": upd1(x["cur"], k, u.none)}


def _pc_is(u: Universe, x: State, i: Any, *names: str) -> Any:
    return z3.Or([x["pc"](i) == u.pc[n] for n in names])


def steps() -> tuple[PStep, ...]:
    """The 13 steps of PROTOCOL.md over the sorts (a hand-written restatement, see module doc)."""
    def empty(u: Universe, x: State, i: Any) -> Any:
        return x["qlen"](i) == u.L[0]
    return (
        PStep("write", ("Vcpu", "Page", "Frame"), lambda u, x, i, p, f: _pc_is(u, x, i, "Idle"), _write_post),
        PStep("fill", ("Vcpu", "Page"), lambda u, x, i, p: z3.And(x["tlb"](i, p) == u.frame0,
                                                                   x["shadow"](i, p) != u.frame0), _fill_post),
        PStep("shadow_fault", ("Vcpu", "Page"), lambda u, x, i, p: z3.And(
            _pc_is(u, x, i, "Idle"), x["tlb"](i, p) == u.frame0, x["shadow"](i, p) == u.frame0,
            x["gpt"](p) != u.frame0), _fault_post),
        PStep("invlpg", ("Vcpu", "Page"), lambda u, x, i, p: _pc_is(u, x, i, "Idle"), _invlpg_post),
        PStep("shootdown", ("Vcpu", "Page"), lambda u, x, i, p: _pc_is(u, x, i, "Idle"), _shootdown_post),
        PStep("reload_cr3", ("Vcpu",), lambda u, x, i: _pc_is(u, x, i, "Idle"), _reload_post),
        PStep("drain_one", ("Vcpu",), lambda u, x, i: z3.And(_pc_is(u, x, i, "Inv", "Reload", "Sd", "Ipi"),
                                                             z3.Not(empty(u, x, i))), _drain_post),
        PStep("finish_invlpg", ("Vcpu",), lambda u, x, i: z3.And(_pc_is(u, x, i, "Inv"), empty(u, x, i)),
              _finish_invlpg_post),
        PStep("finish_reload", ("Vcpu",), lambda u, x, i: z3.And(_pc_is(u, x, i, "Reload"), empty(u, x, i)),
              _finish_reload_post),
        PStep("send_ipis", ("Vcpu",), lambda u, x, i: z3.And(_pc_is(u, x, i, "Sd"), empty(u, x, i)),
              _send_ipis_post),
        PStep("shootdown_done", ("Vcpu",), lambda u, x, i: z3.And(
            _pc_is(u, x, i, "SdWait"), u.forall([u.Vcpu], lambda k: z3.Not(x["waiting"](i, k)))), _done_post),
        PStep("take_ipi", ("Vcpu", "Vcpu"), lambda u, x, k, i: z3.And(
            x["ipi"](k, i), _pc_is(u, x, k, "Idle", "SdWait")), _take_post),
        # ack_ipi(k): the initiator i is the existential parameter with cur[k] = some(i)
        PStep("ack_ipi", ("Vcpu", "Vcpu"), lambda u, x, k, i: z3.And(
            _pc_is(u, x, k, "Ipi"), empty(u, x, k), x["cur"](k) == u.some(i)), _ack_post),
    )


def sort_of(u: Universe, name: str) -> Any:
    return {"Vcpu": u.Vcpu, "Page": u.Page, "Frame": u.Frame}[name]


def init(u: Universe) -> State:
    f0, p0 = u.frame0, u.page0
    x: State = {"gpt": lambda p: f0, "shadow": lambda k, p: f0, "tlb": lambda k, p: f0, "qlen": lambda i: u.L[0],
                "pc": lambda i: u.pc["Idle"], "pg": lambda i: p0, "ipi": lambda k, i: z3.BoolVal(False),
                "cur": lambda k: u.none, "waitret": lambda k: z3.BoolVal(False),
                "waiting": lambda i, k: z3.BoolVal(False), "lw": lambda p: u.none,
                "req": lambda k, p: z3.BoolVal(False), "covers": lambda i: z3.BoolVal(False)}
    for s in range(u.Q):
        x[f"q{s}"] = lambda i: p0
    return x


def equal_states(u: Universe, x: State, y: State) -> Any:
    """``forall args: x.v(args) == y.v(args)`` for every variable v."""
    return z3.And([u.forall(args, lambda *a, n=name: x[n](*a) == y[n](*a))
                   for name, (args, _) in u.signature().items()])


def trans(u: Universe, x: State, y: State) -> Any:
    """The transition relation: some step with some parameters, and y is its post-state."""
    out = []
    for st in steps():
        ps = [u.var(sort_of(u, s), f"{st.name}.{n}") for n, s in enumerate(st.params)]
        out.append(z3.And(st.guard(u, x, *ps), equal_states(u, st.post(u, x, *ps), y)))
    return z3.Or(out)


# ---- the 13 lemmas of model/invariant.py, quantified -------------------------------------------
@dataclass(frozen=True)
class PLemma:
    name: str  # the same name as in model/invariant.py
    params: tuple[tuple[str, str], ...]  # (name, sort name)
    body: Callable[..., Any]  # (u, x, *params) -> Bool
    formula: str  # the quantified formula, for display

    def term(self, u: Universe, x: State) -> Any:
        return u.forall([sort_of(u, s) for _, s in self.params], lambda *a: self.body(u, x, *a))


def _lemmas() -> tuple[PLemma, ...]:
    V, P = "Vcpu", "Page"
    I, K, Pp = ("i", V), ("k", V), ("p", P)

    def nst(u: Universe, x: State, k: Any, p: Any) -> Any:
        g = x["gpt"](p)
        fresh = z3.And(z3.Or(x["tlb"](k, p) == u.frame0, x["tlb"](k, p) == g),
                       z3.Or(x["shadow"](k, p) == u.frame0, x["shadow"](k, p) == g))
        return z3.Or(z3.Not(x["req"](k, p)), fresh)

    return (
        PLemma("queue slots past the length are 0", (I,),
               lambda u, x, i: z3.And([z3.Or(u.gt(x["qlen"](i), s), x[f"q{s}"](i) == u.page0) for s in range(u.Q)]),
               "forall i: forall s < Q: qlen(i) > s or q_s(i) = page0"),
        PLemma("cur[k] names a VCPU exactly when pc[k] is Ipi", (K,),
               lambda u, x, k: (x["pc"](k) == u.pc["Ipi"]) == u.is_some(x["cur"](k)),
               "forall k: pc(k) = Ipi <-> is_some(cur(k))"),
        PLemma("waitret[k] implies pc[k] is Ipi", (K,),
               lambda u, x, k: z3.Implies(x["waitret"](k), x["pc"](k) == u.pc["Ipi"]),
               "forall k: waitret(k) -> pc(k) = Ipi"),
        PLemma("no VCPU has an IPI from itself pending or waits for itself", (I,),
               lambda u, x, i: z3.And(z3.Not(x["ipi"](i, i)), z3.Not(x["waiting"](i, i))),
               "forall i: !ipi(i,i) and !waiting(i,i)"),
        PLemma("ipi[k][i] pending implies waiting[i][k]", (K, I),
               lambda u, x, k, i: z3.Implies(x["ipi"](k, i), x["waiting"](i, k)),
               "forall k,i: ipi(k,i) -> waiting(i,k)"),
        PLemma("k handling i's IPI implies waiting[i][k] and no second IPI from i pending at k", (K, I),
               lambda u, x, k, i: z3.Implies(z3.And(x["pc"](k) == u.pc["Ipi"], x["cur"](k) == u.some(i)),
                                             z3.And(x["waiting"](i, k), z3.Not(x["ipi"](k, i)))),
               "forall k,i: pc(k) = Ipi and cur(k) = some(i) -> waiting(i,k) and !ipi(k,i)"),
        PLemma("waiting[i][k] implies i has sent its IPIs (SdWait, or Ipi with waitret)", (I, K),
               lambda u, x, i, k: z3.Implies(x["waiting"](i, k), after_send(u, x, i)),
               "forall i,k: waiting(i,k) -> pc(i) = SdWait or (pc(i) = Ipi and waitret(i))"),
        PLemma("covers[i] implies i runs a shootdown of a page i wrote last", (I,),
               lambda u, x, i: z3.Implies(x["covers"](i), z3.And(in_shootdown(u, x, i),
                                                                  x["lw"](x["pg"](i)) == u.some(i))),
               "forall i: covers(i) -> in_shootdown(i) and lw(pg(i)) = some(i)"),
        PLemma("covers[i] after sending implies pg[i] has no notice in i's queue", (I,),
               lambda u, x, i: z3.Implies(z3.And(x["covers"](i), after_send(u, x, i)),
                                          z3.Not(queued(u, x, i, x["pg"](i)))),
               "forall i: covers(i) and after_send(i) -> !queued(i, pg(i))"),
        PLemma("covers[i] after sending and k acked (not waiting[i][k]) implies req[k][pg[i]]", (I, K),
               lambda u, x, i, k: z3.Implies(z3.And(x["covers"](i), after_send(u, x, i), z3.Not(x["waiting"](i, k))),
                                             x["req"](k, x["pg"](i))),
               "forall i,k: covers(i) and after_send(i) and !waiting(i,k) -> req(k, pg(i))"),
        PLemma("shadow[k][p] not 0 and not gpt[p] implies the last writer of p has p queued", (K, Pp),
               lambda u, x, k, p: z3.Or(x["shadow"](k, p) == u.frame0, x["shadow"](k, p) == x["gpt"](p),
                                        last_writer_has(u, x, p, True)),
               "forall k,p: shadow(k,p) in {frame0, gpt(p)} or (is_some(lw(p)) and queued(val(lw(p)), p))"),
        PLemma("req[k][p] implies p has a last writer and its queue holds no notice of p", (K, Pp),
               lambda u, x, k, p: z3.Implies(x["req"](k, p), last_writer_has(u, x, p, False)),
               "forall k,p: req(k,p) -> is_some(lw(p)) and !queued(val(lw(p)), p)"),
        PLemma("req[k][p] implies tlb[k][p] and shadow[k][p] are 0 or gpt[p] (no_stale_translation)", (K, Pp),
               nst, "forall k,p: req(k,p) -> tlb(k,p) in {frame0, gpt(p)} and shadow(k,p) in {frame0, gpt(p)}"),
    )


LEMMAS: tuple[PLemma, ...] = _lemmas()
QUEUED = "queued(j, p) := OR_{s<Q} (qlen(j) > s and q_s(j) = p)"
DEFINITIONS = (QUEUED, "after_send(i) := pc(i) = SdWait or (pc(i) = Ipi and waitret(i))",
               "in_shootdown(i) := pc(i) in {Sd, SdWait} or after_send(i)")


def no_stale_translation(u: Universe, x: State) -> Any:
    """The property, restated from PROTOCOL.md."""
    return LEMMAS[-1].term(u, x)


def invariant(u: Universe, x: State) -> list[Any]:
    return [lem.term(u, x) for lem in LEMMAS]


# ---- the proof -----------------------------------------------------------------------------------
@dataclass
class Obligation:
    name: str
    status: str  # proved | cti | unknown
    elapsed_s: float
    reason: str = ""
    broken: list[str] = field(default_factory=list)
    model: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"obligation": self.name, "status": self.status, "elapsed_s": round(self.elapsed_s, 3),
                "reason": self.reason or None, "broken": self.broken or None, "model": self.model or None}


@dataclass
class ParametricResult:
    queue: int
    obligations: list[Obligation]
    elapsed_s: float

    @property
    def status(self) -> str:
        st = {o.status for o in self.obligations}
        return "cti" if "cti" in st else "unknown" if "unknown" in st else "proved"

    @property
    def exit_code(self) -> int:
        return {"proved": 0, "cti": 1, "unknown": 3}[self.status]


def _solver(timeout: float | None) -> z3.Solver:
    s = z3.Solver()
    s.set("smt.mbqi", True)
    if timeout is not None:
        s.set("timeout", max(1, int(timeout * 1000)))
    return s


def _show_model(m: z3.ModelRef) -> str:
    return "; ".join(f"{d.name()} = {m[d]}" for d in sorted(m.decls(), key=lambda d: d.name())
                     if d.name().startswith("x.") or "!" in d.name())[:4000]


SEEDS = (0, 1, 2, 3, 4, 5)


def _query(facts: list[Any], goal: Any, timeout: float | None) -> tuple[Any, Any]:
    """Is ``facts & !goal`` satisfiable? MBQI's answer time varies a lot with Z3's random
    seed, so an unknown is retried with the next seed (each try gets ``timeout``/len(SEEDS));
    unsat and sat are answers whatever the seed. Returns (result, solver)."""
    each = None if timeout is None else max(0.5, timeout / len(SEEDS))
    s = None
    for seed in SEEDS:
        s = _solver(each)
        s.set("random_seed", seed)
        s.add(*facts, z3.Not(goal))
        r = s.check()
        if r != z3.unknown:
            return r, s
    return z3.unknown, s


def _check(name: str, facts: list[Any], goals: list[tuple[str, Any]], timeout: float | None) -> Obligation:
    """``facts & !goal`` for each goal (one query per lemma: MBQI answers these quickly, while
    the disjunction of all negated lemmas can time out). All unsat = proved; a sat one is a
    CTI naming the broken lemma; otherwise unknown with Z3's reasons."""
    start = time.monotonic()
    reasons: list[str] = []
    for label, goal in goals:
        r, s = _query(facts, goal, timeout)
        if r == z3.sat:
            return Obligation(name, "cti", time.monotonic() - start, broken=[label], model=_show_model(s.model()))
        if r == z3.unknown:
            reasons.append(f"{label}: {s.reason_unknown()}")
    el = time.monotonic() - start
    if reasons:
        return Obligation(name, "unknown", el, reason="; ".join(reasons))
    return Obligation(name, "proved", el)


def prove(queue: int, timeout: float | None = 90.0,
          note: Callable[[str], None] | None = None) -> ParametricResult:
    """Initiation, consecution per step, and safety, over uninterpreted Vcpu/Page/Frame sorts.

    ``timeout`` bounds each lemma's query (all seeds together)."""
    start = time.monotonic()
    u = Universe(queue)
    x = u.state("x")
    inv_x = invariant(u, x)
    names = [lem.name for lem in LEMMAS]
    out = [_check("initiation", [], list(zip(names, invariant(u, init(u)))), timeout)]
    for st in steps():
        if note:
            note(f"parametric consecution: {st.name}")
        ps = [u.var(sort_of(u, s), f"{st.name}.{n}") for n, s in enumerate(st.params)]
        out.append(_check(f"consecution {st.name}", inv_x + [st.guard(u, x, *ps)],
                          list(zip(names, invariant(u, st.post(u, x, *ps)))), timeout))
    out.append(_check("safety (Inv implies no_stale_translation)", inv_x,
                      [("no_stale_translation", no_stale_translation(u, x))], timeout))
    return ParametricResult(queue, out, time.monotonic() - start)


# ---- finite instances: the bridge to deferral.model.concrete (used by the agreement tests) ------
def _candidates(u: Universe, slot: Any, n_vcpus: int) -> list[Any]:
    """The Z3 value of each stored integer 0..size-1 of a layout slot."""
    dom = slot.var.domain.name
    if dom == "notice":
        dom = "page"  # at one address space (the only one encoded here) a notice is its page
    if slot.part == "len":
        return list(u.L)
    if dom == "bool":
        return [z3.BoolVal(False), z3.BoolVal(True)]
    if dom == "pc":
        return [u.pc[n] for n in PC_NAMES]
    if dom == "vcpu-or-none":
        return [u.some(v) for v in u.elems["Vcpu"]] + [u.none]
    return list(u.elems[{"frame": "Frame", "page": "Page", "vcpu": "Vcpu"}[dom]])


def slot_term(u: Universe, x: State, slot: Any) -> Any:
    """The term of ``x`` that a layout slot stores."""
    kept = [n for n, d in enumerate(slot.var.index) if not getattr(d, "elided", False)]  # one space: no index
    args = [(u.elems["Vcpu"] if slot.var.index[n].name == "vcpu" else u.elems["Page"])[slot.index[n]] for n in kept]
    name = slot.var.name
    if name == "queue":
        name = "qlen" if slot.part == "len" else f"q{slot.part}"
    return x[name](*args)


class Bridge:
    """Concrete states of a finite ``Model`` as values of the parametric state functions."""

    def __init__(self, u: Universe, layout: Any) -> None:
        assert u.finite is not None
        self.u, self.layout = u, layout
        self.cands = [_candidates(u, slot, layout.bounds.vcpus) for slot in layout.slots]

    def equalities(self, x: State, state: Sequence[int]) -> list[Any]:
        return [slot_term(self.u, x, slot) == self.cands[j][v] for j, (slot, v) in enumerate(zip(self.layout.slots, state))]

    def read(self, m: z3.ModelRef, y: State) -> tuple[int, ...]:
        out = []
        for j, slot in enumerate(self.layout.slots):
            val = m.eval(slot_term(self.u, y, slot), model_completion=True)
            out.append(next(n for n, c in enumerate(self.cands[j]) if z3.eq(val, c)))
        return tuple(out)


def successors(u: Universe, bridge: Bridge, solver: z3.Solver, x: State, y: State,
               state: Sequence[int]) -> set[tuple[int, ...]]:
    """Every post-state the parametric relation allows from ``state`` (``solver`` holds
    ``trans(x, y)``), enumerated with blocking clauses."""
    found: set[tuple[int, ...]] = set()
    solver.push()
    solver.add(*bridge.equalities(x, state))
    while solver.check() == z3.sat:
        post = bridge.read(solver.model(), y)
        found.add(post)
        solver.add(z3.Not(z3.And(bridge.equalities(y, post))))
    solver.pop()
    return found
