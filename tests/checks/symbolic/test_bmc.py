"""Bounded model checking finds each published bug at the explicit search's shortest length."""

from __future__ import annotations

import pytest

from deferral.checks.symbolic.bmc import bmc, least_orientation
from deferral.checks.terms.encoding import encode
from deferral.model import PUBLISHED, REFERENCE, Bounds
from deferral.model.concrete import Model

SHORTEST = {  # PROTOCOL.md, breadth-first without symmetry
    "drain-local-only": (Bounds(2, 1, 1, 1), 8),
    "ipi-before-drain": (Bounds(2, 1, 1, 1), 6),
    "remote-no-drain": (Bounds(2, 1, 1, 1), 7),
    "reload-no-drain": (Bounds(2, 1, 1, 1), 5),
    "overflow-drop": (Bounds(2, 2, 1, 1), 7),
}


@pytest.mark.parametrize("name", list(SHORTEST))
def test_bmc_finds_each_published_bug_at_its_shortest_length(name: str) -> None:
    bounds, length = SHORTEST[name]
    res = bmc(encode(PUBLISHED[name], bounds), length + 2)
    assert res.status == "violated" and res.depth == length and res.prop == "no_stale_translation"
    model = Model(PUBLISHED[name], bounds)
    state = model.initial
    for action, after in res.path[1:]:  # the path replays on the concrete model
        state = model.apply(state, action)
        assert state == after
    assert model.violations(state) and not any(model.violations(s) for _, s in res.path[:-1])


def test_bmc_on_the_reference_is_not_a_proof() -> None:
    res = bmc(encode(REFERENCE, Bounds(2, 1, 1, 1)), 6)
    assert res.status == "unknown" and res.depth == 6 and res.path is None


def test_overflow_drop_holds_at_one_page_up_to_its_v2_length() -> None:
    assert bmc(encode(PUBLISHED["overflow-drop"], Bounds(2, 1, 1, 1)), 7).status == "unknown"


def test_a_counterexample_comes_in_one_orientation_whichever_the_solver_found() -> None:
    enc = encode(PUBLISHED["reload-no-drain"], Bounds(2, 1, 1, 1))
    res = bmc(enc, 5)
    states = [s for _, s in res.path]
    swapped = [enc.layout.permute(s, (1, 0)) for s in states]
    assert swapped != states  # the two VCPUs play different roles in it
    assert least_orientation(enc.layout, swapped) == least_orientation(enc.layout, states) == states


def test_a_bmc_in_slices_goes_on_where_it_stopped() -> None:
    """BmcSearch (auto's slices): a run that stops early leaves the depths checked; the next run
    starts after them and finds the shortest violation the single run finds."""
    from deferral.checks.symbolic.bmc import BmcSearch

    search = BmcSearch(encode(PUBLISHED["ipi-before-drain"], Bounds(2, 1, 1, 1)), 12)
    first = search.run(timeout=1e-9)
    assert first.status == "unknown" and first.reason == "time limit" and not search.settled
    depths: list[int] = []
    second = search.run(timeout=60, progress=lambda d, t: depths.append(d))
    assert second.status == "violated" and second.depth == 6 and search.settled
    assert depths == list(range(first.depth + 1, 6))  # each depth once, from where the first run stopped
    assert search.run() is second  # settled: nothing more to check
