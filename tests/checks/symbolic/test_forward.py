"""Houdini's counterexamples run forward (checks/symbolic/forward.py): every drop is a step from a state
where the candidates still hold, and Houdini's fixpoint is the same with it, in fewer solver queries."""

from __future__ import annotations

from itertools import product

from deferral.checks.symbolic import clauses
from deferral.checks.symbolic.forward import Forward
from deferral.checks.symbolic.relevance import Relevance
from deferral.checks.symbolic.vocabulary import sample_rows
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.invariant import Lemma

SMALL = Bounds(2, 1, 1, 1)


def _holds(model: Model, lem: Lemma, state: tuple[int, ...]) -> bool:
    """``lem`` in ``state``, by the concrete model, at every parameter assignment (not forward.py's tables)."""
    sizes = [d.size(model.bounds) for _, d in lem.params]
    return all(bool(lem.fn(model.context(state), *args)) for args in product(*(range(n) for n in sizes)))


def _found() -> clauses.Enumerated:
    return clauses.enumerate_all(REFERENCE, [(SMALL, sample_rows(REFERENCE, SMALL))])


def _first_counterexample(fams: list[Lemma]) -> tuple[str, tuple[int, ...]]:
    """The first family the solver's Houdini drops and the pre-state of the step that broke it (a state where
    every candidate holds)."""
    rel = Relevance(REFERENCE, SMALL)
    rel.houdini(fams, [], None)
    return rel.dropped[0]


def test_every_drop_is_a_step_from_a_state_where_the_candidates_left_hold() -> None:
    model = Model(REFERENCE, SMALL)
    found = _found()
    fams = found.families
    first, state = _first_counterexample(fams)
    alive = [lem for lem in fams if _holds(model, lem, state)]
    assert all(model.holds(p, state) for p in model.invariants) and first in {lem.name for lem in alive}
    dropped = Forward(REFERENCE, SMALL).drops(state, alive)
    assert first in dropped and len(dropped) > 1  # the solver's one and more
    assert Forward(REFERENCE, SMALL, found.signatures).drops(state, alive) == dropped  # the tables agree
    near = {state} | {post for _, post in model.successors(state)}
    kept = [lem for lem in alive if lem.name not in dropped]
    by_name = {lem.name: lem for lem in alive}
    for name, pre in dropped.items():
        assert pre in near  # the counterexample itself or a step on
        assert all(model.holds(p, pre) for p in model.invariants)
        assert all(_holds(model, lem, pre) for lem in kept)  # a state of Houdini's kind
        assert any(not _holds(model, by_name[name], post) for _, post in model.successors(pre))


def test_houdini_keeps_the_same_fixpoint_in_fewer_queries() -> None:
    """The greatest inductive subset is one set: run forward or not, Houdini ends there; at two pages
    forward drops most families the solver would have dropped a query at a time (26 queries instead of
    106 when written, in a process of its own; 52 instead of 86 in a CI worker that ran other tests first:
    which counterexamples Z3 picks follows what the process built before)."""
    found, b = _found(), Bounds(2, 2, 2, 1)
    plain, fast = Relevance(REFERENCE, b), Relevance(REFERENCE, b)
    forward = Forward(REFERENCE, b, found.signatures)
    alone = plain.houdini(found.families, [], None)
    ahead = fast.houdini(found.families, [], None, forward=forward)
    assert alone[1] is None and ahead[1] is None
    assert {x.name for x in alone[0]} == {x.name for x in ahead[0]} != {x.name for x in found.families}
    assert forward.dropped > len(fast.dropped)  # more by running forward than by the solver's queries
    assert len(fast.dropped) < len(plain.dropped)  # one entry per query that dropped something
    assert set(fast.witness) == set(plain.witness)  # every family dropped says where it broke
