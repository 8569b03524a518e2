"""A small instance's counterexample carried over to larger bounds (checks/symbolic/lift.py) and
auto's use of it: a violation found at 2,1,1 is the answer at large bounds at once, said to be the
shortest only when nothing shorter can exist there."""

from __future__ import annotations

from deferral.checks.explicit.vectorized import explore_vectorized
from deferral.checks.symbolic import exhaust, prove as prove_module
from deferral.checks.symbolic.lift import lift_path
from deferral.checks.symbolic.prove import prove
from deferral.model import PUBLISHED, Bounds
from deferral.model.concrete import Model


def shortest_path(name: str, bounds: Bounds):  # noqa: ANN201
    r = explore_vectorized(PUBLISHED[name], bounds, workers=1)
    bad = next(o for o in r.outcomes if o.name == "no_stale_translation")
    assert bad.status == "violated" and bad.path is not None
    return bad.path


def test_a_counterexample_runs_at_larger_bounds_with_the_same_steps() -> None:
    path = shortest_path("drain-local-only", Bounds(2, 1, 1, 1))
    big = Model(PUBLISHED["drain-local-only"], Bounds(4, 2, 2, 1))
    lifted = lift_path(big, path, "no_stale_translation")
    assert lifted is not None and len(lifted) == len(path) == 9
    assert [(a.name, a.args) for a, _ in lifted[1:]] == [(a.name, a.args) for a, _ in path[1:]]
    state = big.initial
    for action, after in lifted[1:]:  # a real path of the larger model, ending in the violation
        state = big.apply(state, action)
        assert state == after
    assert "no_stale_translation" in {v.prop for v in big.violations(state)}


def test_a_step_waiting_for_a_vcpu_the_small_instance_lacks_follows_that_vcpus_steps() -> None:
    """qa5's lazy-TLB bug at 2,2,1,2 (11 steps): at 3,3,2,2 its shootdown_done waits for the third VCPU's ack,
    so the same steps are no path there; with the small bounds known, the third VCPU's fewest steps that
    enable it come first (it takes and acks the IPI), and the path ends in the violation."""
    from pathlib import Path

    from deferral.checks.explicit.search import search
    from deferral.model.variants import load_variant_file

    protocol = load_variant_file(Path(__file__).parent / "data" / "lazy_partial_bug.py")
    small, big = Bounds(2, 2, 1, 2), Model(protocol, Bounds(3, 3, 2, 2))
    found = search(protocol.invariants_only(), small, until_all_violated=True)
    bad = next(o for o in found.outcomes if o.status == "violated")
    assert bad.path is not None and len(bad.path) - 1 == 11
    assert lift_path(big, bad.path, bad.name) is None  # the old way: not a path at 3 VCPUs
    lifted = lift_path(big, bad.path, bad.name, small)
    assert lifted is not None and len(lifted) - 1 == 13
    extra = [a for a, _ in lifted[1:] if a.label() not in {b.label() for b, _ in bad.path[1:]}]
    assert [a.name for a in extra] == ["take_ipi", "ack_ipi"] and all(2 in a.args for a in extra)
    state = big.initial
    for action, after in lifted[1:]:
        state = big.apply(state, action)
        assert state == after
    assert bad.name in {v.prop for v in big.violations(state)}


def test_steps_that_are_not_a_path_at_the_larger_bounds_give_none() -> None:
    path = shortest_path("drain-local-only", Bounds(2, 1, 1, 1))
    reference = Model(PUBLISHED["reference"], Bounds(3, 1, 1, 1))  # the same steps, but no violation at the end
    assert lift_path(reference, path) is None
    cut = Model(PUBLISHED["drain-local-only"], Bounds(3, 1, 1, 1))
    assert lift_path(cut, path[:-1]) is None  # a prefix ends in no violation


def test_auto_answers_with_the_lifted_path_when_no_shorter_one_is_ruled_out(monkeypatch) -> None:  # noqa: ANN001
    """At bounds where neither the explicit search nor the bmc reaches the small instance's length
    in the time given, the small instance's steps are the answer, not "shortest"; the reason says
    how far shorter ones were ruled out. Before, the bmc there ran until the limit (minutes at
    6,3,3,3 without one) and, at a limit, the answer was unknown."""
    monkeypatch.setattr(exhaust, "EXPLICIT_S", 1.5)  # the explicit search at 4,2,2,1 stops within a second
    monkeypatch.setattr(prove_module, "SHORTER_S", 0.5)  # and the bmc there has no time to rule anything out
    res = prove(PUBLISHED["drain-local-only"], Bounds(4, 2, 2, 1))
    assert res.status == "violated" and res.route.endswith("+lifted") and res.depth == 8
    assert res.shortest is False and "not ruled out" in res.reason
    assert res.path is not None and len(res.path) == 9 and res.model is not None
    assert res.model.violations(res.path[-1][1])


