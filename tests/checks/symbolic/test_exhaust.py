"""Auto's explicit route (checks/symbolic/exhaust.py): the breadth-first search as exact refuter and
bounded proof, its early stop, and the bmc that starts past the depth it checked."""

from __future__ import annotations

import pytest

from deferral.checks.explicit import vectorized

from deferral.checks.explicit.vectorized import explore_vectorized
from deferral.checks.symbolic import exhaust
from deferral.checks.symbolic.bmc import BmcSearch
from deferral.checks.terms.encoding import encode
from deferral.checks.symbolic.prove import prove
from deferral.model import PUBLISHED, REFERENCE, Bounds

#: published bug -> (bounds, its shortest counterexample: PROTOCOL.md, and `deferral check`)
SHORTEST = {"drain-local-only": (Bounds(2, 1, 1, 1), 8), "ipi-before-drain": (Bounds(2, 1, 1, 1), 6),
            "remote-no-drain": (Bounds(2, 1, 1, 1), 7), "reload-no-drain": (Bounds(2, 1, 1, 1), 5),
            "overflow-drop": (Bounds(2, 2, 1, 1), 7)}


@pytest.mark.parametrize("name", list(SHORTEST))
def test_every_published_bug_is_refuted_at_bmcs_length_and_never_proved(name: str) -> None:
    """Auto's explicit route refutes with the shortest trace: as long as bmc's (which starts at depth 1)."""
    bounds, length = SHORTEST[name]
    res = prove(PUBLISHED[name], bounds, timeout=60)
    assert res.status == "violated" and res.route == "explicit-search" and res.depth == length
    assert res.path is not None and len(res.path) == length + 1 and res.exhaustive is not None
    model = res.model
    assert model is not None and model.violations(res.path[-1][1])
    state = model.initial
    for action, after in res.path[1:]:  # the (oriented) path replays on the concrete model
        state = model.apply(state, action)
        assert state == after
    found = BmcSearch(encode(PUBLISHED[name], bounds), length).run(60)
    assert found.status == "violated" and found.depth == length


def test_the_stop_hook_ends_the_search_after_a_level() -> None:
    seen: list[int] = []

    def stop(progress, violated):  # noqa: ANN001, ANN202
        seen.append(progress.depth)
        return progress.depth >= 3

    r = explore_vectorized(REFERENCE, Bounds(2, 1, 1, 1), stop=stop, workers=1)
    assert r.stopped_by == "stopped" and not r.complete and r.depth == 3 and seen[-1] == 3
    assert all(o.status == "unknown" for o in r.outcomes)


def test_a_violation_stops_the_explicit_route_at_its_level() -> None:
    ex = exhaust.explore(PUBLISHED["reload-no-drain"], Bounds(2, 1, 1, 1), 30)
    assert ex.status == "violated" and ex.depth == 5 and ex.prop == "no_stale_translation"
    assert ex.verdict() == "no_stale_translation violated in 5 steps (shortest, breadth-first)"


def test_what_the_box_cannot_hold_is_stopped_early_by_the_estimate() -> None:
    """At 3,2,2,2 (billions of states by the levels' growth) the route gives up after a few levels,
    not at the end of its box, and says why (once the smallest instance was exhausted: exhaust_only)."""
    ex = exhaust.explore(REFERENCE, Bounds(3, 2, 2, 2), 20, exhaust_only=True)
    assert ex.status == "unknown" and ex.seconds < 15 and "estimate" in ex.reason
    assert ex.verdict().startswith(f"no violation within {ex.depth} steps")


def test_a_reference_instance_it_exhausts_holds_at_exactly_those_bounds() -> None:
    ex = exhaust.explore(REFERENCE, Bounds(2, 1, 1, 1), 30)
    assert ex.status == "holds" and ex.states > 1000 and "nothing claimed for other bounds" in ex.verdict()


