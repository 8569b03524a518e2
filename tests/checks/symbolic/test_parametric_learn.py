"""The learning loop proved for every N, V, F (checks/symbolic/paramlearn.py) and the parametric
counterexamples to induction it learns from."""

from __future__ import annotations

from pathlib import Path

import pytest

from deferral.checks.symbolic import parametric, paramlearn
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.reference import REFERENCE
from deferral.model.variants import PUBLISHED

EXAMPLES = Path(__file__).parents[3] / "examples"


def test_a_parametric_counterexample_is_read_back_as_a_concrete_state() -> None:
    """With no candidate lemmas the property alone is not inductive: the solver's finite model
    over the uninterpreted sorts, read back, is a state of the concrete model where the
    property holds and the step named breaks it (so the reading is faithful)."""
    engine = parametric.Houdini(REFERENCE, {"queue": 1, "spaces": 1})
    h = engine.run([], parametric.learned_lemmas([], REFERENCE))
    assert h.broken is not None and h.cti is not None, h
    read = engine.cti_state(h.cti)
    assert read is not None
    sizes, state = read
    b = REFERENCE.bounds(**sizes, queue=1, spaces=1)
    model = Model(REFERENCE, b)
    prop = next(p for p in model.invariants if p.name == "no_stale_translation")
    step = engine.steps[h.cti[1]][0].name
    assert step in h.broken and model.holds(prop, state)
    assert any(not model.holds(prop, post) for action, post in model.successors(state)
               if action.step.name == step), (b, model.to_json(state))


def test_samples_come_from_instances_where_small_facts_die() -> None:
    """Three VCPUs, two pages and frames at the requested Q and S, read from the declared bounds."""
    plan = paramlearn.sample_plan(REFERENCE, {"queue": 2, "spaces": 1})
    assert [(b, how) for b, how in plan][-1] == (Bounds(3, 2, 2, 2), "walks")
    assert all(b.queue == 2 for b, _ in plan) and Bounds(2, 1, 1, 2) == plan[0][0]
    assert paramlearn.busiest(REFERENCE) == "vcpus"
    assert paramlearn.open_bounds(REFERENCE) == ["vcpus", "pages", "frames"]


def test_a_bug_is_refused_quickly() -> None:
    """A few seconds: samples at the smallest instance only (they include the violation)."""
    bug = PUBLISHED["reload-no-drain"]
    conc = {"queue": 1, "spaces": 1}
    data = paramlearn.sample(bug, paramlearn.sample_plan(bug, conc)[:1])
    r = paramlearn.learn(bug, conc, timeout=8, data=data, bounded_first=False)
    assert r.status == "unknown" and r.reason, r.to_json()
    # where the time went, by part (given samples: no sampling time)
    parts = r.to_json()["seconds_by_part"]
    assert parts["sampling"] == 0.0 and any(k.startswith("bounded houdini and cores at") for k in parts), parts
    assert any(k.startswith("seconds by part: ") for k in r.log)


@pytest.mark.slow  # 35-130 s on the loaded 2-core machine (4 Dec, CLI: 34-49 s wall, 16-18 s CPU at load 8-9)
def test_wait_irqs_off_is_proved_for_every_n_without_the_shipped_lemmas() -> None:
    """No hand-written lemma offered: the families learned from reachable states are proved
    over uninterpreted sorts (the proof is parametric.prove's unsat answers, not the samples)."""
    r = paramlearn.learn(PUBLISHED["wait-irqs-off"], {"queue": 1, "spaces": 1}, timeout=240)
    assert r.status == "proved" and r.proof is not None and r.proof.status == "proved", r.to_json()
    assert not r.lemmas and r.families and r.proof.open_bounds == ["vcpus", "pages", "frames"]
    assert all(o.status == "proved" for o in r.proof.obligations)