def test_the_lifted_path_is_the_shortest_where_nothing_shorter_exists() -> None:
    """At 3,1,1,1 the bmc rules out every shorter length in time: the lifted 8 steps are the
    shortest there, as the explicit search at 3,1,1,1 says."""
    res = prove(PUBLISHED["drain-local-only"], Bounds(3, 1, 1, 1), timeout=60)
    assert res.status == "violated" and res.depth == 8 and res.shortest is True
    assert len(shortest_path("drain-local-only", Bounds(3, 1, 1, 1))) == 9


def test_auto_finds_a_bug_that_needs_a_second_page_at_bounds_where_it_is_not_searched_whole(monkeypatch) -> None:  # noqa: ANN001
    """qa5's lazy-TLB bug shows only with two pages (2,2,1,1: 11 steps). At 3,2,1,1 auto's smallest instance
    (2,1,1,1) is safe and the explicit search at 3,2,1,1 does not reach that depth in its time: unknown after
    60 s before. The instances one element larger are searched next, and 2,2,1,1's counterexample is carried to
    3,2,1,1 with the third VCPU's steps."""
    from pathlib import Path

    from deferral.model.variants import load_variant_file

    monkeypatch.setattr(exhaust, "EXPLICIT_SHARE", 0.02)  # the explicit search at 3,2,1,1 stops early
    monkeypatch.setattr(prove_module, "SHORTER_SHARE", 0.02)  # and the bmc there has no time for shorter ones
    protocol = load_variant_file(Path(__file__).parent / "data" / "lazy_partial_bug.py")
    res = prove(protocol, Bounds(3, 2, 1, 1), timeout=60)
    assert res.status == "violated" and res.route == "explicit-search+lifted" and res.depth == 13
    assert any("explicit at N=2,V=2,F=1,Q=1: no_stale_translation violated in 11 steps" in line for line in res.log)
    assert res.path is not None and res.model is not None and res.model.violations(res.path[-1][1])


def test_the_ladder_looks_at_one_space_first_where_a_bug_needs_no_second(monkeypatch) -> None:  # noqa: ANN001
    """overflow-drop needs a second page with Q=2 (9 steps at 2,2,1,2). At two spaces the ladder's instances are
    large (2,1,2,2,S=2 alone took its 2,000,000 states, 2,2,1,2,S=2 reaches depth 7 in 1,000,000): unknown after
    60 s at 3,2,2,2,S=2 and S=3 before. At one space first, every instance a little each round: 1,2,1,2 (one VCPU)
    shows it in 9 steps, as 2,2,1,2 does in its first 250,000 states, and they are carried to the requested bounds."""
    monkeypatch.setattr(prove_module, "SHORTER_SHARE", 0.02)  # the bmc there has no time for shorter ones
    bounds = Bounds(2, 2, 2, 2).replace(spaces=2)
    res = prove(PUBLISHED["overflow-drop"], bounds, timeout=60, shipped=False)
    assert res.status == "violated" and res.route == "explicit-search+lifted" and res.depth == 9, res.reason
    assert any("explicit at N=1,V=2,F=1,Q=2: no_stale_translation violated in 9 steps" in line for line in res.log)
    assert res.path is not None and res.model is not None and res.model.violations(res.path[-1][1])
    assert not any(row["route"] == "enumerated" for row in res.stages)  # refuted before any learning


def test_a_violation_of_the_first_look_is_cut_shorter_at_the_ladders_instances(monkeypatch) -> None:  # noqa: ANN001
    """drain-local-only at Q=2: 9 steps at 2,1,1,2, 8 with a third VCPU. At 3,2,1,2, with the explicit search there
    and the bmc for shorter ones given no time, the first look's 9 steps were the answer (shortest: false); the
    ladder's instances around 2,1,1 are searched for fewer steps first, and 3,1,1's 8 are carried over."""
    monkeypatch.setattr(exhaust, "EXPLICIT_SHARE", 0.02)
    monkeypatch.setattr(prove_module, "SHORTER_SHARE", 0.02)
    res = prove(PUBLISHED["drain-local-only"], Bounds(3, 2, 1, 2), timeout=60, shipped=False)
    assert res.status == "violated" and res.route == "explicit-search+lifted" and res.depth == 8, res.reason
    assert any("explicit at N=3,V=1,F=1,Q=2: no_stale_translation violated in 8 steps, fewer than the 9 at "
               "N=2,V=1,F=1,Q=2" in line for line in res.log)
    assert len(shortest_path("drain-local-only", Bounds(2, 1, 1, 2))) == 10  # 9 steps there
