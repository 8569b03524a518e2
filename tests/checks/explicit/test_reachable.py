"""reachable() runs the fast search's own BFS: same states, limits, located errors."""

from __future__ import annotations

import pytest

from deferral.checks.explicit.reachable import TooManyStates, goal_reachable, reachable
from deferral.checks.explicit.vectorized import explore_vectorized
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.variants import get_variant
from deferral.model.context import StepError

SMALL = Bounds(2, 1, 1, 1)


def test_same_states_as_the_search() -> None:
    reach = reachable(REFERENCE, SMALL)
    result = explore_vectorized(REFERENCE, SMALL, workers=1)
    assert (len(reach), reach.depth) == (result.states, result.depth)
    model = Model(REFERENCE, SMALL)
    assert tuple(int(v) for v in reach.rows[0]) == model.canonical(model.initial)
    assert reach.parent[0] == -1 and reach.via[0] == -1


def test_limit_raises() -> None:
    with pytest.raises(TooManyStates, match="more than 100 states"):
        reachable(REFERENCE, SMALL, max_states=100)


def test_from_another_start_state() -> None:
    model = Model(REFERENCE, SMALL)
    state = model.initial
    for name, args in (("shootdown", (0, 0)), ("send_ipis", (0,))):
        action = model.find_action(name, args)
        assert action is not None and state is not None
        state = model.apply(state, action)
    assert state is not None
    reach = reachable(REFERENCE, SMALL, start=state)
    assert 0 < len(reach) <= 3_163
    assert goal_reachable(Model(REFERENCE, SMALL), state, lambda m, s: m.holds(REFERENCE.prop("no_stale_translation"), s))


def test_goal_unreachable_from_a_deadlock_and_open_past_the_limit() -> None:
    protocol = get_variant("wait-irqs-off")
    model = Model(protocol, SMALL)
    state = model.initial
    for name, args in (("shootdown", (0, 0)), ("shootdown", (1, 0)), ("send_ipis", (0,)), ("send_ipis", (1,))):
        action = model.find_action(name, args)
        assert action is not None and state is not None
        state = model.apply(state, action)
    assert state is not None
    no_waiter = protocol.prop("shootdowns_can_complete")
    assert goal_reachable(model, state, lambda m, s: m.holds(no_waiter, s)) is False
    assert goal_reachable(Model(REFERENCE, SMALL), state, lambda m, s: m.holds(no_waiter, s)) is True
    assert goal_reachable(model, model.initial, lambda m, s: False, max_states=10) is None


def test_misbehaving_step_is_located_on_a_state() -> None:
    def bad_fill(s, i, p):  # type: ignore[no-untyped-def]
        s.tlb[i][p] = s.shadow[i][p] + 5

    variant = REFERENCE.derive("bad", replace_steps=[REFERENCE.step("fill").with_effect(bad_fill)])
    with pytest.raises(StepError, match=r"fill") as info:
        reachable(variant, SMALL)
    assert "outside" in str(info.value)
