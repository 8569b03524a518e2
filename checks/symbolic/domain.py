"""Out-of-domain writes under Z3: which step instances can make one, and a shortest path to one.

The concrete model refuses a write of a value outside its variable's domain (``s.gpt[p] =
s.F + 1``): a :class:`~deferral.model.context.StepError`, and ``check`` exits 2. The Z3
encoding leaves such a transition out of its relation (``valid(y)``, see
:mod:`deferral.checks.terms.encoding`), so a proof alone would say nothing about it and
could "prove" a broken variant. Every method of ``prove`` therefore asks first:

1. :func:`domain_risks`: can some step instance, enabled in some state whose slots all
   hold values of their domains, write outside a domain? One small query per step instance
   that writes a number; no published variant can.
2. If one can, :func:`find_write` looks for a reachable state where it does, breadth-first
   from Init (bounded, like bmc). Found: :class:`DomainError`, the concrete model's own
   message (step, variable, value, state) with the number of steps: bad input, exit 2.
   Not found: the risk stays, and the proof's result cannot be "proved" (unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import z3

from deferral.checks.symbolic.unroll import unrolled
from deferral.checks.terms.encoding import ActionTerms, Encoding, _is_bool_slot
from deferral.model.context import StepError


class DomainError(StepError):
    """A reachable state where a step writes a value outside its variable's domain."""


@dataclass(frozen=True)
class Risk:
    """A step instance that can write outside a domain from some in-domain state."""

    index: int  # the action's index in the model
    label: str  # write(i=0, p=0, f=1)
    slots: tuple[str, ...]  # the variables it may write out of their domain

    def describe(self) -> str:
        return f"step {self.label} may write outside the domain of {', '.join(self.slots)}"


def out_of_domain(enc: Encoding, terms: ActionTerms) -> Any | None:
    """The condition (over the state ``terms`` were built on) under which the step instance
    writes some number outside its slot's domain, or None where it never can."""
    slots = enc.layout.slots
    bad = [z3.UGE(value, slots[j].size) for j, value in terms.updates.items() if not _is_bool_slot(slots[j])]
    if not bad:
        return None
    cond = z3.simplify(z3.Or(bad))
    return None if z3.is_false(cond) else cond


def domain_risks(enc: Encoding, timeout: float | None = None) -> list[Risk]:
    """Every step instance that, enabled in some in-domain state, writes outside a domain.

    An instance Z3 cannot decide within ``timeout`` counts as a risk (never proved by default).
    """
    xs = enc.state("dom")
    solver = z3.SolverFor("QF_BV")
    solver.add(enc.valid(xs))
    if timeout is not None:
        solver.set("timeout", max(1, int(timeout * 1000)))
    slots = enc.layout.slots
    every = enc.action_terms(xs)
    whole = [z3.And(t.guard, z3.Or(bad)) for t in every
             if (bad := [z3.UGE(v, slots[j].size) for j, v in t.updates.items() if not _is_bool_slot(slots[j])])]
    if not whole or solver.check(z3.Or(whole)) == z3.unsat:
        return []  # one query for every instance first: no step can (the usual answer)
    risks = []
    for terms in every:
        cond = out_of_domain(enc, terms)
        if cond is None or solver.check(terms.guard, cond) == z3.unsat:
            continue
        names = tuple(slots[j].label() for j, v in terms.updates.items() if not _is_bool_slot(slots[j])
                      and solver.check(terms.guard, z3.UGE(v, slots[j].size)) != z3.unsat)
        risks.append(Risk(terms.index, terms.label(), names))
    return risks


def find_write(enc: Encoding, risks: Sequence[Risk], max_depth: int, timeout: float | None = None) -> int:
    """Raise :class:`DomainError` for the shortest path (up to ``max_depth`` steps) to a state where
    a risky step writes outside a domain; else return the deepest depth searched in full."""
    by_index = {r.index: r for r in risks}
    checked = -1
    for d, solver, states in unrolled(enc, max_depth, timeout, prefix="w"):
        writes = []
        for terms in enc.action_terms(states[d]):
            cond = out_of_domain(enc, terms) if terms.index in by_index else None
            if cond is not None:
                writes.append(z3.And(terms.guard, cond))
        answer = solver.check(z3.Or(writes)) if writes else z3.unsat
        if answer == z3.unknown:
            break
        if answer == z3.sat:
            path = enc.replay([enc.decode(solver.model(), xs) for xs in states])
            _raise_concrete(enc, path[-1][1], d, [r.index for r in risks])
        checked = d
    return checked


def _raise_concrete(enc: Encoding, state: Any, depth: int, indexes: Sequence[int]) -> None:
    """Run the risky step instances on the concrete ``state``: the one that writes outside a
    domain raises the model's StepError, re-raised as DomainError with the path's length."""
    model = enc.model
    for index in indexes:
        try:
            model.apply(state, model.actions[index])
        except StepError as exc:
            raise DomainError(f"{exc} (reached in {depth} steps from the initial state; found by Z3 "
                              f"before proving anything)") from None
    raise AssertionError("the solver's out-of-domain write is not one of the concrete model")
