"""PDR/IC3 with Z3's Spacer: find an inductive invariant without being given one.

The system is the constrained Horn clauses ``Init(x) -> R(x)`` and
``R(x) & T(x, y) -> R(y)`` (the whole transition relation as ONE rule), queried with
``R(x) & (!P(x) | some step fails in x)`` (a read naming no element, a write outside a domain:
:mod:`deferral.checks.symbolic.failures`; the encoding would give such a read some value). unsat:
P holds, no step fails, and Spacer's solution for ``R`` is an inductive invariant (returned as
readable clauses); sat: a reachable failing step is bad input (found by
:func:`~deferral.checks.symbolic.failures.find_failure`), else P is violated, and a shortest
counterexample is then found by :func:`deferral.checks.symbolic.bmc.bmc` (Spacer's own
derivation is not necessarily shortest).

Encodings (``encoding=``), measured in benchmarks/PROVE.md:

* ``"bv"`` (default, the fastest measured here: 33 s of CPU for the reference at
  N=2,V=1,F=1,Q=1): one small bit-vector per slot (Bools for bool slots) and an
  action-selector bit-vector.
* ``"onehot"`` (what ``prove --method auto`` infers lemmas with, because its invariant
  generalizes): every non-bool slot becomes one Bool per value (``pc[0]=Sd``), with an
  exactly-one constraint in the rule body; bool slots stay Bools. ``T`` is a
  disjunction over step instances (no action-selector variable), each case defining
  every next-state atom as ``y_{j,v} = (new_j == v)``. The step functions still compute
  on the :class:`~deferral.checks.terms.encoding.Encoding`'s bit-vectors: the current state is
  decoded from its atoms, so the protocol is not restated. Spacer's invariant is then a
  propositional formula over atoms ``slot=value``, which
  :mod:`deferral.checks.symbolic.generalize` turns into lemma families.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import z3

from deferral.checks.symbolic.bmc import BmcResult, bmc
from deferral.checks.symbolic.failures import failure_conditions, find_failure
from deferral.checks.terms.encoding import Encoding, Renaming, _is_bool_slot

ENCODINGS = ("onehot", "bv")


@dataclass
class PdrResult:
    status: str  # proved | violated | unknown
    elapsed_s: float
    clauses: list[str] = field(default_factory=list)  # the invariant, one conjunct per line
    smt2: str = ""  # the invariant as an SMT-LIB term over the slot names
    trace: BmcResult | None = None
    reason: str = ""
    invariant: Any = None  # the z3 term (over the "x" atoms of the encoding used)
    atoms: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # onehot: atom name -> (slot, value)


def _readable(term: Any) -> str:
    return str(term).replace("@x", "").replace("|", "")


@dataclass
class OneHot:
    """One-hot state variables over an encoding: per slot a Bool (bool slot) or one Bool per value."""

    enc: Encoding

    def atoms(self, tag: str) -> list[list[Any]]:
        out = []
        for s in self.enc.layout.slots:
            if _is_bool_slot(s):
                out.append([z3.Bool(f"{s.label()}@{tag}")])
            else:
                out.append([z3.Bool(f"{s.label()}={self.shown(s, v)}@{tag}") for v in range(s.size)])
        return out

    def shown(self, slot: Any, value: int) -> str:
        shown = slot.var.domain.show(value, self.enc.bounds) if slot.part != "len" else value
        return "none" if shown is None else str(shown)

    def flat(self, atoms: Sequence[Sequence[Any]]) -> list[Any]:
        return [a for group in atoms for a in group]

    def names(self, atoms: Sequence[Sequence[Any]]) -> dict[str, tuple[int, int | None]]:
        out: dict[str, tuple[int, int | None]] = {}
        for j, group in enumerate(atoms):
            if len(group) == 1 and _is_bool_slot(self.enc.layout.slots[j]):
                out[group[0].decl().name()] = (j, None)
            else:
                for v, a in enumerate(group):
                    out[a.decl().name()] = (j, v)
        return out

    def decode(self, atoms: Sequence[Sequence[Any]]) -> list[Any]:
        """The slot values (narrow bit-vectors / Bools) the atoms stand for."""
        out = []
        for s, group in zip(self.enc.layout.slots, atoms):
            if _is_bool_slot(s):
                out.append(group[0])
                continue
            term: Any = z3.BitVecVal(s.size - 1, s.bits)
            for v in range(s.size - 2, -1, -1):
                term = z3.If(group[v], z3.BitVecVal(v, s.bits), term)
            out.append(term)
        return out

    def exactly_one(self, atoms: Sequence[Sequence[Any]]) -> Any:
        """Every multi-valued slot has exactly one true atom (implied for reachable states; it
        helps Spacer: measured 87 s of CPU with it against 220 s without at N=2,V=1,F=1,Q=1)."""
        return z3.And([z3.PbEq([(a, 1) for a in group], 1) for group in atoms if len(group) > 1])

    def init(self, atoms: Sequence[Sequence[Any]]) -> Any:
        terms = []
        for s, group, v0 in zip(self.enc.layout.slots, atoms, self.enc.layout.initial):
            if _is_bool_slot(s):
                terms.append(group[0] == bool(v0))
            else:
                terms += [a if v == v0 else z3.Not(a) for v, a in enumerate(group)]
        return z3.And(terms)

    def trans(self, xa: Sequence[Sequence[Any]], ya: Sequence[Sequence[Any]]) -> Any:
        """Disjunction over step instances; each defines every next atom from the new values."""
        enc = self.enc
        xd = self.decode(xa)
        cases = []
        for t in enc.action_terms(xd):
            eqs = [t.guard]
            for j, (s, group) in enumerate(zip(enc.layout.slots, ya)):
                if j not in t.updates:
                    eqs += [y == x for y, x in zip(group, xa[j])]
                    continue
                new = t.updates[j]
                if _is_bool_slot(s):
                    eqs.append(group[0] == new)
                else:
                    eqs += [y == (new == v) for v, y in enumerate(group)]
                    eqs.append(z3.ULT(new, s.size))  # a value outside the domain is not a transition
            cases.append(z3.And(eqs))
        return z3.Or(cases)


def _fixedpoint(timeout: float | None, params: dict[str, Any] | None) -> Any:
    fp = z3.Fixedpoint()
    fp.set(engine="spacer")
    settings = {"xform.inline_eager": False, "xform.inline_linear": False, "xform.slice": False}
    settings.update(params or {})
    for key, value in settings.items():
        fp.set(key, value)
    if timeout is not None:
        fp.set("timeout", max(1, int(timeout * 1000)))
    return fp


def pdr(enc: Encoding, *, timeout: float | None = None, encoding: str = "bv",
        params: dict[str, Any] | None = None) -> PdrResult:
    """Prove the invariant properties of ``enc``'s protocol with Spacer, or refute them."""
    if encoding not in ENCODINGS:
        raise ValueError(f"unknown pdr encoding {encoding!r}")
    start = time.monotonic()
    fp = _fixedpoint(timeout, params)
    atoms: dict[str, tuple[int, int | None]] = {}
    if encoding == "onehot":
        oh = OneHot(enc)
        xa, ya = oh.atoms("x"), oh.atoms("y")
        xs = oh.flat(xa)
        reach = z3.Function("Reach", *[z3.BoolSort()] * len(xs), z3.BoolSort())
        fp.register_relation(reach)
        fp.declare_var(*xs, *oh.flat(ya))
        fp.rule(reach(*xs), oh.init(xa))
        fp.rule(reach(*oh.flat(ya)), [reach(*xs), oh.exactly_one(xa), oh.trans(xa, ya)])
        bad = z3.Or(z3.Not(enc.invariants(oh.decode(xa))), failing(enc, oh.decode(xa)))
        query = z3.And(reach(*xs), bad)
        atoms = oh.names(xa)
    else:
        xs, ys, act = enc.state("x"), enc.state("y"), enc.selector("x")
        reach = z3.Function("Reach", *[enc.sort(s) for s in enc.layout.slots], z3.BoolSort())
        fp.register_relation(reach)
        fp.declare_var(*xs, *ys, act)
        fp.rule(reach(*xs), enc.init(xs))
        fp.rule(reach(*ys), [reach(*xs), enc.trans(xs, ys, act)])
        query = z3.And(reach(*xs), enc.valid(xs), z3.Or(z3.Not(enc.invariants(xs)), failing(enc, xs)))
    try:
        r = fp.query(query)
    except z3.Z3Exception as exc:  # canceled by the timeout
        return PdrResult("unknown", time.monotonic() - start, reason=z3_text(exc))
    if r == z3.unknown:
        return PdrResult("unknown", time.monotonic() - start, reason=fp.reason_unknown())
    if r == z3.sat:
        left = None if timeout is None else max(1.0, timeout - (time.monotonic() - start))
        if failure_conditions(enc):  # a reachable failing step: bad input (ReachedFailure), else a violation
            find_failure(enc, 200, timeout=left)
            left = None if timeout is None else max(1.0, timeout - (time.monotonic() - start))
        found = bmc(enc, 200, timeout=left)
        return PdrResult("violated", time.monotonic() - start, trace=found)
    inv = fp.get_cover_delta(-1, reach)
    inv = z3.simplify(z3.substitute_vars(inv, *xs))
    conjuncts = list(inv.children()) if z3.is_and(inv) else [inv]
    clauses = sorted((_readable(c) for c in conjuncts), key=lambda c: (len(c), c))
    return PdrResult("proved", time.monotonic() - start, clauses, _readable(inv.sexpr()), invariant=inv,
                     atoms=atoms)


def failing(enc: Encoding, xs: Sequence[Any]) -> Any:
    """Where some step or property fails over ``xs`` (checks/symbolic/failures.py): bad states too, so
    Spacer's invariant rules out every failing step (the encoding gives such a read some value)."""
    conditions = [f.condition for f in failure_conditions(enc)]
    return Renaming(enc._base_vars, list(xs))(z3.Or(conditions)) if conditions else z3.BoolVal(False)


def z3_text(exc: z3.Z3Exception) -> str:
    """Z3's message as text (``str`` of the exception is the repr of bytes, ``b'canceled'``)."""
    value = getattr(exc, "value", exc)
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