def test_bmc_past_the_depth_the_explicit_search_checked_finds_the_same_violation() -> None:
    """Depths known safe are not queried; the violation after them is found at its length."""
    enc = encode(PUBLISHED["reload-no-drain"], Bounds(2, 1, 1, 1))
    search = BmcSearch(enc, 8)
    search.known_safe_to(4)
    assert search.checked == 4 and not search.settled
    r = search.run(60)
    assert r.status == "violated" and r.depth == 5 and search.took == []  # depth 5 was the first one queried
    whole = BmcSearch(enc, 3)
    whole.known_safe_to(7)  # past its depth: nothing left to check
    assert whole.settled and whole.result.status == "unknown"


def test_an_exhausted_instance_hands_on_a_uniform_sample_of_its_states() -> None:
    """``keep``: a seeded sample of every reachable state (the same in every run, every row a reachable
    state, from every level, not only the first ones); none where the search found a violation."""
    import numpy as np

    from deferral.checks.explicit.vectorized import reachable_levels
    from deferral.model.concrete import Model

    ex = exhaust.explore(REFERENCE, Bounds(2, 1, 1, 1), 30, keep=2000)
    again = exhaust.explore(REFERENCE, Bounds(2, 1, 1, 1), 30, keep=2000)
    assert ex.status == "holds" and ex.sample is not None and ex.sample.shape[0] == 2000
    assert again.sample is not None and np.array_equal(ex.sample, again.sample)
    levels = reachable_levels(Model(REFERENCE, Bounds(2, 1, 1, 1)))
    every = {tuple(int(v) for v in row): n for n, row in enumerate(levels.packer.unpack(levels.keys))}
    places = [every[tuple(int(v) for v in row)] for row in ex.sample]  # KeyError: not a reachable state
    assert len(set(places)) == 2000 and max(places) > 0.9 * len(every)  # deep states too
    assert exhaust.explore(REFERENCE, Bounds(2, 1, 1, 1), 30).sample is None  # not asked for
    assert exhaust.explore(PUBLISHED["reload-no-drain"], Bounds(2, 1, 1, 1), 30, keep=100).sample is None


def test_the_reservoir_keeps_every_key_up_to_its_cap_and_a_seeded_draw_past_it() -> None:
    import numpy as np

    class Ident:
        def unpack(self, keys):  # noqa: ANN001, ANN201
            return keys

    small = exhaust.Reservoir(10)
    for level in (np.arange(3, dtype=np.uint64), np.arange(3, 7, dtype=np.uint64)):
        small(level, Ident())
    assert small.rows().tolist() == list(range(7))
    drawn = []
    for _ in range(2):
        big = exhaust.Reservoir(50)
        for start in range(0, 1000, 100):
            big(np.arange(start, start + 100, dtype=np.uint64), Ident())
        drawn.append(big.rows().tolist())
    assert drawn[0] == drawn[1] and len(set(drawn[0])) == 50 and drawn[0] == sorted(drawn[0])
    assert max(drawn[0]) >= 500 and min(drawn[0]) < 500  # from early and late levels
    spilled = exhaust.Reservoir(10)
    spilled(np.arange(3, dtype=np.uint64), Ident())
    spilled(None, Ident())  # a level written to disk: no sample of the whole
    assert spilled.rows() is None


