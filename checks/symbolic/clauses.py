"""Candidate lemma families enumerated over every declared sort of the protocol (DistAI style), no hand-written lemma needed.

Where :mod:`deferral.checks.symbolic.strengthen` enumerates clauses over the parameters of a
shipped lemma that a change broke, this module enumerates them over **signatures** built from
the protocol's declared index sorts alone (:func:`signatures`: one variable of each sort, two
of the sort most variables are indexed by, at most :data:`MAX_OPEN` variables of sorts that
are not elided; where an elided sort has more than one element, each also without it), so a protocol, a variant or a user's change gets candidates with no lemma
written for it. The literals (:func:`vocabulary`) are strengthen's (the declared variables
read at the parameters and at sort-valued reads of them, enum values, equalities, frames "0 or
the guest's") and two more kinds of the declared vocabulary: "x is none" for a sort-or-none
read, and "queue[x] holds (y, z)" for a queue variable read at a sort-valued expression (its
items built from expressions of the item's sorts, e.g. "queue[lw[t][p]] holds (t, p)").

The samples are reachable states drawn at random from each instance's first ``SPREAD * cap`` (the
smallest instance's whole reachable set where it has fewer), not its first levels. A signature's
enumerated clauses are built from at most :data:`POOL` of its literals, every declared variable's
in turn (:func:`pool`). A candidate is a disjunction of 1 to :data:`MAX_LITERALS` literals true, for every parameter
assignment, in every sampled reachable state, and minimal (no sub-disjunction is; strengthen's
:func:`enumerate_clauses`); a family that leaves out a variable of a signature that is also there
without it is left to that one. Where no enumerated family rules out a counterexample to induction,
the shortest clauses of any kept literal (pooled or not, up to :data:`MAX_COVER`) true in the samples
and false in it (:meth:`Signature.diagrams`, an exact hitting set by Z3: the diagram generalization of
IC3PO and UPDR against the samples; the signatures of fewest variables first, none wider once one rules
it out), then clauses of four pooled literals (:meth:`Signature.excluding`)
and greedy covers (:meth:`Signature.covering`). One family stands for all its instances (the
parameters range over every element of their sorts). :func:`learn` chooses among them by Houdini and
counterexamples to induction at growing bounds (:func:`learn_at`), the first stage starting from
every family of at most :data:`FIRST_LITERALS` literals, keeping what the properties' consecution
needs (unsat cores); where the second stage does not settle from the first one's fixpoint, the first stage is
drawn again under another Z3 seed and the second starts again from the union of the fixpoints (:func:`_from_draws`).
Where learners learn at once, each under its own seed, they exchange their fixpoints, and each builds only its share
of the signatures' truth tables, taking the others' from the other learners
(:mod:`~deferral.checks.symbolic.clauses_split`); where 3,2,2 settles neither from a learner's 2,1,1 fixpoint nor
from the union with the others', it learns at 3,1,1 from that union first (:func:`ladder`). (Every other learner
may start at 3,1,1 instead: :data:`SPLIT_FIRST_STAGE`, off.)

Nothing here is trusted: the candidates only go to Houdini and induction (bounded, or over
uninterpreted sorts by ``--parametric``), which decide.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from itertools import product
from typing import TYPE_CHECKING, Any, Callable, Mapping, Protocol as Interface, Sequence

import numpy as np

from deferral.checks.symbolic.strengthen import clause, enumerate_clauses, vocabulary as base_vocabulary
from deferral.checks.symbolic.truth import TruthTables
from deferral.checks.symbolic.vocabulary import (Literal, bit_masks, column_masks, distinct_columns, index_terms, negation,
                                                 truth_table)
from deferral.model.bounds import Bounds
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol
from deferral.model.schema import Domain, Pair, Queue, Sort

if TYPE_CHECKING:
    from deferral.checks.symbolic.forward import Forward

#: Variables of sorts that are not elided, per signature; literals per clause.
MAX_OPEN, MAX_LITERALS = 2, 3
#: Literals a signature's clauses are built from, at most (those splitting the sample most evenly first).
POOL = 120
#: Families kept per signature, at most (the simplest first).
PER_SIGNATURE = 2000
#: Literals of a clause found by :meth:`Signature.covering`, at most; clauses per parameter assignment.
MAX_COVER, ALTERNATIVES = 8, 2
#: Greedy covers tried per parameter assignment, at most (each without the last one's widest literal).
ATTEMPTS = 8
#: Sampled columns :meth:`Signature.diagrams` adds to its hitting-set problem per candidate that misses some:
#: of the first ``WINDOW`` the candidate leaves uncovered, the ``COLUMNS_PER_ASK`` fewest of its literals are true
#: in (the most constraining: 24% less CPU than the first 16, PROVE.md, 5 Dec, afternoon).
COLUMNS_PER_ASK, WINDOW = 32, 256
#: A counterexample that a diagram over fewer variables rules out gets none over more (:func:`_exclude`): the
#: signature (t, i, k) was 86% of the diagrams' CPU at 2,1,1,1,S=2, and its clauses restate narrower ones.
FEWEST_FIRST = True

NAMES = {"vcpu": ("i", "k"), "page": ("p", "q"), "space": ("t", "u")}


@dataclass(frozen=True)
class Clause(Lemma):
    """An enumerated family: its literals' texts kept, so that a file can name it (:func:`entry`)."""

    texts: tuple[str, ...] = ()


def make(params: Sequence[tuple[str, Domain]], lits: Sequence[Literal]) -> Clause:
    lem = clause(params, lits)
    return Clause(lem.name, lem.params, lem.fn, texts=tuple(x.text for x in lits))


def entry(lem: Clause) -> dict[str, Any]:
    """How a file names ``lem``: its variables (name and sort) and its literals' texts."""
    return {"vars": [[n, d.name] for n, d in lem.params], "or": list(lem.texts)}


def from_entry(doc: Any, protocol: Protocol, b: Bounds) -> Clause:
    """The family an :func:`entry` names, rebuilt from the protocol's vocabulary at ``b`` (ValueError: one line)."""
    return from_entries([doc], protocol, b)[0]


def from_entries(docs: Sequence[Any], protocol: Protocol, b: Bounds,
                 vocabularies: dict[Any, dict[str, Literal]] | None = None) -> list[Clause]:
    """:func:`from_entry` of each of ``docs``, each parameter list's vocabulary built once (kept in
    ``vocabularies`` where given, for the next call)."""
    sorts = {s.name: s for s in index_sorts(protocol)}
    known = {} if vocabularies is None else vocabularies
    out = []
    for doc in docs:
        pairs, texts = doc.get("vars"), doc.get("or")
        if not isinstance(pairs, list) or not isinstance(texts, list) or not texts or not all(
                isinstance(x, list) and len(x) == 2 and str(x[1]) in sorts for x in pairs):
            raise ValueError(f"a family must have 'vars' ([name, sort] of {protocol.name}'s sorts) and 'or' "
                             "(literal texts)")
        params = tuple((str(n), sorts[str(srt)]) for n, srt in pairs)
        key = (tuple((n, d.name) for n, d in params), b)
        if key not in known:
            known[key] = {x.text: x for x in vocabulary(protocol, params, b)}
        vocab = known[key]
        missing = [t for t in texts if t not in vocab]
        if missing:
            raise ValueError(f"{missing[0]!r} is not a literal of {protocol.name}'s vocabulary over "
                             f"{', '.join(n for n, _ in params)} at {b.short()}")
        out.append(make(params, [vocab[t] for t in texts]))
    return out


def index_sorts(protocol: Protocol) -> list[Sort]:
    """The protocol's index sorts, in the order its variables first use them."""
    out: list[Sort] = []
    for var in protocol.variables:
        for d in var.index:
            if isinstance(d, Sort) and d not in out:
                out.append(d)
    return out


def busiest(protocol: Protocol) -> Sort | None:
    sorts = [s for s in index_sorts(protocol) if not s.elided]
    return max(sorts, key=lambda s: sum(s in v.index for v in protocol.variables)) if sorts else None


def signatures(protocol: Protocol, b: Bounds) -> list[tuple[tuple[str, Domain], ...]]:
    """Every parameter list of at most :data:`MAX_OPEN` variables of non-elided sorts (at most two of
    the busiest sort, one of each other), each with one variable of every elided sort (at one element
    an index that is always 0), and where an elided sort has more elements at ``b``, each also
    without it; the smallest first."""
    sorts = index_sorts(protocol)
    top = busiest(protocol)
    fixed = [s for s in sorts if s.elided]
    open_ = [s for s in sorts if not s.elided]
    out = []
    # an elided sort with more than one element at ``b`` (two spaces): with its variable and without
    # (a fact of the VCPUs alone, e.g. "ipi[k][i] implies waiting[i][k]", then has a signature whose
    # literals all fit the pool: with the space's reads beside them they did not, PROVE.md, 5 Dec)
    for elided in product(*[(1, 0) if not s.single(b) else (1,) for s in fixed]):
        for counts in product(*[range(3 if s is top else 2) for s in open_]):
            if not 0 < sum(counts) <= MAX_OPEN or (top in open_ and counts[open_.index(top)] == 0):
                continue
            params: list[tuple[str, Domain]] = []
            for s in sorts:
                n = elided[fixed.index(s)] if s in fixed else counts[open_.index(s)]
                names = NAMES.get(s.name, tuple(f"{s.name[0]}{m}" for m in range(1, 3)))
                params += [(names[m], s) for m in range(n)]
            out.append(tuple(params))
    out.sort(key=len)
    return out