@pytest.mark.slow  # 15-95 s each on a loaded machine
@pytest.mark.parametrize("name", ["drain-local-only", "ipi-before-drain", "remote-no-drain", "reload-no-drain",
                                  "overflow-drop"])
def test_a_published_bug_is_never_proved(name: str) -> None:
    """As auto runs it: the shipped lemmas offered beside the learned families."""
    from deferral.model.invariant import invariant_for

    r = paramlearn.learn(PUBLISHED[name], {"queue": 1, "spaces": 1}, timeout=60,
                         lemmas=list(invariant_for(Bounds(2, 1, 1, 1))))
    assert r.status == "unknown" and r.reason, r.to_json()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["defer-non-current", "switch-no-drain", "resync-running-only"])
def test_an_address_space_bug_is_never_proved(name: str) -> None:
    r = paramlearn.learn(PUBLISHED[name], {"queue": 1, "spaces": 2}, timeout=60)
    assert r.status == "unknown" and r.reason, r.to_json()


@pytest.mark.slow  # 15-95 s each on a loaded machine
@pytest.mark.parametrize("name", ["same-value", "ipi_unlock_after_flush.py", "invlpg_sync_one.py", "defer_all_spaces.py"])
def test_a_mutant_is_never_proved(name: str) -> None:
    """The buggy mutants of test_examples_safe (check finds each violated) are refused too."""
    from test_examples_safe import MUTANTS, _mutant, same_value_mutant

    protocol, bounds = (same_value_mutant(), Bounds(2, 1, 1, 1)) if name == "same-value" else (
        _mutant(name), MUTANTS[name][0])
    r = paramlearn.learn(protocol, dict(bounds), timeout=60)
    assert r.status == "unknown" and r.reason, r.to_json()


@pytest.mark.slow  # about 70 s on a loaded 2-core machine (load 10-13, beside another test)
def test_a_safe_change_gets_the_lemma_it_needs_for_every_n() -> None:
    """lazy_cur_clear breaks "cur[k] names a VCPU exactly when pc[k] is Ipi": with the shipped
    lemmas offered, the loop learns what replaces it and proves the change for every N, V, F."""
    from deferral.model.invariant import invariant_for
    from deferral.model.variants import load_variant_file

    protocol = load_variant_file(EXAMPLES / "lazy_cur_clear.py")
    r = paramlearn.learn(protocol, {"queue": 1, "spaces": 1}, timeout=400,
                         lemmas=list(invariant_for(Bounds(2, 1, 1, 1))))
    assert r.status == "proved" and r.proof is not None and r.proof.status == "proved", r.to_json()
    assert r.families and r.proof.open_bounds == ["vcpus", "pages", "frames"]


def test_relevance_keeps_the_shipped_lemmas_and_names_what_a_query_needs() -> None:
    """At 2,1,1 the shipped lemmas are inductive with the property (Houdini keeps them all);
    the property's consecution by a step uses only some of them (its bounded unsat core);
    with no candidates, the property alone has a counterexample to induction there, a state
    where it holds."""
    from deferral.checks.symbolic.relevance import Relevance
    from deferral.model.invariant import invariant_for

    at = Bounds(2, 1, 1, 1)
    rel = Relevance(REFERENCE, at)
    must = parametric.learned_lemmas([], REFERENCE)
    shipped = list(invariant_for(at))
    alive, broke, _ = rel.houdini(shipped, must, None)
    assert broke is None and [lem.name for lem in alive] == [lem.name for lem in shipped]
    live = [lem.name for lem in alive + must]
    core = rel.core(must[0].name, "finish_invlpg", live)
    assert core is not None and core < set(live), core
    assert rel.core(must[0].name, "no such step", live) is None
    _, broke, state = rel.houdini([], must, None)
    assert broke == must[0].name and state is not None
    model = Model(REFERENCE, at)
    assert model.holds(next(p for p in model.invariants if p.name == broke), state)