def test_a_smallest_instance_searched_past_the_bmc_depth_needs_no_bmc(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit search stopped (its box) past the bmc's depth with no violation clears the smallest instance
    as an exhausted one does: no bmc slice there, the enumerated route is tried with the search's states."""
    from dataclasses import replace

    real = exhaust.explore

    def stopped(protocol, at, budget, note=None, exhaust_only=False, keep=0, **kw):  # type: ignore[no-untyped-def]
        ex = real(protocol, at, budget, note=note, exhaust_only=exhaust_only, keep=keep, **kw)
        assert ex.status == "holds" and ex.depth > 12 and ex.sample is not None
        return replace(ex, status="unknown", reason="stopped by its time box (a test)")

    monkeypatch.setattr(exhaust, "explore", stopped)
    res = prove(REFERENCE, Bounds(2, 1, 1, 1), timeout=60, shipped=False)
    assert res.status == "proved" and res.route == "enumerated+houdini+induction"
    assert [row["route"] for row in res.stages if row["route"] == "bmc"] == []


def test_the_search_on_two_cpus_finds_what_it_finds_on_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """explore runs on every CPU this process may use (the search's default, vectorized.usable_cpus): the verdict, the states, the depth, the
    sample and a counterexample are the same with one thread or two."""
    import numpy as np

    runs = []
    for cpus in (1, 2):
        monkeypatch.setattr(vectorized, "usable_cpus", lambda cpus=cpus: cpus)
        runs.append((exhaust.explore(REFERENCE, Bounds(2, 1, 1, 1), 30, keep=500),
                     exhaust.explore(PUBLISHED["remote-no-drain"], Bounds(2, 1, 1, 1), 30)))
    (one, bug_one), (two, bug_two) = runs
    assert (one.status, one.states, one.depth) == (two.status, two.states, two.depth) and one.status == "holds"
    assert one.sample is not None and two.sample is not None and np.array_equal(one.sample, two.sample)
    assert bug_one.status == bug_two.status == "violated" and bug_one.path == bug_two.path


def test_the_first_look_is_at_the_learnings_first_instance_at_most_two_spaces() -> None:
    """prove.first_look_bounds: the smallest instance (2,1,1 at the requested Q and S), at no more spaces than the
    learning samples; the same as bmc_bounds up to two spaces."""
    from deferral.checks.symbolic.clauses import LEARN_SPACES
    from deferral.checks.symbolic.prove import bmc_bounds, first_look_bounds

    for spaces in (1, 2, 3):
        at = Bounds(4, 3, 3, 3).replace(spaces=spaces)
        assert first_look_bounds(REFERENCE, at) == Bounds(2, 1, 1, 3).replace(spaces=min(spaces, LEARN_SPACES))
        assert (first_look_bounds(REFERENCE, at) == bmc_bounds(REFERENCE, at)) == (spaces <= LEARN_SPACES)


@pytest.mark.parametrize("name", ["reload-no-drain", "switch-no-drain"])
def test_at_three_spaces_a_bug_the_first_look_finds_is_refuted_at_its_shortest_length(name: str) -> None:
    """Without the shipped lemmas at S=3 the explicit search looks at two spaces first (the learning's first
    instance); a violation there is searched for again at the requested bounds, and the answer is the shortest
    there (as long as the bmc's), never a proof."""
    bounds = Bounds(3, 1, 1, 1).replace(spaces=3)
    res = prove(PUBLISHED[name], bounds, timeout=60, shipped=False)
    assert res.status == "violated" and res.path is not None and res.depth == len(res.path) - 1
    assert res.stages[0]["route"] == "explicit" and res.stages[0]["bounds"]["spaces"] == 2
    assert res.stages[0]["result"] == "violated"
    shortest = BmcSearch(encode(PUBLISHED[name], bounds), res.depth).run(60)
    assert shortest.status == "violated" and shortest.depth == res.depth


def test_at_bounds_with_many_step_instances_the_bmc_stands_in_for_the_explicit_search(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """At EXPLICIT_MAX_ACTIONS step instances or more (6,3,3,3,S=3 has 420: there the explicit search reached depth
    0-2 in its box, the bmc 4-5) auto does not search the requested bounds explicitly, and says so; a bug is
    still refuted at its shortest length there, by the bmc. Here the threshold is lowered to 3,1,1,1's 30."""
    from deferral.checks.symbolic import prove as auto
    from deferral.model.concrete import Model

    bounds = Bounds(3, 1, 1, 1)
    actions = len(Model(PUBLISHED["reload-no-drain"], bounds).actions)
    monkeypatch.setattr(auto, "EXPLICIT_MAX_ACTIONS", actions)
    res = prove(PUBLISHED["reload-no-drain"], bounds, timeout=60)
    assert (res.status, res.depth, res.shortest) == ("violated", 5, True), res.reason
    assert not any(row["route"] == "explicit" and row["bounds"] == bounds.as_dict() for row in res.stages)
    assert any(f"explicit at {bounds.short()}: not tried ({actions} step instances" in line for line in res.log), res.log