def _holds_fn(var: Queue, q: Any, items: Sequence[Any]) -> Any:
    def fn(s: Any, *a: Any) -> Any:
        parts = [f(s, *a) for f in items]
        notice = var.domain.make(s, *parts) if isinstance(var.domain, Pair) else parts[0]
        owner = q(s, *a)

        def held(j: Any) -> Any:
            queue = getattr(s, var.name)[j]
            return s.any((queue.length > pos) & (queue[pos] == notice) for pos in range(queue.capacity))
        return s.any((owner == j) & held(j) for j in s.each(var.index[0]))
    return fn


def vocabulary(protocol: Protocol, params: Sequence[tuple[str, Domain]], b: Bounds) -> list[Literal]:
    """strengthen's literals over ``params``, "x is none" and "queue[x] holds (...)" (module docstring)."""
    out = list(base_vocabulary(protocol, params, b))
    exprs = index_terms(protocol, params, b)
    for e in exprs:
        if e.none_of:
            none = (lambda f, srt: lambda s, *a: f(s, *a) == s.none(srt))(e.fn, e.sort)
            out.append(Literal(f"{e.text} is none", none, e.depth))
            out.append(Literal(f"{e.text} is not none", negation(none), e.depth))
    for var in protocol.variables:
        if not isinstance(var, Queue) or not var.held(b) or len(var.index) != 1:
            continue
        parts = [var.domain.first, var.domain.second] if isinstance(var.domain, Pair) else [var.domain]
        if not all(isinstance(x, Sort) for x in parts):
            continue
        owners = [e for e in exprs if e.sort is var.index[0]]
        choices = [[e for e in exprs if e.sort is x and not e.none_of] for x in parts]
        for owner in owners:
            for items in product(*choices):
                if owner.depth + sum(e.depth for e in items) > 2:
                    continue
                text = ", ".join(e.text for e in items if not (isinstance(e.sort, Sort) and e.sort.single(b)))
                text = f"({text})" if text.count(",") else text
                fn = _holds_fn(var, owner.fn, [e.fn for e in items])
                cost = owner.depth + sum(e.depth for e in items)
                out.append(Literal(f"{var.name}[{owner.text}] holds {text}", fn, cost))
                out.append(Literal(f"not {var.name}[{owner.text}] holds {text}", negation(fn), cost))
    seen: set[str] = set()
    uniq = []
    for lit in out:
        if lit.text not in seen:
            seen.add(lit.text)
            uniq.append(lit)
    return uniq


def head(text: str) -> str:
    """The declared variable (or keyword) a literal's text reads first: "waiting" for "not waiting[i][k]"."""
    word = text.removeprefix("not ").split("[", 1)[0].split(" ", 1)[0]
    return word


def pool(texts: Sequence[str], balance: np.ndarray, places: Sequence[int], size: int = POOL) -> list[int]:
    """At most ``size`` of ``places`` (literals with those ``texts``): each declared variable's literals in
    turn, the most balanced of each first, so that every variable has literals in the pool (the most
    balanced alone left out every literal of ipi and waiting at two spaces: their reads of the space
    outnumber them; PROVE.md, 5 Dec)."""
    order = np.argsort(balance, kind="stable")
    groups: dict[str, list[int]] = {}
    for j in order:
        groups.setdefault(head(texts[j]), []).append(int(j))
    chosen: list[int] = []
    queues = list(groups.values())
    while len(chosen) < size and any(queues):
        for q in queues:
            if q and len(chosen) < size:
                chosen.append(q.pop(0))
    return sorted(places[j] for j in chosen)


