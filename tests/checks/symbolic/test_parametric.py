"""The parametric encoding (checks/parametric.py) agrees with the reference, and its proof.

checks/parametric.py restates the protocol by hand (uninterpreted sorts cannot run the
reference's ``range(s.N)`` loops), so these tests are what licenses it: instantiated at
finite sorts, its transition relation allows exactly ``Model.successors`` from reachable
states, and each lemma agrees with model/invariant.py on random (mostly unreachable) states.
"""

from __future__ import annotations

import random
from itertools import product

import pytest
import z3

from deferral.checks.symbolic import parametric as P
from deferral.model import PUBLISHED, REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.invariant import INVARIANT


def reachable(model: Model, limit: int) -> list[tuple[int, ...]]:
    """The first ``limit`` canonical reachable states in BFS order."""
    seen, order, n = {model.initial}, [model.initial], 0
    while n < len(order) and len(order) < limit:
        for _, t in model.successors(order[n]):
            c = model.canonical(t)
            if c not in seen:
                seen.add(c)
                order.append(c)
        n += 1
    return order[:limit]


def relation(bounds: Bounds) -> tuple[P.Universe, P.Bridge, z3.Solver, P.State, P.State]:
    u = P.Universe(bounds.queue, (bounds.vcpus, bounds.pages, bounds.frames))
    x, y = u.state("x"), u.state("y")
    solver = z3.Solver()
    solver.add(P.trans(u, x, y))
    return u, P.Bridge(u, Model(REFERENCE, bounds).layout), solver, x, y


@pytest.mark.parametrize("bounds,limit,stride,every_step", [
    pytest.param(Bounds(2, 1, 1, 1), 3163, 9, True, marks=pytest.mark.slow),  # ~20 s
    (Bounds(2, 2, 1, 1), 300, 3, False)])
def test_successors_agree_with_the_model(bounds: Bounds, limit: int, stride: int, every_step: bool) -> None:
    """A sample of the canonical reachable states (all 3,163 at N=2,V=1: benchmarks/PROVE.md)."""
    model = Model(REFERENCE, bounds)
    states = reachable(model, limit)[::stride]
    u, bridge, solver, x, y = relation(bounds)
    steps_seen = set()
    for state in states:
        want = {t for _, t in model.successors(state)}
        steps_seen |= {a.step.name for a, _ in model.successors(state)}
        assert P.successors(u, bridge, solver, x, y, state) == want, model.to_json(state)
    if every_step:  # every step fires somewhere in the sample
        assert steps_seen == set(P.STEP_NAMES)


def test_a_mutant_is_told_apart() -> None:
    """The agreement check can fail: drain-local-only's successors differ somewhere."""
    bounds = Bounds(2, 1, 1, 1)
    mutant = Model(PUBLISHED["drain-local-only"], bounds)
    u, bridge, solver, x, y = relation(bounds)
    assert any(P.successors(u, bridge, solver, x, y, s) != {t for _, t in mutant.successors(s)}
               for s in reachable(mutant, 400))


@pytest.mark.parametrize("bounds", [Bounds(2, 1, 1, 1), Bounds(2, 2, 2, 2),
                                    pytest.param(Bounds(3, 2, 1, 2), marks=pytest.mark.slow)])  # ~20 s
def test_lemmas_agree_with_their_finite_form(bounds: Bounds) -> None:
    model = Model(REFERENCE, bounds)
    layout = model.layout
    u = P.Universe(bounds.queue, (bounds.vcpus, bounds.pages, bounds.frames))
    x = u.state("x")
    bridge = P.Bridge(u, layout)
    assert [lem.name for lem in P.LEMMAS] == [lem.name for lem in INVARIANT]
    rng = random.Random(7)
    sizes = [len(c) for c in bridge.cands]
    states = reachable(model, 50) + [tuple(rng.randrange(n) for n in sizes) for _ in range(150)]
    # biased states: mostly defaults, a few random slots (breaks one lemma at a time)
    for _ in range(150):
        st = list(model.initial)
        for j in rng.sample(range(len(st)), 3):
            st[j] = rng.randrange(sizes[j])
        states.append(tuple(st))
    solver = z3.Solver()
    truth = {True: 0, False: 0}
    for state in states:
        solver.push()
        solver.add(*bridge.equalities(x, state))
        ctx = model.context(state)
        for plem, lem in zip(P.LEMMAS, INVARIANT):
            finite = all(bool(lem.fn(ctx, *args)) for args in
                         product(*(range(d.size(bounds)) for _, d in lem.params)))
            parametric = solver.check(z3.Not(plem.term(u, x))) == z3.unsat
            assert parametric == finite, (plem.name, model.to_json(state))
            truth[finite] += 1
        solver.pop()
    assert truth[True] and truth[False]


def test_parametric_proof_at_queue_1() -> None:
    """No CTI, and every obligation proved except possibly the two MBQI-hard consecutions
    (send_ipis, ack_ipi), whose time varies with the seed and the machine's load: those may
    end unknown, and then the result must say unknown (exit 3), never proved."""
    res = P.prove(1, timeout=90)
    assert [o.name for o in res.obligations][0] == "initiation"
    assert len(res.obligations) == 15
    hard = {"consecution send_ipis", "consecution ack_ipi"}
    for o in res.obligations:
        assert o.status == "proved" or (o.status == "unknown" and o.name in hard and o.reason), o
    assert (res.status, res.exit_code) in {("proved", 0), ("unknown", 3)}


def test_cli_parametric_refuses_other_variants(capsys: pytest.CaptureFixture[str]) -> None:
    from deferral.cli.main import main

    assert main(["prove", "--parametric", "--variant", "drain-local-only"]) == 2
    assert "reference only" in capsys.readouterr().err
