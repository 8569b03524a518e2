"""Generalize Spacer's invariant at small bounds into lemma families for any bounds.

:func:`deferral.checks.symbolic.pdr.pdr` with the one-hot encoding returns an invariant that is a
conjunction of clauses over atoms ``slot=value`` of the small configuration (e.g.
N=2,V=1,F=1,Q=1). The protocol is symmetric in VCPUs (PROTOCOL.md, Symmetry), in pages
and in the non-zero frame values (a step only ever compares a frame with 0 or copies
it), so a clause about VCPUs 0 and 1, page 0 and frame 1 is read as a *template*
quantified over distinct VCPUs ``i``, ``k``, distinct pages ``p``, ``q`` and distinct
non-zero frames ``f``: every index and every value of those sorts becomes a parameter
(VCPU-valued ``lw``/``cur`` keep "none" as a constant; queue positions, lengths, ``pc``
and frame 0 stay constants).

A clause's literals on one slot say "the slot's value is in a set A"; that can be
written positively (``x in A``) or negatively (``x not in complement(A)``), which are
equivalent at the small bounds but not after generalization (``lw[p] in {0, 1}`` becomes
``lw[p] in {i, k}``, while ``lw[p] not in {none}`` stays "has a last writer"). Every
combination of the two readings is offered as a candidate (at most
:data:`MAX_VARIANTS` per clause), and :func:`deferral.checks.symbolic.induction.houdini` keeps
the instances that are inductive at the requested bounds. Soundness does not depend on
this module: whatever is kept is checked by induction at the requested bounds.

A :class:`Template` is plain data (saved and loaded as JSON by ``--invariant-out`` /
``--lemmas``), and :meth:`Template.lemma` turns it into a
:class:`~deferral.model.invariant.Lemma` evaluated by the StepContext like the shipped
lemmas (on Z3 terms and concrete states alike).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import permutations, product
from typing import Any, Iterable, Sequence

import z3

from deferral.model.bounds import Bounds
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol
from deferral.model.schema import BOOL, FRAME, PAGE, SPACE, VCPU, Domain, Enum, Layout, OrNone, Pair, Queue, Sort, Var

#: Candidate readings kept per Spacer clause (positive/negative set forms per slot).
MAX_VARIANTS = 64
SORT_NAMES = {"vcpu": ("i", "k", "j", "l"), "page": ("p", "q", "r"), "frame": ("f", "g", "h")}
#: The reference's parameter sorts; :func:`sort_domains` reads any protocol's declaration.
SORT_DOMAIN: dict[str, Domain] = {"vcpu": VCPU, "page": PAGE, "frame": FRAME, "space": SPACE}


def sort_domains(variables: Iterable[Var]) -> dict[str, Domain]:
    """Every sort the variables are indexed by or hold, by name, and the frames (non-zero values)."""
    out: dict[str, Domain] = {}
    for var in variables:
        for d in (*var.index, var.domain):
            sort = d.sort if isinstance(d, OrNone) else d
            if isinstance(sort, Sort):
                out.setdefault(sort.name, sort)
            elif d is FRAME:
                out.setdefault("frame", FRAME)
    return out


def param_names(sort: str) -> tuple[str, ...]:
    """Parameter names of a sort in lemma templates (i, k, ... for VCPUs; s0, s1, ... otherwise)."""
    return SORT_NAMES.get(sort, tuple(f"{sort[0]}{n}" for n in range(8)))
Token = Any  # a parameter name (str), an int constant, or "none"


class GeneralizeError(ValueError):
    """A lemma file or a clause this module cannot read."""


@dataclass(frozen=True)
class Literal:
    """``var[index]<part>`` is (``positive``) / is not one of ``values``; bools: is true / false."""

    var: str
    index: tuple[Token, ...]
    part: Any  # None, "len", a queue position, or "has" (the queue holds the page values[0])
    positive: bool
    values: tuple[Token, ...]  # empty for a bool slot

    def show(self) -> str:
        text = self.var + "".join(f"[{t}]" for t in self.index)
        if self.part == "has":
            return f"{text} {'holds' if self.positive else 'lacks'} {self.values[0]}"
        text = f"len({text})" if self.part == "len" else (f"{text}<{self.part}>" if self.part is not None else text)
        if not self.values:
            return text if self.positive else f"!{text}"
        if len(self.values) == 1:
            return f"{text} {'==' if self.positive else '!='} {self.values[0]}"
        shown = "{" + ", ".join(str(v) for v in self.values) + "}"
        return f"{text} {'in' if self.positive else 'not in'} {shown}"

    def to_json(self) -> dict[str, Any]:
        return {"var": self.var, "index": list(self.index), "part": self.part, "positive": self.positive,
                "values": list(self.values)}


@dataclass(frozen=True)
class Template:
    """A disjunction of literals, for all distinct parameters of each sort (frames non-zero)."""

    params: tuple[tuple[str, str], ...]  # (name, sort)
    literals: tuple[Literal, ...]

    def body(self) -> str:
        return " | ".join(lit.show() for lit in self.literals)

    def show(self) -> str:
        if not self.params:
            return self.body()
        return f"for all {', '.join(n for n, _ in self.params)}: {self.body()}"

    def to_json(self) -> dict[str, Any]:
        return {"params": [list(p) for p in self.params], "clause": [lit.to_json() for lit in self.literals],
                "shown": self.show()}

    def lemma(self, sorts: dict[str, Domain] | None = None) -> Lemma:
        """The template as a lemma; ``sorts`` maps sort names to domains (default: the reference's)."""
        sorts = SORT_DOMAIN if sorts is None else sorts
        params = tuple((name, sorts[sort]) for name, sort in self.params)
        return Lemma(self.body(), params, self._holds)

    def _holds(self, s: Any, *args: int) -> Any:
        env = dict(zip((n for n, _ in self.params), args))
        for sort in {srt for _, srt in self.params}:
            vals = [env[n] for n, srt in self.params if srt == sort]
            if len(set(vals)) != len(vals) or (sort == "frame" and 0 in vals):
                return True  # not an instance: parameters of a sort are distinct, frames non-zero
        return s.any(_literal(s, lit, env) for lit in self.literals)


def _value(s: Any, token: Token, env: dict[str, int], domain: Domain | None = None) -> int:
    if token == "none":
        return domain.none(s.bounds) if isinstance(domain, OrNone) else s.N
    if isinstance(token, str) and token not in env and isinstance(domain, Enum):
        return domain.parse(token, s.bounds)  # an enum value by name (pc[i] == SdWait)
    return env[token] if isinstance(token, str) else int(token)


def _literal(s: Any, lit: Literal, env: dict[str, int]) -> Any:
    index = [_value(s, t, env) for t in lit.index]
    view = getattr(s, lit.var)
    for i in index:
        view = view[i]
    if lit.part == "has":
        page = _value(s, lit.values[0], env)
        hit = s.any((view.length > pos) & (view[pos] == page) for pos in range(view.capacity))
        return hit if lit.positive else s.not_(hit)
    if lit.part == "len":
        read = view.length
    elif lit.part is not None:
        read = view[int(lit.part)]
    else:
        read = view
    if not lit.values:
        return read if lit.positive else s.not_(read)
    domain = s._layout.var(lit.var).domain
    hit = s.any(read == _value(s, t, env, domain) for t in lit.values)
    return hit if lit.positive else s.not_(hit)


# ---- from Spacer's clauses -----------------------------------------------------------------
def _clause_literals(term: Any) -> list[tuple[str, bool]] | None:
    """A clause as (atom name, polarity) pairs, or None if it is not a disjunction of literals."""
    parts = term.children() if z3.is_or(term) else [term]
    out = []
    for part in parts:
        positive = True
        if z3.is_not(part):
            positive, part = False, part.arg(0)
        if not (z3.is_const(part) and part.decl().kind() == z3.Z3_OP_UNINTERPRETED):
            return None
        out.append((part.decl().name(), positive))
    return out


def _value_sort(layout: Layout, slot_no: int) -> str | None:
    slot = layout.slots[slot_no]
    if slot.part == "len":
        return None
    domain = slot.var.domain
    if isinstance(domain, Pair) and domain.first.single(layout.bounds):
        domain = domain.second  # a notice at one space is its page
    if isinstance(domain, OrNone):
        return domain.sort.name
    if isinstance(domain, Sort):
        return domain.name
    if domain is FRAME:
        return "frame"
    return None


def templates_from_clause(term: Any, atoms: dict[str, tuple[int, int | None]], layout: Layout) -> list[Template]:
    """Every candidate reading of one Spacer clause (empty if it is not a clause of atoms)."""
    lits = _clause_literals(term)
    if lits is None or any(name not in atoms for name, _ in lits):
        return []
    bounds = layout.bounds
    allowed: dict[int, set[int]] = {}
    bools: dict[int, set[bool]] = {}
    for name, positive in lits:
        slot_no, value = atoms[name]
        if value is None:
            bools.setdefault(slot_no, set()).add(positive)
            continue
        size = layout.slots[slot_no].size
        allowed.setdefault(slot_no, set()).update({value} if positive else set(range(size)) - {value})
    if any(len(pols) == 2 for pols in bools.values()):
        return []  # x | !x: trivially true
    if any(len(vals) == layout.slots[j].size for j, vals in allowed.items()):
        return []
    readings: list[list[tuple[int, bool, tuple[int, ...]]]] = []
    for j, vals in sorted(allowed.items()):
        comp = tuple(sorted(set(range(layout.slots[j].size)) - vals))
        forms = [(j, True, tuple(sorted(vals))), (j, False, comp)]
        if not _value_sort(layout, j):
            forms = [min(forms, key=lambda f: len(f[2]))]
        slot = layout.slots[j]
        if slot.part == "len" and bounds.pages == 1 and (vals == {0} or 0 in comp and len(comp) == 1):
            # one page: "queue[i] is not empty" is "queue[i] holds page p"; offer that reading
            forms = forms + [(j, 0 not in vals, ("has",))]
        readings.append(forms)
    # one page: a VCPU's page-valued variable (pg[i]) always names it; offer "or pg[i] is another page"
    weaken = [j for j, s in enumerate(layout.slots) if bounds.pages == 1 and s.part is None
              and s.var.domain is PAGE and s.var.index == (VCPU,)
              and any(layout.slots[a].index[:1] == s.index and layout.slots[a].var.index[:1] == (VCPU,)
                      for a in allowed)]
    if weaken and any(layout.slots[j].var.index[-1:] == (PAGE,) or _value_sort(layout, j) == "page"
                      or layout.slots[j].part == "len" for j in allowed):
        readings.append([None, *[(j, False, (0,)) for j in weaken]] if len(weaken) == 1 else [None])
    out: list[Template] = []
    seen: set[str] = set()
    for combo in product(*readings):
        combo = tuple(c for c in combo if c is not None)
        if len(out) >= MAX_VARIANTS:
            break
        t = _template(combo, bools, layout, bounds)
        key = t.show()
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def _template(combo: Sequence[tuple[int, bool, tuple[Any, ...]]], bools: dict[int, set[bool]], layout: Layout,
              bounds: Bounds) -> Template:
    names: dict[tuple[str, int], str] = {}
    sorts = sort_domains(layout.variables)

    def param(sort: str, small: int) -> str:
        key = (sort, small)
        if key not in names:
            used = sum(1 for s, _ in names if s == sort)
            names[key] = param_names(sort)[used]
        return names[key]

    def token(sort: str | None, small: int) -> Token:
        if sort == "frame":
            return param("frame", small) if small != 0 else small
        if sort is not None:
            return "none" if small >= sorts[sort].size(bounds) else param(sort, small)
        return small

    def shown(slot_no: int, small: int) -> Token:
        slot = layout.slots[slot_no]
        if slot.part is None and isinstance(slot.var.domain, Enum):
            return slot.var.domain.show(small, bounds)
        return token(_value_sort(layout, slot_no), small)

    literals = []
    entries: list[tuple[int, bool, tuple[Any, ...] | None]] = [(j, pos, vals) for j, pos, vals in combo]
    entries += [(j, next(iter(pols)), None) for j, pols in bools.items()]
    for j, positive, vals in sorted(entries, key=lambda e: e[0]):
        slot = layout.slots[j]
        index = tuple(0 if d.single(bounds) else token(d.name, i) for d, i in zip(slot.var.index, slot.index))
        if vals == ("has",):
            literals.append(Literal(slot.var.name, index, "has", positive, (param("page", 0),)))
            continue
        values = () if vals is None else tuple(shown(j, v) for v in vals)
        literals.append(Literal(slot.var.name, index, slot.part, positive, values))
    params = tuple((name, sort) for (sort, _), name in sorted(names.items(), key=lambda kv: kv[1]))
    return _canonical(Template(params, tuple(literals)))


def _canonical(t: Template) -> Template:
    """The least (by text) renaming of the parameters within each sort, literals sorted."""
    best: Template | None = None
    by_sort = {sort: [n for n, s in t.params if s == sort] for sort in sorted({s for _, s in t.params})}
    for perms in product(*(permutations(ns) for ns in by_sort.values())):
        rename = {}
        for ns, perm in zip(by_sort.values(), perms):
            rename.update(dict(zip(ns, perm)))

        def sub(tok: Token) -> Token:
            return rename.get(tok, tok) if isinstance(tok, str) else tok

        lits = tuple(sorted((Literal(l.var, tuple(sub(x) for x in l.index), l.part, l.positive,
                                     tuple(sorted((sub(x) for x in l.values), key=str))) for l in t.literals),
                            key=lambda l: l.show()))
        cand = Template(tuple(sorted(t.params)), lits)
        if best is None or cand.show() < best.show():
            best = cand
    assert best is not None
    return best


def generalize(invariant: Any, atoms: dict[str, tuple[int, int | None]], layout: Layout) -> list[Template]:
    """Candidate lemma families from a one-hot Spacer invariant over ``layout``'s slots."""
    conjuncts = invariant.children() if z3.is_and(invariant) else [invariant]
    out: dict[str, Template] = {}
    for c in conjuncts:
        for t in templates_from_clause(c, atoms, layout):
            out.setdefault(t.show(), t)
    return sorted(out.values(), key=lambda t: (len(t.literals), t.show()))


# ---- saving and loading -----------------------------------------------------------------
def save(templates: Iterable[Template], protocol: Protocol, inferred_at: Bounds | None) -> dict[str, Any]:
    return {"format": "deferral-lemmas/1", "variant": protocol.name,
            "inferred_at": inferred_at.as_dict() if inferred_at else None,
            "lemmas": [t.to_json() for t in templates]}


def load(text: str) -> list[Template]:
    """Templates from a ``deferral-lemmas/1`` JSON document (raises GeneralizeError, one line)."""
    try:
        doc = json.loads(text)
        if doc.get("format") != "deferral-lemmas/1":
            raise GeneralizeError("not a lemmas file prove --invariant-out writes (deferral-lemmas/1, "
                                  "deferral-lemmas/2 or deferral-weakened/1)")
        out = []
        for entry in doc["lemmas"]:
            params = tuple((str(n), str(s)) for n, s in entry["params"])
            if any(not s.isidentifier() for _, s in params):
                raise GeneralizeError(f"unknown parameter sort in {params}")
            lits = tuple(Literal(str(l["var"]), tuple(l["index"]), l["part"], bool(l["positive"]),
                                 tuple(l["values"])) for l in entry["clause"])
            out.append(Template(params, lits))
        return out
    except GeneralizeError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise GeneralizeError(f"malformed lemma file: {type(exc).__name__}: {exc}") from None


def check_against(templates: Sequence[Template], layout: Layout) -> None:
    """Raise GeneralizeError if a template names a variable the protocol does not have."""
    names = {v.name: v for v in layout.variables}
    sorts = sort_domains(layout.variables)
    for t in templates:
        unknown = sorted({s for _, s in t.params} - set(sorts))
        if unknown:
            raise GeneralizeError(f"lemma {t.show()!r}: the protocol has no sort {', '.join(unknown)}")
        for lit in t.literals:
            var = names.get(lit.var)
            if var is None:
                raise GeneralizeError(f"lemma {t.show()!r}: the protocol has no variable {lit.var!r}")
            if len(lit.index) != len(var.index) or (lit.part is not None) != isinstance(var, Queue) or (
                    lit.part == "has" and len(lit.values) != 1):
                raise GeneralizeError(f"lemma {t.show()!r}: {lit.var} is indexed differently")
            if not lit.values and var.domain is not BOOL:
                raise GeneralizeError(f"lemma {t.show()!r}: {lit.var} is not a bool")
            known = {n for n, _ in t.params} | {"none"}
            for tok in lit.values + lit.index:
                if isinstance(tok, str) and tok not in known and not (
                        isinstance(var.domain, Enum) and tok in var.domain.names):
                    raise GeneralizeError(f"lemma {t.show()!r}: unknown name {tok!r}")