class Signature:
    """One parameter list's literals and their truth over the sampled states (bit masks over the
    distinct columns), for :meth:`families` (1 to 3 pooled literals, every minimal one),
    :meth:`diagrams` (the shortest of every literal a counterexample to induction falsifies, exact),
    :meth:`excluding` (4 pooled literals, likewise) and :meth:`covering` (greedy, any length)."""

    def __init__(self, protocol: Protocol, params: Sequence[tuple[str, Domain]],
                 samples: Sequence[tuple[Bounds, np.ndarray]], tables: TruthTables | None = None) -> None:
        self.protocol, self.params = protocol, tuple(params)
        self.at = samples[0][0]
        self.lits = vocabulary(protocol, params, self.at)
        #: the literals' truth tables, compiled once (shared by the signatures of one enumeration)
        self.tables = tables if tables is not None else TruthTables(protocol)
        table = np.concatenate([truth_table(protocol, b, rows, [x.fn for x in self.lits], params, self.tables)
                                for b, rows in samples], axis=1)
        every, anywhere = table.all(axis=1), table.any(axis=1)
        self.always = [j for j in range(len(self.lits)) if every[j]]
        #: every literal neither always true nor always false in the samples (their places: "keep places")
        self.keep = [j for j in range(len(self.lits)) if not every[j] and anywhere[j]]
        balance = np.abs(table[self.keep].mean(axis=1) - 0.5)
        cols = distinct_columns(table[self.keep])
        del table
        #: each kept literal's truth as a bit mask over the distinct sampled columns of all of them
        self.wide, self.wide_full = bit_masks(cols)
        self._cols = cols  # (kept literals, distinct columns): :meth:`diagrams`' columns
        #: the keep places :meth:`families` and :meth:`excluding` build from (at most :data:`POOL`)
        self.pool = pool([self.lits[j].text for j in self.keep], balance, list(range(len(self.keep))))
        self.masks, self.full = column_masks(cols[self.pool])  # per pool place
        self.shown: set[str] = set()
        self.found: list[tuple[Lemma, tuple[int, ...]]] = []  # (family, its literals' keep places)
        #: every family this signature made, by name: its literals' places in ``keep + always`` (:meth:`false_in`)
        self.where: dict[str, tuple[int, ...]] = {}
        self._recent: dict[Any, np.ndarray] = {}
        #: variables a family may leave out only where another signature has it (:func:`enumerate_all` sets it)
        self.spare: frozenset[str] = frozenset()

    def parts(self) -> dict[str, Any]:
        """What another learner with the same samples needs to rebuild this signature (:meth:`rebuilt`) instead of
        computing its truth tables again: plain data (lists, ints, packed bits); its literals by their text."""
        return {"texts": [self.lits[j].text for j in self.keep + self.always], "keep": self.keep,
                "always": self.always, "cols": np.packbits(self._cols, axis=1), "ncols": self._cols.shape[1],
                "wide": self.wide, "wide_full": self.wide_full, "pool": self.pool, "masks": self.masks,
                "full": self.full}

    @classmethod
    def rebuilt(cls, protocol: Protocol, params: Sequence[tuple[str, Domain]], at: Bounds, tables: TruthTables,
                parts: Mapping[str, Any]) -> "Signature":
        """The signature another learner built from the same samples (its :meth:`parts`), with this learner's own
        literals (the vocabulary at ``at``, the first sample's bounds) and ``tables``; ValueError where its literals
        are not this vocabulary's."""
        sig = cls.__new__(cls)
        sig.protocol, sig.params, sig.at = protocol, tuple(params), at
        sig.lits = vocabulary(protocol, params, at)
        keep, always = list(parts["keep"]), list(parts["always"])
        if any(not 0 <= j < len(sig.lits) for j in keep + always) or \
                [sig.lits[j].text for j in keep + always] != list(parts["texts"]):
            raise ValueError(f"the literals of ({', '.join(n for n, _ in params)}) are not this learner's")
        sig.tables, sig.always, sig.keep = tables, always, keep
        sig._cols = np.unpackbits(parts["cols"], axis=1, count=int(parts["ncols"])).astype(bool)
        sig.wide, sig.wide_full = list(parts["wide"]), int(parts["wide_full"])
        sig.pool, sig.masks, sig.full = list(parts["pool"]), list(parts["masks"]), int(parts["full"])
        sig.shown, sig.found, sig.where, sig._recent = set(), [], {}, {}
        sig.spare = frozenset()
        return sig

    def needless(self, combo: Sequence[int]) -> bool:
        """Does the clause of keep places ``combo`` leave out a variable of :attr:`spare` (a variable the
        signature without it stands for: the family is that signature's)?"""
        return self._leaves_out(" ".join(self.lits[self.keep[j]].text for j in combo))

    def _leaves_out(self, text: str) -> bool:
        return any(not re.search(rf"\b{re.escape(n)}\b", text) for n in self.spare)

    def _lemma(self, combo: Sequence[int]) -> Lemma:
        """The family of the kept literals at keep places ``combo``."""
        lem = make(self.params, [self.lits[self.keep[j]] for j in combo])
        self.where[lem.name] = tuple(combo)
        return lem

    def truth_in(self, b: Bounds, states: Sequence[Sequence[int]]) -> np.ndarray:
        """Each literal of ``keep + always`` in each of ``states`` at every parameter assignment: shape
        (literals, assignments, states); one vectorized pass for all the states."""
        rows = np.array(states, dtype=np.int64).reshape(len(states), -1)
        fns = [self.lits[j].fn for j in self.keep + self.always]
        table = truth_table(self.protocol, b, rows, fns, self.params, self.tables)
        return table.reshape(table.shape[0], -1, len(states))

    def falsity(self, b: Bounds, rows: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """Per family of ``names`` (each one this signature made) and state of ``rows`` (at ``b``): is it false
        there at some parameter assignment? Only the literals those families use are evaluated, each once."""
        combos = [self.where[n] for n in names]
        used = sorted({j for combo in combos for j in combo})
        at = {j: n for n, j in enumerate(used)}
        every = self.keep + self.always
        table = truth_table(self.protocol, b, rows, [self.lits[every[j]].fn for j in used], self.params, self.tables)
        table = table.reshape(len(used), -1, rows.shape[0])
        return np.stack([(~table[[at[j] for j in combo]]).all(axis=0).any(axis=0) for combo in combos]) \
            if combos else np.zeros((0, rows.shape[0]), dtype=bool)

    def false_in(self, name: str, truth: np.ndarray) -> np.ndarray | None:
        """Per state of ``truth`` (:meth:`truth_in`), is family ``name`` false there at some parameter
        assignment; None for a family this signature did not make."""
        combo = self.where.get(name)
        if combo is None:
            return None
        return (~truth[list(combo)]).all(axis=0).any(axis=0)

    def families(self, deadline: float | None = None) -> list[Lemma]:
        """Every minimal clause of 1 to 3 pooled literals true in the samples (the simplest first, at most
        :data:`PER_SIGNATURE`), and each literal true in every sampled state alone."""
        found = [tuple(self.pool[j] for j in combo)
                 for combo in enumerate_clauses(self.masks, self.full, max_literals=MAX_LITERALS, deadline=deadline)]
        found = [f for f in found if not self.needless(f)]
        found.sort(key=lambda f: (len(f), sum(self.lits[self.keep[j]].cost for j in f), f))
        out: list[Lemma] = []
        for n, j in enumerate(self.always):
            if self._leaves_out(self.lits[j].text):
                continue
            out.append(make(self.params, [self.lits[j]]))
            self.where[out[-1].name] = (len(self.keep) + n,)
        for combo in found[:PER_SIGNATURE]:
            lem = self._lemma(combo)
            self.found.append((lem, tuple(combo)))
            out.append(lem)
        out = [lem for lem in out if lem.name not in self.shown]
        self.shown.update(lem.name for lem in out)
        return out

    def falsified(self, b: Bounds, state: Sequence[int]) -> list[Lemma]:
        """Of :meth:`families`' clauses, those false in ``state`` (at ``b``) for some parameter assignment."""
        if not self.found:
            return []
        truth = self._truth(b, state)
        out = []
        for lem, combo in self.found:
            if (~truth[list(combo)]).all(axis=0).any():
                out.append(lem)
        return out

    def prime(self, b: Bounds, states: Sequence[Sequence[int]]) -> None:
        """Compute :meth:`_truth` for all of ``states`` in one vectorized pass (a learning round asks for
        each of its counterexamples' truth: one pass per state cost 20 ms of Python each)."""
        todo = list(dict.fromkeys((b, tuple(int(x) for x in st)) for st in states))
        todo = [key for key in todo if key not in self._recent]
        if not todo:
            return
        rows = np.array([key[1] for key in todo], dtype=np.int64)
        table = truth_table(self.protocol, b, rows, [self.lits[j].fn for j in self.keep], self.params, self.tables)
        table = table.reshape(table.shape[0], -1, len(todo))
        for n, key in enumerate(todo):
            self._recent[key] = np.ascontiguousarray(table[:, :, n])
        while len(self._recent) > 16:
            self._recent.pop(next(iter(self._recent)))

    def _truth(self, b: Bounds, state: Sequence[int]) -> np.ndarray:
        """Each kept literal's truth in ``state`` at every parameter assignment: (literals, assignments)
        (the last few states' kept: :meth:`falsified`, :meth:`diagrams`, :meth:`excluding` and
        :meth:`covering` ask for the same one)."""
        key = (b, tuple(int(x) for x in state))
        if key not in self._recent:
            rows = np.array([state], dtype=np.int64)
            fns = [self.lits[j].fn for j in self.keep]
            self._recent[key] = truth_table(self.protocol, b, rows, fns, self.params, self.tables)
            while len(self._recent) > 16:
                self._recent.pop(next(iter(self._recent)))
        return self._recent[key]

    def diagrams(self, b: Bounds, state: Sequence[int], alternatives: int = ALTERNATIVES, width: int = MAX_COVER,
                 effort: "Effort | None" = None) -> list[Lemma]:
        """The shortest clauses (1 to ``width`` of every kept literal) true in the samples and false in
        ``state`` (at ``b``) at some parameter assignment, ``alternatives`` per assignment: the negation
        of a smallest part of the state's diagram that no sampled state has (IC3PO's and UPDR's
        generalization, here against the samples). Exact, where :meth:`covering` is greedy: a minimum
        hitting set of the sampled columns by the literals false in ``state``, found by Z3 with the
        columns added as its candidates leave them uncovered (a few dozen of the 138,000 distinct columns
        of (t, i, k) at 2,1,1,1,S=2; the most constraining of them first, :data:`COLUMNS_PER_ASK`). Each query
        is bounded by Z3's resource count (:data:`DIAGRAM_RLIMIT`, not a timeout: the same answer under any
        load) and spends that count from ``effort``; the search stops once it is spent."""
        import z3

        from deferral.checks.symbolic.relevance import _any

        truth = self._truth(b, state)
        m, full, cols = self.wide, self.wide_full, self._cols
        out: list[Lemma] = []
        for col in range(truth.shape[1]):
            cand = [int(j) for j in np.flatnonzero(~truth[:, col]) if m[j]]
            if not cand:
                continue
            union = 0
            for j in cand:
                union |= m[j]
            if union != full:
                continue  # a sampled column where every literal false in ``state`` is false: no clause
            x = [z3.Bool(f"d{j}") for j in cand]
            one, zero = z3.BitVecVal(1, 1), z3.BitVecVal(0, 1)
            bits = z3.Concat(*[z3.If(v, one, zero) for v in x]) if len(x) > 1 else z3.If(x[0], one, zero)
            s = z3.SolverFor("QF_FD")
            s.set("rlimit", DIAGRAM_RLIMIT)
            counted = rlimit_count(s)  # the context's resource count so far (Z3 counts per context)
            size: dict[int, Any] = {}
            rows = np.array(cand)
            k = 2  # one kept literal never covers every sampled column (those are ``always``)
            while k <= width and len(out) < alternatives:
                if effort is not None and effort.out:
                    return out
                if k not in size:
                    size[k] = z3.Bool(f"at_most_{k}")
                    s.add(z3.Implies(size[k], z3.AtMost(*x, k)))
                r = s.check(size[k])
                if effort is not None:
                    effort.spend(STEPS_PER_RLIMIT * (rlimit_count(s) - counted))
                    counted = rlimit_count(s)
                if r != z3.sat:
                    k += 1
                    continue
                mod = s.model()
                word = mod.eval(bits, model_completion=True).as_long()  # one evaluation (Concat: first = top bit)
                chosen = [j for n, j in enumerate(cand) if (word >> (len(cand) - 1 - n)) & 1]
                cov = 0
                for j in chosen:
                    cov |= m[j]
                gap = full & ~cov
                if gap:  # columns it leaves uncovered: each needs a chosen literal true there
                    picked = []
                    for _ in range(WINDOW):
                        if not gap:
                            break
                        low = gap & -gap
                        picked.append(low.bit_length() - 1)
                        gap ^= low
                    there = cols[np.ix_(rows, picked)]  # (candidates, picked columns)
                    order = np.argsort(there.sum(axis=0), kind="stable")[:COLUMNS_PER_ASK]  # fewest true first
                    there = there[:, order]
                    for n in range(there.shape[1]):
                        s.add(_any([x[t] for t in np.flatnonzero(there[:, n])]))
                    continue
                s.add(_any([z3.Not(v) for j, v in zip(cand, x) if j in chosen]))  # not it, nor a superset
                if self.needless(chosen):
                    continue  # another signature's family (it finds it too)
                lem = self._lemma(tuple(sorted(chosen)))
                if lem.name not in self.shown:
                    self.shown.add(lem.name)
                    out.append(lem)
            if len(out) >= alternatives:
                break
        return out

    def excluding(self, b: Bounds, state: Sequence[int], limit: int = 8, effort: "Effort | None" = None) -> list[Lemma]:
        """Minimal clauses of 4 pooled literals true in the samples and false in ``state`` (at ``b``) for
        some parameter assignment: new families that rule out that counterexample to induction (the
        search stops once ``effort`` is spent: a third or fourth literal tried is one step)."""
        truth = self._truth(b, state)[self.pool]
        m, full = self.masks, self.full
        weight = 1.0 + full.bit_length() / MASK_BITS_PER_STEP  # a literal tried costs more on wider masks
        out: list[Lemma] = []
        for col in range(truth.shape[1]):
            pooled = [j for j in np.flatnonzero(~truth[:, col]) if m[j]]
            for x, a in enumerate(pooled):
                if effort is not None and effort.out:
                    return out
                for y in range(x + 1, len(pooled)):
                    c = pooled[y]
                    g2 = full & ~(m[a] | m[c])
                    if not g2:
                        continue
                    if effort is not None:
                        effort.spend(int(weight * (len(pooled) - y)))  # the third literals tried
                    for z in range(y + 1, len(pooled)):
                        d = pooled[z]
                        g3 = g2 & ~m[d]
                        if not g3 or g3 == g2 or (full & ~(m[a] | m[d])) == 0 or (full & ~(m[c] | m[d])) == 0:
                            continue
                        if effort is not None:
                            effort.spend(int(weight * (len(pooled) - z)))  # the fourth literals tried
                        for e in pooled[z + 1:]:
                            if m[e] & g3 == g3 and not self._covered(a, c, d, e):
                                lem = self._lemma(tuple(self.pool[j] for j in (a, c, d, e)))
                                if lem.name not in self.shown:
                                    self.shown.add(lem.name)
                                    out.append(lem)
                                    if len(out) >= limit:
                                        return out
        return out

    def covering(self, b: Bounds, state: Sequence[int], alternatives: int = ALTERNATIVES,
                 width: int = MAX_COVER) -> list[Lemma]:
        """Clauses of any length up to ``width`` that are true in the samples and false in ``state`` (at
        ``b``) at some parameter assignment, found by greedy set cover: of the kept literals false
        there, the one true in the most sampled columns not yet covered, until every column is, then
        the literals the others make redundant dropped; ``alternatives`` new ones per assignment (at most
        :data:`ATTEMPTS` tries, each without the widest literal of the last). A counterexample to induction that needs a fact of more literals
        than :meth:`families` enumerate (at two spaces "covers[i] implies lw[sp[i]][pg[i]] = i" is
        ``not covers[i] or t != sp[i] or p != pg[i] or i = lw[t][p]``) gets one in milliseconds."""
        truth = self._truth(b, state)
        m, full = self.wide, self.wide_full
        cost = [self.lits[self.keep[j]].cost for j in range(len(m))]
        out: list[Lemma] = []
        for col in range(truth.shape[1]):
            cand = [int(j) for j in np.flatnonzero(~truth[:, col]) if m[j]]
            banned: set[int] = set()
            made = 0
            for _ in range(ATTEMPTS):
                if made >= alternatives:
                    break
                avail = [j for j in cand if j not in banned]
                chosen: list[int] = []
                gap = full
                while gap and avail and len(chosen) < width:
                    best = max(avail, key=lambda j: ((m[j] & gap).bit_count(), -cost[j], -j))
                    if not m[best] & gap:
                        break
                    chosen.append(best)
                    avail.remove(best)
                    gap &= ~m[best]
                if gap or not chosen:
                    break
                for j in sorted(chosen, key=lambda j: (-cost[j], j)):  # redundant ones out, the costliest first
                    rest = [x for x in chosen if x != j]
                    cov = 0
                    for x in rest:
                        cov |= m[x]
                    if rest and cov & full == full:
                        chosen = rest
                banned.add(chosen[0] if len(chosen) == 1 else max(chosen, key=lambda j: (m[j] & full).bit_count()))
                lem = self._lemma(tuple(sorted(chosen)))
                if lem.name not in self.shown:
                    self.shown.add(lem.name)
                    out.append(lem)
                    made += 1
        return out

    def _covered(self, *combo: int) -> bool:
        """Does a sub-clause of three of ``combo``'s literals already hold in every sampled state?"""
        m, full = self.masks, self.full
        for skip in combo:
            rest = [m[j] for j in combo if j != skip]
            if full & ~(rest[0] | rest[1] | rest[2]) == 0:
                return True
        return False


@dataclass
class Enumerated:
    """The families found, per signature how many, and the seconds."""

    families: list[Lemma]
    per_signature: dict[str, int]
    seconds: float
    signatures: list[Signature]


def enumerate_all(protocol: Protocol, samples: Sequence[tuple[Bounds, np.ndarray]], deadline: float | None = None,
                  peers: "Peers | None" = None, note: Any = None) -> Enumerated:
    """The families of every signature (:func:`signatures` at the first sample's bounds). With ``peers`` (other
    learners enumerating the same samples at once), each builds its share of the signatures and takes the others'
    from them (:mod:`~deferral.checks.symbolic.clauses_split`): the same families, in the same order."""
    t0 = time.monotonic()
    samples = [(b, rows) for b, rows in samples if rows.shape[0]]
    out: list[Lemma] = []
    per: dict[str, int] = {}
    every = signatures(protocol, samples[0][0])
    tables = TruthTables(protocol)
    if peers is not None and getattr(peers, "count", 1) > 1:
        sigs = peers.signatures(protocol, every, samples, tables, deadline, note)
    else:
        sigs = [Signature(protocol, params, samples, tables) for params in every]
    for params, sig in zip(every, sigs):
        # a family that does not read a variable whose signature is also there without it is that
        # signature's family again ("for all t, i, k: waiting[i][k] or ..."): left to that one
        sig.spare = frozenset(n for n, _ in params if tuple(x for x in params if x[0] != n) in every)
        got = sig.families(deadline)
        per[", ".join(x for x, _ in params)] = len(got)
        out += got
    return Enumerated(out, per, time.monotonic() - t0, sigs)


#: Counterexamples to a candidate's induction (the last ones) also learned from when the property's
#: own counterexample is ruled out by no new family; round limit per stage.
EXTRA_CTIS, MAX_ROUNDS = 4, 200
#: A dropped family is offered again only where it is false in one of the round's counterexamples (else
#: wherever a new family rules out the state that broke it: offered and dropped again round after round).
TARGETED = True
#: How a round's counterexamples are ruled out, in order (:func:`_exclude`: the first that finds a new family).
HOWS = ("falsified", "diagrams", "excluding", "covering")
#: Where Houdini drops families the last round made to rule out a counterexample, the pre-states of the steps
#: that broke them (at most this many) are ruled out too (:func:`learn_at`; 0: not): the same counterexample
#: came back round after round, each time with new families Houdini dropped (the reference at 2,1,1,1,S=2: 72
#: rounds unfinished, 4 with this; PROVE.md, 5 Dec, evening).
SUPPORT = 4
#: The first stage hands its whole Houdini fixpoint to a larger next stage (:func:`learn`), not only what the
#: properties need.
CARRY_FIXPOINT = True
#: Houdini's counterexamples run forward too (:mod:`~deferral.checks.symbolic.forward`), dropping the candidates
#: false on the way without a solver query each.
FORWARD = True
#: Counterexamples learned from per round, at most (each next one with the families made for the last assumed).
BATCH = 4
#: Where the first stage's fixpoint is carried to a larger stage and that stage has not settled after
#: :data:`FALLBACK_ROUNDS` rounds, the first stage is learned again under the next Z3 seed here (offsets from the
#: process's own) and the larger stage starts again from the union of the fixpoints drawn. Whether the larger
#: stage (3,2,2) settles is decided by the fixpoint it starts from, not by its own seed (reseeding only that stage
#: left wait-irqs-off stuck four times out of four); from the union of two draws' fixpoints it settled in one
#: round in 9 of the 10 variants of the 4,3,3,3,S=2 grid that got there in time (PROVE.md, 6 Dec, afternoon).
#: Drawn only where needed: a draw takes 2-15 s, and most variants settle from the first. With a third draw
#: defer_all_spaces was proved at 4,3,3,3,S=2 and 6,3,3,3,S=2 (the union of two had not settled in 3 rounds).
FIRST_DRAWS, FALLBACK_ROUNDS = (0, 1000, 2000), 1
#: A draw of the first stage again stops unsettled after max(floor, factor x the first draw's rounds) rounds
#: (then the next draw): under another seed the loop at 2,1,1,1,S=2 can wander, lazy_ipi_return's second draw
#: ran 34 rounds and more where its first settled in 11, until the enumerated stage's share was gone.
DRAW_ROUNDS = (8, 2)
#: Steps a round's searches for new clauses may take (:class:`Effort`): about 4 s of this machine unloaded, the
#: wall-clock cap it replaces (PROVE.md, 5 Dec, morning; a count since 5 Dec, night: that cap made two runs of
#: one learning loop part ways). A step is about 0.15 microseconds: a literal tried by :meth:`Signature.excluding`
#: is 1 + (its masks' bits / MASK_BITS_PER_STEP) steps (0.23 us at 6,700 bits, 1.1 us at 72,000, measured),
#: a unit of Z3's resource count STEPS_PER_RLIMIT steps (2.9-6.4 million units a second in the diagrams).
EXCLUDE_STEPS, MASK_BITS_PER_STEP, STEPS_PER_RLIMIT = 28_000_000, 11_000, 2
#: Z3's resource count one query of :meth:`Signature.diagrams` may take (about the 2 s timeout it replaces).
DIAGRAM_RLIMIT = 8_000_000


class Effort:
    """What a learning round's searches for new clauses may still spend, counted, not timed: a fourth
    literal tried by :meth:`Signature.excluding` is a step, a query of :meth:`Signature.diagrams` its
    Z3 resource count. A wall-clock cap (4 s a round, 2 s a query) made the same learning loop take
    other paths under other loads (PROVE.md, 5 Dec, night, helper p5). ``deadline`` (time.monotonic;
    the stage's own) ends it too: the stage is cut there anyway."""

    def __init__(self, steps: int, deadline: float | None = None) -> None:
        self.left, self.deadline = steps, deadline

    def spend(self, steps: int) -> None:
        self.left -= steps

    @property
    def out(self) -> bool:
        return self.left <= 0 or (self.deadline is not None and time.monotonic() > self.deadline)


def rlimit_count(solver: Any) -> int:
    """Z3's resource count of ``solver``'s context so far (every query of it; ``rlimit`` bounds one query's share)."""
    stats = solver.statistics()
    return int(stats.get_key_value("rlimit count")) if "rlimit count" in stats.keys() else 0
#: The first stage starts from every enumerated family of at most this many literals (the simplest,
#: mostly inductive; DistAI's smallest-first), not from nothing: at two spaces the loop from nothing
#: took 12-34 rounds and often ran out of its share (PROVE.md, 5 Dec, morning).
FIRST_LITERALS = 2


@dataclass
class Stage:
    """One bounds' learning: Houdini's fixpoint (``alive``), what the property needs of it (``needed``,
    unsat cores; None when the fixpoint does not preserve the property), rounds, seconds, why not."""

    at: Bounds
    alive: list[Lemma]
    needed: list[Lemma] | None
    rounds: int
    offered: int
    seconds: float
    why: str = ""
    state: Any = None  # the counterexample to induction no family rules out (JSON), where that stopped it
    forward: tuple[int, float] = (0, 0.0)  # families Houdini dropped by running forward, and the seconds it took
    draw: int = 0  # the Z3 seed it ran under, as an offset from the process's (:data:`FIRST_DRAWS`)


def learn_at(protocol: Protocol, at: Bounds, found: Enumerated, start: Sequence[Lemma] = (),
             deadline: float | None = None, note: Any = None, trim: bool = True, enc: Any = None,
             max_rounds: int = MAX_ROUNDS) -> Stage:
    """Houdini at ``at`` from ``start``; while the invariant properties are not preserved, the
    counterexample to induction (one every candidate left survives: Houdini settles first; or, when
    no new family rules it out, the last candidates') is ruled out by the enumerated families false
    in it, else by the shortest clauses of every literal false in it (:meth:`Signature.diagrams`: the
    pool may have left theirs out), else by new clauses of four literals (:meth:`Signature.excluding`), else by greedy covers
    (:meth:`Signature.covering`); a round starts from what is alive, the new families and the dropped
    ones whose witness they rule out (:class:`_Witnesses`); then (``trim``) the unsat-core support of
    the fixpoint. ``enc``: the encoding at ``at``, where the caller has one. Each Houdini counterexample is
    also run forward (:data:`FORWARD`); the stage says what that dropped and took. It stops unsettled after
    ``max_rounds`` rounds."""
    from deferral.checks.symbolic.forward import Forward

    forward = Forward(protocol, at, found.signatures) if FORWARD else None
    st = _rounds(protocol, at, found, start, deadline, note, trim, enc, forward, max_rounds)
    if forward is not None:
        st.forward = (forward.dropped, forward.seconds)
    return st


def _rounds(protocol: Protocol, at: Bounds, found: Enumerated, start: Sequence[Lemma], deadline: float | None,
            note: Any, trim: bool, enc: Any, forward: "Forward | None", max_rounds: int = MAX_ROUNDS) -> Stage:
    """:func:`learn_at`'s rounds."""
    from deferral.checks.symbolic.infer import property_lemmas
    from deferral.checks.symbolic.relevance import Relevance

    t0 = time.monotonic()
    rel, must = Relevance(protocol, at, enc), property_lemmas(protocol)
    cands = list(start)
    offered = list(start)
    names = {lem.name for lem in cands}
    judge = _Witnesses(found, at)
    made: list[str] = []  # the families the last round made
    for rnd in range(1, max_rounds + 1):
        mark = len(rel.dropped)
        try:
            alive, broke, state = rel.houdini(cands, must, deadline, settle=True, forward=forward)
        except TimeoutError as exc:
            return Stage(at, [], None, rnd, len(offered), time.monotonic() - t0, str(exc))
        if broke is None and not trim:
            return Stage(at, alive, alive, rnd, len(offered), time.monotonic() - t0)
        if broke is None:
            try:
                needed = rel.support(alive, must, deadline)
            except TimeoutError as exc:
                return Stage(at, alive, None, rnd, len(offered), time.monotonic() - t0, str(exc))
            return Stage(at, alive, alive if needed is None else needed, rnd, len(offered), time.monotonic() - t0)
        states = [state] + [st for _, st in rel.dropped[mark:]][::-1][:EXTRA_CTIS]
        cap = Effort(EXCLUDE_STEPS, deadline)
        new = _exclude(found, at, states, names, cap)
        if SUPPORT and made:
            # the families made last round to rule out a counterexample that Houdini dropped now: the
            # pre-states of the steps that broke them are ruled out too (IC3's blocking of a blocking
            # clause's own counterexample), else the same counterexample returns round after round
            alive_names = {lem.name for lem in alive}
            back = list(dict.fromkeys(tuple(rel.witness[n]) for n in made if n not in alive_names and n in rel.witness))
            for st in back[:SUPPORT]:
                new += _exclude(found, at, [st], names, cap)
        # more counterexamples before the next round: the next one where the new families are assumed
        # to be kept (each round's Houdini, with hundreds of candidates, learned from one: PROVE.md, 5 Dec,
        # late morning)
        for _ in range(BATCH - 1):
            if not new:
                break
            try:
                more_state = rel.counterexample(alive + new, must, deadline)
            except TimeoutError:
                break
            if more_state is None:
                break
            more = _exclude(found, at, [more_state], names, cap)
            if not more:
                break
            states.append(more_state)
            new += more
        if note:
            note(f"clauses: round {rnd} at {at.short()}: Houdini kept {len(alive)} of {len(cands)} ({len(offered)} offered); "
                 f"{broke} not preserved; {len(new)} new families"
                 + (f" (run forward: {forward.dropped} dropped, {forward.seconds:.1f} s)" if forward else ""))
        if not new:
            return Stage(at, alive, None, rnd, len(offered), time.monotonic() - t0,
                         f"a counterexample to induction of {broke} at {at.short()} that no enumerated family "
                         f"rules out", state=protocol_state(protocol, at, state))
        offered += new
        made = [lem.name for lem in new]
        # the next round starts from what is alive, the new families, and the dropped families whose
        # witness (the pre-state of the step that broke them) a new or returning family rules out: the
        # others are dropped by that same step again (Houdini's fixpoint is the same; its rounds are
        # not spent dropping them once more: PROVE.md, 5 Dec, morning)
        cands = judge.next_round(offered, alive, new, rel.witness, states if TARGETED else None)
        if deadline is not None and time.monotonic() > deadline:
            return Stage(at, alive, None, rnd, len(offered), time.monotonic() - t0, f"time limit at {at.short()}")
    return Stage(at, [], None, max_rounds, len(offered), time.monotonic() - t0, f"round limit at {at.short()}")


def _exclude(found: Enumerated, at: Bounds, states: Sequence[Any], names: set[str], cap: "Effort") -> list[Lemma]:
    """New families (not in ``names``, which this adds them to) that rule out the counterexamples ``states``
    (the property's first): the enumerated families false in any of them; where there are none, the
    shortest clauses of every literal false in one (:meth:`Signature.diagrams`; the signatures of fewest
    variables first, none wider once one rules the state out: :data:`FEWEST_FIRST`), else clauses of four
    pooled literals (:meth:`Signature.excluding`), else greedy covers; the searches stop once ``cap`` is spent."""
    new: list[Lemma] = []
    for sig in found.signatures:
        sig.prime(at, states)
    for how in HOWS:
        for st in states:
            made, width = len(new), 0
            for sig in found.signatures:  # the fewest variables first
                if how == "diagrams" and FEWEST_FIRST and len(new) > made and len(sig.params) > width:
                    break  # a clause over fewer variables rules this state out: the wider signatures are not searched
                got = (sig.falsified(at, st) if how == "falsified" else sig.covering(at, st) if how == "covering"
                       else sig.diagrams(at, st, effort=cap) if how == "diagrams"
                       else sig.excluding(at, st, effort=cap))
                new += [lem for lem in got if lem.name not in names]
                names.update(lem.name for lem in got)
                width = len(sig.params)
            if new and how != "falsified":
                break
        if new:
            break
    return new


class _Witnesses:
    """Which dropped families a learning round must offer again (:func:`learn_at`): a family Houdini
    dropped stays dropped while the pre-state of the step that broke it satisfies every family offered
    (then that step breaks it again); the families' truth in those states is computed by the
    signatures' literal tables, per state once. A family no signature made is always offered again.
    Only a choice of what to offer: Houdini and induction decide what is kept."""

    def __init__(self, found: Enumerated, at: Bounds) -> None:
        self.found, self.at = found, at
        self.truth: dict[tuple[int, ...], list[np.ndarray]] = {}  # state -> per signature (literals, assignments)

    def _tables(self, states: Sequence[tuple[int, ...]]) -> None:
        todo = [st for st in dict.fromkeys(states) if st not in self.truth]
        if not todo:
            return
        per = [sig.truth_in(self.at, todo) for sig in self.found.signatures]
        for n, st in enumerate(todo):
            self.truth[st] = [t[:, :, n:n + 1] for t in per]

    def violated(self, lem: Lemma, tables: Sequence[np.ndarray], n: int) -> np.ndarray:
        """Per state (``tables``: per signature (literals, assignments, states)), is ``lem`` false
        there (everywhere True where no signature can tell)?"""
        for sig, t in zip(self.found.signatures, tables):
            got = sig.false_in(lem.name, t)
            if got is not None:
                return got
        return np.ones(n, dtype=bool)

    def next_round(self, offered: Sequence[Lemma], alive: Sequence[Lemma], new: Sequence[Lemma],
                   witness: dict[str, Any], ctis: Sequence[Any] | None = None) -> list[Lemma]:
        keep = {lem.name for lem in alive} | {lem.name for lem in new}
        pending = [lem for lem in offered if lem.name not in keep]
        keep.update(lem.name for lem in pending if lem.name not in witness)
        pending = [lem for lem in pending if lem.name not in keep]
        if ctis is not None and pending:  # only those that rule out one of this round's counterexamples
            here = [tuple(int(x) for x in st) for st in ctis]
            self._tables(here)
            at_ctis = [np.concatenate([self.truth[st][k] for st in here], axis=2)
                       for k in range(len(self.found.signatures))]
            pending = [lem for lem in pending if self.violated(lem, at_ctis, len(here)).any()]
        states = list(dict.fromkeys(tuple(witness[lem.name]) for lem in pending))
        self._tables(states)
        place = {st: n for n, st in enumerate(states)}
        tables = [np.concatenate([self.truth[st][k] for st in states], axis=2) if states else None
                  for k in range(len(self.found.signatures))]
        check = list(new)
        while check and pending:
            ruled = np.zeros(len(states), dtype=bool)  # the witnesses some family of ``check`` is false in
            for c in check:
                ruled |= self.violated(c, tables, len(states))  # type: ignore[arg-type]
            back = [lem for lem in pending if ruled[place[tuple(witness[lem.name])]]]
            keep.update(lem.name for lem in back)
            pending = [lem for lem in pending if lem.name not in keep]
            check = back
        return [lem for lem in offered if lem.name in keep]


def protocol_state(protocol: Protocol, b: Bounds, state: Sequence[int]) -> Any:
    from deferral.model.concrete import Model

    return Model(protocol, b).to_json(tuple(state))


@dataclass
class Learned:
    """What :func:`learn` did: the families the last stage's properties need (``lemmas``; empty when
    it failed), every stage, the samples, the seconds by part, and why not."""

    lemmas: list[Lemma]
    stages: list[Stage]
    sampled: list[tuple[Bounds, str, int]]
    enumerated: int
    seconds_by_part: dict[str, float]
    why: str = ""
    found: Enumerated | None = None  # the enumeration (:func:`resume` learns on from it)

    @property
    def ok(self) -> bool:
        return bool(self.stages) and self.stages[-1].needed is not None and not self.why

    def to_json(self) -> list[dict[str, Any]]:
        """One row per stage (for ``prove --json``'s ``stages``)."""
        return [{"bounds": st.at.as_dict(), "rounds": st.rounds, "families_in": st.offered,
                 "families_kept": len(st.alive), "needed": None if st.needed is None else len(st.needed),
                 "seconds": round(st.seconds, 2), **({"why": st.why} if st.why else {}),
                 **({"forward": {"dropped": st.forward[0], "seconds": round(st.forward[1], 2)}} if st.forward[0] else {}),
                 **({"z3_seed_offset": st.draw} if st.draw else {}),
                 **({"cti": st.state} if st.state is not None else {})} for st in self.stages]


#: Address spaces the samples and the learning's stages before the last have at most (the families are
#: quantified over spaces, so what two spaces teach is offered at three: at 4,3,3,3,S=3 the reference's
#: stages at three spaces were cut by a 60-s limit, at two it was learned in 20 s and proved at three by
#: the last stage's Houdini and induction; PROVE.md, 7 Dec, s32).
LEARN_SPACES = 2


def learned_spaces(values: Mapping[str, int]) -> dict[str, int]:
    """``values`` (bounds by name) with at most :data:`LEARN_SPACES` address spaces, as the learning samples them."""
    out = dict(values)
    if "spaces" in out:
        out["spaces"] = min(out["spaces"], LEARN_SPACES)
    return out


def plan(protocol: Protocol, concrete: dict[str, int], within: Bounds | None = None) -> list[tuple[Bounds, str]]:
    """Where the samples come from: the parametric learner's plan (2,1,1, 3,1,1, 2,2,2 exhaustive and
    3,2,2 by random walks, at the concrete Q and S, address spaces at most 2), first each no larger
    than ``within`` (the requested bounds of a bounded proof), then (also for a proof at smaller
    bounds) the plan itself: a family must hold at the larger instances too, so that facts true only
    at two VCPUs or one page are not offered (they swell Houdini's rounds; measured at 2,1,1,1: 45
    families and 17 s CPU without them, PROVE.md, 4 Dec, night); duplicates dropped."""
    from deferral.checks.symbolic.paramlearn import sample_plan

    conc = learned_spaces(concrete)
    full = sample_plan(protocol, conc)
    clipped = full if within is None else [
        (b.replace(**{d.name: min(b[d.name], within[d.name]) for d in b.decls if d.name in within}), how)
        for b, how in full]
    out: list[tuple[Bounds, str]] = []
    for b, how in clipped + full:
        if b not in [x for x, _ in out]:
            out.append((b, how))
    return out


def stage_bounds(protocol: Protocol, bounds: Bounds) -> list[Bounds]:
    """Where a bounded proof at ``bounds`` learns: the smallest sampled instance, the largest (each no
    larger than ``bounds``, at its Q and at most :data:`LEARN_SPACES` address spaces, as the samples),
    then ``bounds`` (also where it is one of those: the stages before the last keep only what the
    properties need, the last keeps Houdini's whole fixpoint)."""
    conc = learned_spaces({d.name: bounds[d.name] for d in bounds.decls if d.name in ("queue", "spaces")})
    sampled = [b.replace(**conc) for b, _ in plan(protocol, conc, within=bounds)
               if all(b[d.name] <= bounds[d.name] for d in b.decls if d.name in bounds)]
    out: list[Bounds] = []
    for b in [sampled[0], sampled[-1]]:
        if b not in out:
            out.append(b)
    return out + [bounds]


#: States per exhaustive sample (the smallest instance: all of them, up to this). (The enumeration also had a
#: share of the time left, 30 %, until 6 Dec: under load it cut the triples at a point that depended on the
#: machine; the pool, :data:`POOL` literals per signature, bounds it: 7.4 s for six signatures at load 5.)
FIRST_CAP, CAP = 20_000, 10_000
#: An exhaustive sample's states are drawn at random from the first ``SPREAD * cap`` reachable states (the
#: smallest instance: ``FIRST_SPREAD``, its whole reachable set at 2,1,1,1,S=2, 3.3 million states in about
#: 3 s), not the first ``cap`` (the shallowest levels: families true there and false deeper made the
#: learning oscillate; PROVE.md, 5 Dec, late morning).
FIRST_SPREAD, SPREAD = 100, 10
#: (Each spread search was also cut at 4 s, the others at 1.5 s, until 5 Dec, night: a sample then depended on
#: the machine's load; the state caps bound it now, and the learning's deadline.)
#: The random walks of the largest sampled instance (3,2,2): walkers, steps each, states kept. With paramlearn's
#: 600 walks of 40 steps (10,000 states kept) 603 families over (t, p, i) held in every sample at 4,3,3,3,S=2 and
#: mostly failed at 3,2,2,3,2, where Houdini drops them a query at a time; with these, 443 (PROVE.md, 5 Dec, night).
WALKERS, WALK_DEPTH, WALK_CAP = 2000, 60, 30_000
#: ... and the walks of ``prove --parametric``'s learning (paramlearn's 600 of 40 steps, 10,000 states kept): with
#: the walks above 4 of the 12 were proved for every N, V, F at two spaces on a quiet machine, with these 7 of
#: the 12 (the reference in 20.5 s instead of unknown at 60 s; PROVE.md, 5 Dec, night, lead).
PARAMETRIC_WALKS = (600, 40, 10_000)


def _at_most(rows: np.ndarray, cap: int) -> np.ndarray:
    """``cap`` of ``rows`` drawn at random (seeded), in their order; all of them where there are no more."""
    if rows.shape[0] <= cap:
        return rows
    return rows[np.sort(np.random.default_rng(0).choice(rows.shape[0], cap, replace=False))]


def learn(protocol: Protocol, samples_at: Sequence[tuple[Bounds, str]], stages: Sequence[Bounds],
          deadline: float | None = None, note: Any = None, trim_last: bool = False,
          given: Mapping[Bounds, np.ndarray] | None = None, encodings: Mapping[Bounds, Any] | None = None,
          walks: tuple[int, int, int] = (WALKERS, WALK_DEPTH, WALK_CAP), peers: "Peers | None" = None) -> Learned:
    """Sample (``samples_at``: bounds and "exhaustive" or "walks", the walks ``walks``: walkers, steps, states
    kept), enumerate the families, then :func:`learn_at` at each of ``stages`` in turn, each starting from
    what the last one needed (the last stage keeps Houdini's whole fixpoint unless ``trim_last``). ``given``: an exhaustive sample's
    states already drawn (auto's explicit search exhausted that instance: not searched again);
    ``encodings``: a stage's encoding already built (the caller's, at its bounds: built once); ``peers``: the
    other learners, which learn the same at once under other seeds (:mod:`~deferral.checks.symbolic.clauses_peers`):
    the first stage's fixpoint and each draw's are exchanged with theirs (:func:`_from_draws`)."""
    from deferral.checks.symbolic.paramlearn import walk_rows
    from deferral.checks.symbolic.vocabulary import sample_rows
    from deferral.model.concrete import Model

    t0 = time.monotonic()
    part: dict[str, float] = {}
    rows: list[tuple[Bounds, np.ndarray]] = []
    sampled: list[tuple[Bounds, str, int]] = []
    for n, (b, how) in enumerate(samples_at):
        if n and deadline is not None and time.monotonic() > deadline:
            break
        cap = FIRST_CAP if n == 0 else CAP
        if how == "walks":
            got = walk_rows(Model(protocol, b), walkers=walks[0], depth=walks[1], cap=walks[2])
        elif given is not None and b in given:
            got = _at_most(given[b], cap)
        else:
            got = sample_rows(protocol, b, cap=cap, spread=FIRST_SPREAD if n == 0 else SPREAD,
                              time_limit=None if deadline is None else max(0.0, deadline - time.monotonic()))
        rows.append((b, got))
        sampled.append((b, how, int(got.shape[0])))
    part["sampling"] = time.monotonic() - t0
    if note:
        note("clauses: sampled " + ", ".join(f"{b.short()} ({how}, {n} states)" for b, how, n in sampled))
    t1 = time.monotonic()
    found = enumerate_all(protocol, rows, deadline=deadline, peers=peers, note=note)
    part["enumeration"] = time.monotonic() - t1
    if note:
        note(f"clauses: {len(found.families)} families true in every sampled state ("
             + ", ".join(f"{k}: {v}" for k, v in found.per_signature.items()) + f"; {part['enumeration']:.1f} s)")
    asked, stages = list(stages), list(stages)
    sampled_at = [b for b, _, _ in sampled]
    if peers is not None and len(stages) > 1:
        stages[0] = first_stage(protocol, sampled_at, stages, peers.rank)
    # a learner whose first stage is the smallest instance steps through the one between where the next does not settle
    ladder_at = ladder(protocol, sampled_at, asked) if peers is not None and stages == asked else None
    same_first = peers is not None and all(first_stage(protocol, sampled_at, asked, r) == stages[0]
                                           for r in range(getattr(peers, "count", 1)) if r != peers.rank)
    done: list[Stage] = []
    start: list[Lemma] = [f for f in found.families if len(getattr(f, "texts", ())) <= FIRST_LITERALS]
    first, carried = list(start), False
    joined = False  # the peers' first-stage fixpoints taken already (this learner's own did not settle)
    if note:
        note(f"clauses: first offered {len(start)} families of at most {FIRST_LITERALS} literals, at "
             f"{stages[0].short()}")
    for n, at in enumerate(stages):
        # from the first stage to a larger instance, Houdini's whole fixpoint (not only what the properties
        # need there): facts the smallest instance's proof did not use replace the ones 3 VCPUs and 2 pages
        # break (the reference at 4,3,3,3,S=2: 2 of the 31 needed were not inductive at 3,2,2,3,2 and the
        # stage there did not settle in 150 s; from the fixpoint it settled in 2 rounds; PROVE.md, 5 Dec, evening)
        carry = CARRY_FIXPOINT and n == 0 and n + 1 < len(stages) and stages[n + 1] != at
        trim = trim_last or n < len(stages) - 1
        enc = None if encodings is None else encodings.get(at)
        if n == 1 and carried:
            tried = _from_draws(protocol, stages[0], at, found, first, start, deadline, note, trim, enc,
                                first_rounds=done[0].rounds, peers=peers, first_seconds=done[0].seconds,
                                joined=joined, ladder_at=ladder_at, same_first=same_first)
            done += tried
            st = tried[-1]
        else:
            st = learn_at(protocol, at, found, start, deadline, note, trim=trim, enc=enc)
            done.append(st)
        for x in dict.fromkeys(y.at for y in done):  # in the order they ran
            part[f"houdini and cores at {x.short()}"] = sum(y.seconds for y in done if y.at == x)
        if carry and peers is not None:
            # the peers learn the first stage at once under their seeds: this one's fixpoint goes to them (none
            # where it did not settle: then the peers' alone, where they have some, and the stage goes on from them)
            peers.send(FIRST_TAG, st.alive if st.needed is not None else [], note)
            if st.needed is None:
                theirs = peers.receive(FIRST_TAG, _wait_until(st.seconds, deadline), found, note)
                if theirs:
                    carried, start, joined = True, theirs, True
                    continue
        if st.needed is None:
            return Learned([], done, sampled, len(found.families), part, st.why or "no fixpoint", found)
        carried = carry
        start = st.alive if carry else st.needed
        if note:
            note(f"clauses: at {at.short()}: {len(st.alive)} of {st.offered} families inductive after "
                 f"{st.rounds} rounds; the properties need {len(st.needed)}")
    return Learned(start, done, sampled, len(found.families), part, found=found)


#: True: where learners learn at once (:class:`Peers`), every other one (odd ``rank``) learns its first stage at the
#: instance :func:`between` the first two stages (3,1,1 before 3,2,2), the others at the first (2,1,1). From a
#: 2,1,1 fixpoint the stage at 3,2,2 often did not settle (facts about a third VCPU missing), from a 3,1,1 one it
#: settled in one round 35 times of 37 (PROVE.md, 7 Dec, 06:40-08:00 UTC). But 3,1,1 from the first families runs
#: long and unevenly (lazy_ipi_return 5 to more than 50 rounds, lazy_cur_clear 12 to more than 40, in one process),
#: and since the ladder (:data:`LADDER`) reaches 3,1,1 from 2,1,1 fixpoints, every learner starts at 2,1,1 (False):
#: the bounded 60-s grid at 4,3,3,3,S=2 proved 12 of 12 instead of 11 (lazy_ipi_return 42 s; 11 on a slower repeat),
#: the parametric one 10 of 12 as before, at 6,3,3,3,S=2 9 of 12 against 10: a draw over the three (PROVE.md, 7 Dec,
#: 12:05-13:50 UTC).
SPLIT_FIRST_STAGE = False


def first_stage(protocol: Protocol, sampled: Sequence[Bounds], stages: Sequence[Bounds], rank: int) -> Bounds:
    """Where a learner of ``rank`` learns its first stage, given the ``stages`` asked for (:data:`SPLIT_FIRST_STAGE`):
    for an odd rank, the instance :func:`between` the first two; else ``stages[0]``."""
    if not SPLIT_FIRST_STAGE or rank % 2 == 0:
        return stages[0]
    return between(protocol, sampled, stages)


def between(protocol: Protocol, sampled: Sequence[Bounds], stages: Sequence[Bounds]) -> Bounds:
    """The smallest of the ``sampled`` instances between ``stages[0]`` and ``stages[1]`` with as many elements of the
    busiest open sort as ``stages[1]`` (at the stages' Q and S: 3,1,1 between 2,1,1 and 3,2,2); ``stages[0]`` where
    there is none."""
    from deferral.checks.symbolic.paramlearn import busiest as busiest_bound, open_bounds

    top, names = busiest_bound(protocol), open_bounds(protocol)
    if top is None or len(stages) < 2:
        return stages[0]
    first, second = stages[0], stages[1]
    at_first = [first.replace(**{n: b[n] for n in names}) for b in sampled]  # the stages' Q and S
    fits = [b for b in at_first if b not in (first, second) and b[top] == second[top]
            and all(first[n] <= b[n] <= second[n] for n in names)]
    return min(fits, key=lambda b: sum(b[n] for n in names)) if fits else first


#: Where learners learn at once and the stage after a first stage at 2,1,1 does not settle from its fixpoint (3,2,2:
#: facts about a third VCPU missing), that learner learns at 3,1,1 from the same fixpoint (with the peers' where they
#: learn the same first stage: from the union, where 3,2,2 did not settle from that either) before it draws again
#: (:func:`ladder`, :func:`_from_draws`). One process, each run three times: from 2,1,1's fixpoint
#: 3,1,1 settled in 10 rounds (15.7 s, lazy_cur_clear) and 7 (9.1 s, lazy_ipi_return), where from the first families
#: alone (the other learner's course) it had not settled after 40 and 50 rounds (120 s); and from a 3,1,1 fixpoint
#: 3,2,2 settles in one round nearly always (PROVE.md, 7 Dec, 09:14-11:40 UTC). False: straight to the waits and draws.
LADDER = True
#: The stage at the ladder stops unsettled after as many rounds as the first stage took, at least this many: from the
#: fixpoint of a first stage that took 2 rounds (wait-irqs-off) it ran its 8 rounds unsettled, as 3,1,1 from the
#: first families does, and the draws that followed did not settle 3,2,2 in time (83 s at 120 against 35 s before).
LADDER_ROUNDS = 3


def ladder(protocol: Protocol, sampled: Sequence[Bounds], stages: Sequence[Bounds]) -> Bounds | None:
    """The stage between a first stage at ``stages[0]`` and the second (:data:`LADDER`; :func:`between`), where that is
    neither of them; else None."""
    if not LADDER or len(stages) < 2:
        return None
    at = between(protocol, sampled, stages)
    return None if at in (stages[0], stages[1]) else at


def _from_draws(protocol: Protocol, first_at: Bounds, at: Bounds, found: Enumerated, first: Sequence[Lemma],
                carried: Sequence[Lemma], deadline: float | None, note: Any, trim: bool, enc: Any,
                first_rounds: int = 0, peers: "Peers | None" = None, first_seconds: float = 0.0,
                joined: bool = False, ladder_at: Bounds | None = None, same_first: bool = False) -> list[Stage]:
    """The stage at ``at`` after a first stage at ``first_at`` whose fixpoint (``carried``) it starts from: where it
    has not settled after :data:`FALLBACK_ROUNDS` rounds (and time is left), the first stage again (from ``first``)
    under the next seed of :data:`FIRST_DRAWS` (at most :data:`DRAW_ROUNDS` rounds), and the stage starts again from the union of the fixpoints drawn
    (not from its own next round: the families its rounds made kept it from settling in 4 of 6 variants, where the
    union of the fixpoints alone settled in one round; PROVE.md, 6 Dec, afternoon); a draw that adds nothing is
    followed by the next draw, not by the same try again; the last draw's stage runs to the end.

    With ``peers`` (other learners doing the same at once under their seeds), the peers' first-stage fixpoints
    come before the first draw (they drew them meanwhile; ``joined``: taken already), and each draw's fixpoint
    is exchanged with theirs of the same draw: the union takes theirs too. Every stage tried, in order (a draw's
    :attr:`Stage.draw` its offset); the last is the stage at ``at``.

    ``ladder_at`` (:data:`LADDER`): where the stage at ``at`` has not settled from the first fixpoint, a stage at
    ``ladder_at`` (3,1,1 between 2,1,1 and 3,2,2) from that fixpoint comes first (at most as many rounds as the first
    stage took, at least :data:`LADDER_ROUNDS`); where it settles, the stage at ``at`` starts again from its
    fixpoint and the peers' first-stage fixpoints that came meanwhile (not waited for). ``same_first``: the peers
    learn the same first stage (:data:`SPLIT_FIRST_STAGE` off): their fixpoints are waited for before the ladder, the
    stage at ``at`` tried from the union, and the ladder starts from the union where that does not settle."""
    out: list[Stage] = []
    fixpoints, offsets, grown = list(carried), list(FIRST_DRAWS[1:]), True
    pending = peers is not None and not joined  # the peers' first-stage fixpoints, not yet taken

    def more_to_come() -> bool:
        return bool(offsets) or pending

    def with_peers_first() -> list[Lemma]:
        """The fixpoints and the peers' first-stage fixpoints (waited for as long as :func:`_wait_until` says), which
        are then taken."""
        nonlocal pending
        assert peers is not None
        pending = False
        return _union(fixpoints, peers.receive(FIRST_TAG, _wait_until(first_seconds, deadline), found, note))

    while True:
        # a draw that added nothing: the stage would start where its last try did (that same round again), so
        # the next draw comes first while there is one and time is left
        if grown or not more_to_come() or (deadline is not None and time.monotonic() > deadline):
            st = learn_at(protocol, at, found, fixpoints, deadline, note, trim=trim, enc=enc,
                          max_rounds=FALLBACK_ROUNDS if more_to_come() else MAX_ROUNDS)
            out.append(st)
            if st.needed is not None or not more_to_come() or (deadline is not None and time.monotonic() > deadline):
                return out
        if ladder_at is not None:
            if pending and same_first:  # the peers' fixpoints of this same first stage come first
                union = with_peers_first()
                if len(union) > len(fixpoints):
                    fixpoints, grown = union, True
                    continue  # the stage at ``at`` from the union first; the ladder from it where that does not settle
            step = learn_at(protocol, ladder_at, found, fixpoints, deadline, note, trim=False,
                            max_rounds=max(LADDER_ROUNDS, first_rounds))
            out.append(step)
            ladder_at = None
            if step.needed is not None:
                theirs: list[Lemma] = []
                if pending:
                    assert peers is not None
                    theirs = peers.receive(FIRST_TAG, time.monotonic(), found, note)  # those that came meanwhile
                    pending = not theirs
                if note:
                    note(f"clauses: at {step.at.short()}: {len(step.alive)} families inductive after "
                         f"{step.rounds} rounds; {at.short()} again from them")
                fixpoints, grown = _union(step.alive, theirs), True
                continue
        if pending:
            union = with_peers_first()
            grown, fixpoints = len(union) > len(fixpoints), union
            continue
        offset = offsets.pop(0)
        if note:
            note(f"clauses: at {at.short()}: not settled; {first_at.short()} again, under Z3 seed offset {offset}")
        cap = max(DRAW_ROUNDS[0], DRAW_ROUNDS[1] * first_rounds)
        draw = _under_seed(offset, lambda: learn_at(protocol, first_at, found, first, deadline, note, trim=True,
                                                    max_rounds=cap))
        draw.draw = offset
        out.append(draw)
        mine = draw.alive if draw.needed is not None else []
        theirs: list[Lemma] = []
        if peers is not None:
            peers.send(f"draw {offset}", mine, note)
            theirs = peers.receive(f"draw {offset}", _wait_until(draw.seconds, deadline), found, note)
        union = _union(fixpoints, mine, theirs)
        grown, fixpoints = len(union) > len(fixpoints), union


class Peers(Interface):
    """What :func:`learn` asks of the other learners (spawned learners' links:
    :class:`~deferral.checks.symbolic.clauses_peers.PeerLinks`); ``rank``: this learner's place among them (0
    first), which chooses its first stage (:func:`first_stage`)."""

    rank: int
    #: how many learners there are, this one included (:func:`enumerate_all` shares the signatures out among them)
    count: int

    def signatures(self, protocol: Protocol, every: Sequence[Sequence[tuple[str, Domain]]],
                   samples: Sequence[tuple[Bounds, np.ndarray]], tables: TruthTables, deadline: float | None,
                   note: Callable[[str], None] | None) -> list["Signature"]:
        """A :class:`Signature` of each of ``every`` over ``samples``, this learner building its share and taking the
        others' from the peers (:mod:`~deferral.checks.symbolic.clauses_split`)."""
        ...

    def send(self, tag: str, mine: Sequence[Lemma], note: Callable[[str], None] | None) -> None:
        """Send ``mine`` (the fixpoint of the draw ``tag``) to every peer."""
        ...

    def receive(self, tag: str, until: float, found: "Enumerated", note: Callable[[str], None] | None) -> list[Lemma]:
        """The peers' fixpoints of the draw ``tag`` (rebuilt here, registered in ``found``'s signatures), in seed
        order: those that came by ``until`` (time.monotonic()); a peer that ended its job or its process is not
        waited for."""
        ...


#: The tag a learner's first-stage fixpoint is exchanged under (a draw's: "draw" and its seed offset).
FIRST_TAG = "first stage"
#: How long a learner waits for its peers' fixpoint of a draw: this factor times what its own draw took, at least
#: the seconds below (and never past the stage's deadline). Within that wait the course is the same every run (the
#: same fixpoints, in the peers' order); a peer that takes longer than that is not waited for, and the union is
#: then this learner's alone (the course follows the timing there).
PEER_WAIT_FACTOR, PEER_WAIT_MIN_S = 2.0, 5.0


def _wait_until(own_seconds: float, deadline: float | None) -> float:
    """The time.monotonic() until which a learner waits for its peers' fixpoint of a draw that took it ``own_seconds``."""
    until = time.monotonic() + max(PEER_WAIT_MIN_S, PEER_WAIT_FACTOR * own_seconds)
    return until if deadline is None else min(until, deadline)


def _union(*parts: Sequence[Lemma]) -> list[Lemma]:
    """The families of ``parts``, each once (by name), in their order."""
    return list({lem.name: lem for part in parts for lem in part}.values())


def _under_seed(offset: int, run: Callable[[], Stage]) -> Stage:
    """``run()`` with Z3's random seeds the process's plus ``offset`` (restored after)."""
    import z3

    base = int(z3.get_param("smt.random_seed") or 0)
    z3.set_param("smt.random_seed", base + offset)
    z3.set_param("sat.random_seed", base + offset)
    try:
        return run()
    finally:
        z3.set_param("smt.random_seed", base)
        z3.set_param("sat.random_seed", base)


def resume(protocol: Protocol, learned: Learned, at: Bounds, deadline: float | None = None, note: Any = None,
           enc: Any = None) -> Learned:
    """One more stage of :func:`learn` at ``at``, from what ``learned``'s last stage needed (it must be
    :attr:`Learned.ok`), keeping Houdini's whole fixpoint: for a caller that tried those families at ``at``
    first (a bounded proof: Houdini and induction at its bounds, where the stage's own Houdini there ran
    the same queries first; PROVE.md, 6 Dec, s6) and goes on learning only where they failed."""
    assert learned.ok and learned.found is not None
    st = learn_at(protocol, at, learned.found, learned.lemmas, deadline, note, trim=False, enc=enc)
    key = f"houdini and cores at {at.short()}"
    part = {**learned.seconds_by_part, key: learned.seconds_by_part.get(key, 0.0) + st.seconds}
    done = [*learned.stages, st]
    if st.needed is None:
        return Learned([], done, learned.sampled, learned.enumerated, part, st.why or "no fixpoint", learned.found)
    if note:
        note(f"clauses: at {at.short()}: {len(st.alive)} of {st.offered} families inductive after {st.rounds} rounds")
    return Learned(st.needed, done, learned.sampled, learned.enumerated, part, found=learned.found)
