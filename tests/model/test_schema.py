"""The state layout: slots, JSON round trips, VCPU permutations."""

from __future__ import annotations

import pytest

from deferral.model import REFERENCE, Bounds, BoundsError
from deferral.model.concrete import Model


def test_bounds_are_validated_with_the_flag_name() -> None:
    with pytest.raises(BoundsError, match="--vcpus must be an integer from 1 to 6"):
        Bounds(7, 1, 1, 1)
    with pytest.raises(BoundsError, match="--queue"):
        Bounds(2, 1, 1, 0)
    assert Bounds.parse("2,1,1,1") == Bounds(2, 1, 1, 1)
    with pytest.raises(BoundsError):
        Bounds.parse("2,1")


@pytest.mark.parametrize("text", ["N=2,N=3", "N=2,vcpus=3"])
def test_a_bound_named_twice_is_refused(text: str) -> None:
    """regress --bounds N=2,N=3 ran N=3 alone: the first value was dropped without a word."""
    with pytest.raises(BoundsError, match="twice"):
        Bounds.parse(text)


def test_initial_state_matches_protocol() -> None:
    model = Model(REFERENCE, Bounds(2, 2, 1, 2))
    shown = model.to_json(model.initial)
    assert shown["gpt"] == [0, 0]
    assert shown["queue"] == [[], []]
    assert shown["pc"] == ["Idle", "Idle"]
    assert shown["lw"] == [None, None] and shown["cur"] == [None, None]
    assert shown["ipi"] == [[False, False], [False, False]]


def test_json_round_trip_over_reachable_states(small_reference: Model) -> None:
    model = small_reference
    frontier, seen = [model.initial], {model.initial}
    for _ in range(6):
        frontier = [s for state in frontier for _, s in model.successors(state) if s not in seen]
        seen.update(frontier)
    for state in seen:
        assert model.from_json(model.to_json(state)) == state


def test_from_json_names_the_bad_field(small_reference: Model) -> None:
    shown = small_reference.to_json(small_reference.initial)
    shown["pc"][1] = "Dancing"
    with pytest.raises(ValueError, match=r"pc\[1\]: expected one of"):
        small_reference.from_json(shown)
    shown = small_reference.to_json(small_reference.initial)
    del shown["tlb"]
    with pytest.raises(ValueError, match="missing \\['tlb'\\]"):
        small_reference.from_json(shown)


def test_permutation_swaps_vcpus_and_renames_vcpu_values() -> None:
    model = Model(REFERENCE, Bounds(2, 1, 1, 1))
    state = model.initial
    for name, args in [("write", (0, 0, 1)), ("shootdown", (0, 0)), ("drain_one", (0,)), ("send_ipis", (0,)),
                       ("take_ipi", (1, 0))]:
        state = model.apply(state, model.find_action(name, args))
        assert state is not None
    image = model.to_json(model.layout.permute(state, (1, 0)))
    original = model.to_json(state)
    assert image["pc"] == list(reversed(original["pc"]))
    assert original["cur"] == [None, 0] and image["cur"] == [1, None]
    assert original["lw"] == [0] and image["lw"] == [1]
    assert image["waiting"] == [[False, False], [True, False]]
    assert model.canonical(state) == model.canonical(model.layout.permute(state, (1, 0)))