def test_relevance_support_is_an_inductive_subset_for_the_property() -> None:
    """The closure of unsat cores the property needs at 2,1,1 (what the parametric Houdini is
    given when many families are inductive there) is a proper subset of the shipped lemmas
    that still makes the property inductive there; with nothing to support it, None."""
    from deferral.checks.symbolic.relevance import Relevance
    from deferral.model.invariant import invariant_for

    at = Bounds(2, 1, 1, 1)
    rel = Relevance(REFERENCE, at)
    must = parametric.learned_lemmas([], REFERENCE)
    shipped = [lem for lem in invariant_for(at) if lem.name not in {m.name for m in must}]
    support = rel.support(shipped, must, None)
    assert support is not None and 0 < len(support) <= len(shipped), support
    alive, broke, _ = rel.houdini(support, must, None)
    assert broke is None and len(alive) == len(support)
    assert rel.support([], must, None) is None


def _undecided_engine(refuted: bool) -> tuple[parametric.Houdini, list[int]]:
    """A parametric Houdini whose solver never decides (each query counted), with a bounded check
    that says the property is (``refuted``) or is not broken given the live candidates."""
    import z3

    engine = parametric.Houdini(REFERENCE, {"queue": 1, "spaces": 1}, candidate_s=1.0)
    asked: list[int] = []

    def never(s: object, goal: object, assume: object, each: object = None, seeds: int = 2) -> tuple[object, str]:
        asked.append(seeds)
        return z3.unknown, "timeout"

    engine._ask = never  # type: ignore[method-assign]
    engine._ask_fresh = lambda lem, n, alive: z3.unknown  # type: ignore[method-assign]
    engine.refuted_at = lambda alive: refuted
    return engine, asked


def test_an_undecided_property_query_stops_where_a_bounded_instance_breaks_it() -> None:
    """Where the bounded instance has a counterexample to the property's induction given the live
    candidates, the parametric Houdini stops at the property's first undecided seed and says so
    (not "proved": the property is broken); where it has none, every seed is tried as before and the
    reason is Z3's."""
    must = parametric.learned_lemmas([], REFERENCE)
    engine, asked = _undecided_engine(True)
    h = engine.run([], must, timeout=60)
    assert h.broken is not None and "not preserved at a bounded instance" in h.broken, h.broken
    assert asked == [1] and engine.refuted_by_bound
    engine, asked = _undecided_engine(False)
    h = engine.run([], must, timeout=60)
    assert h.broken is not None and "Z3 did not decide" in h.broken and not engine.refuted_by_bound, h.broken
    assert asked[0] == 1 and sum(asked) > 1, asked


def test_fixed_candidates_need_no_samples() -> None:
    """Given fixed candidates that prove the property (the shipped lemmas of wait-irqs-off), the
    learner proves it for every N, V, F without sampling a state: the samples are taken only when
    a counterexample to induction has to be excluded."""
    from deferral.model.invariant import invariant_for

    r = paramlearn.learn(PUBLISHED["wait-irqs-off"], {"queue": 1, "spaces": 1}, timeout=120,
                         lemmas=list(invariant_for(Bounds(2, 1, 1, 1))))
    assert r.status == "proved" and r.proof is not None and r.proof.status == "proved", r.to_json()
    assert r.sampled == [] and r.seconds_by_part["sampling"] == 0.0, r.to_json()


def test_a_property_query_left_undecided_is_asked_once_in_a_fresh_context() -> None:
    """Where the engine's own solver leaves a property's query undecided (every seed), it is asked once in a
    fresh Z3 context, whose course does not depend on what the process built before: the property alone
    is not inductive, and that query finds the counterexample the engine's solver did not."""
    must = parametric.learned_lemmas([], REFERENCE)
    engine, asked = _undecided_engine(False)
    del engine._ask_fresh  # the engine's own: a real query in a fresh context
    h = engine.run([], must, timeout=60)
    assert h.broken is not None and "not preserved by" in h.broken and h.cti is not None, h.broken
