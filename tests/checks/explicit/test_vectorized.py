"""The vectorized search reports exactly what the plain explorer (and PROTOCOL.md) say."""

from __future__ import annotations

import pytest

from deferral.checks.explicit import vectorized
from deferral.checks.explicit.explore import explore
from deferral.checks.results import Progress, SearchResult
from deferral.checks.explicit.vectorized import explore_vectorized
from deferral.model import BOOL, REFERENCE, Bounds, Var
from deferral.model.concrete import Model
from deferral.model.context import StepError
from deferral.model.variants import PUBLISHED

# PROTOCOL.md's reference counts: bounds -> (reachable, up to VCPU symmetry)
TABLE = {
    (1, 1, 1, 1): (75, 75),
    (2, 1, 1, 1): (6_319, 3_163),
    (2, 1, 2, 2): (65_643, 32_825),
}
# bigger rows of the table: symmetry on here, both columns in benchmarks/bench_vs_rumur.py
BIG = {
    (3, 1, 1, 2): 267_530,
    (2, 2, 1, 1): 1_249_768,
}


def summary(r: SearchResult) -> tuple:
    return (r.states, r.transitions, r.depth, r.complete, r.stopped_by,
            [(o.name, o.status, o.length) for o in r.outcomes])


def assert_paths_replay(protocol, bounds: Bounds, result: SearchResult) -> None:
    """Every returned path starts at the initial state, each action is enabled, states chain."""
    model = Model(protocol, bounds)
    for o in result.outcomes:
        if o.path is None:
            continue
        assert o.path[0] == (None, model.initial)
        state = model.initial
        for action, nxt in o.path[1:]:
            assert model.enabled(state, action), action.label()
            assert model.apply(state, action) == nxt
            state = nxt
        if o.kind == "invariant":
            assert not model.holds(protocol.prop(o.name), state)


@pytest.mark.parametrize("b", sorted(TABLE))
@pytest.mark.parametrize("symmetry", [False, True])
def test_counts_match_protocol_table(b: tuple, symmetry: bool) -> None:
    r = explore_vectorized(REFERENCE, Bounds(*b), symmetry=symmetry, workers=1)
    assert r.states == TABLE[b][1 if symmetry else 0]
    assert r.complete and r.stopped_by is None and r.engine == "vectorized"
    assert [o.status for o in r.outcomes] == ["holds", "holds"]


@pytest.mark.parametrize("b", sorted(BIG))
def test_big_counts_with_symmetry(b: tuple) -> None:
    r = explore_vectorized(REFERENCE, Bounds(*b), symmetry=True)
    assert r.states == BIG[b]
    assert [o.status for o in r.outcomes] == ["holds", "holds"]


# every published variant with and without symmetry; in the normal run a holding, an
# invariant-violating and a liveness-violating one, the rest with DEFERRAL_SLOW=1 (each
# variant's verdict and shortest length is checked on every run by tests/model/test_reference.py)
SAMPLED = {("reference", True), ("reference", False), ("drain-local-only", True), ("wait-irqs-off", False)}
AGREEMENT = [(name, sym) if (name, sym) in SAMPLED else pytest.param(name, sym, marks=pytest.mark.slow)
             for name in sorted(PUBLISHED) for sym in (True, False)
             if sym or name in ("reference", "reload-no-drain", "wait-irqs-off")]


@pytest.mark.parametrize(("name", "symmetry"), AGREEMENT)
def test_agrees_with_plain_explorer(name: str, symmetry: bool) -> None:
    protocol, bounds = PUBLISHED[name], Bounds(2, 1, 1, 1)
    fast = explore_vectorized(protocol, bounds, symmetry=symmetry, workers=1)
    plain = explore(Model(protocol, bounds), symmetry=symmetry)
    assert summary(fast) == summary(plain)
    assert_paths_replay(protocol, bounds, fast)


def test_published_lengths() -> None:
    expected = {"drain-local-only": 8, "ipi-before-drain": 6, "remote-no-drain": 7, "reload-no-drain": 5}
    for name, length in expected.items():
        r = explore_vectorized(PUBLISHED[name], Bounds(2, 1, 1, 1), symmetry=False)
        assert (r.outcome("no_stale_translation").status, r.outcome("no_stale_translation").length) \
            == ("violated", length)
    r = explore_vectorized(PUBLISHED["wait-irqs-off"], Bounds(2, 1, 1, 1))
    assert r.outcome("shootdowns_can_complete").status == "violated"
    assert_paths_replay(PUBLISHED["wait-irqs-off"], Bounds(2, 1, 1, 1), r)


def test_overflow_drop_needs_two_pages() -> None:
    holds = explore_vectorized(PUBLISHED["overflow-drop"], Bounds(2, 1, 1, 1), symmetry=False)
    assert holds.outcome("no_stale_translation").status == "holds"
    # every state up to depth 8 fits well under the cap, so the BFS found the shortest one
    b = Bounds(2, 2, 1, 1)
    r = explore_vectorized(PUBLISHED["overflow-drop"], b, symmetry=False, max_states=300_000)
    o = r.outcome("no_stale_translation")
    assert (o.status, o.length) == ("violated", 7)
    assert r.depth > 8
    assert_paths_replay(PUBLISHED["overflow-drop"], b, r)


@pytest.mark.parametrize("name", ["reference", "drain-local-only", "wait-irqs-off"])
def test_worker_count_changes_nothing(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 97)  # many chunks, so threads really overlap
    b = Bounds(2, 1, 1, 1)
    one = explore_vectorized(PUBLISHED[name], b, workers=1)
    two = explore_vectorized(PUBLISHED[name], b, workers=2)
    assert summary(one) == summary(two)
    assert [o.path for o in one.outcomes] == [o.path for o in two.outcomes]
    assert (one.workers, two.workers) == (1, 2)


def test_max_states_gives_unknown() -> None:
    r = explore_vectorized(REFERENCE, Bounds(2, 1, 1, 1), max_states=1000)
    assert (r.states, r.complete, r.stopped_by) == (1000, False, "max-states")
    assert [o.status for o in r.outcomes] == ["unknown", "unknown"]
    assert r.exit_code == 3


def test_time_limit_gives_unknown() -> None:
    r = explore_vectorized(REFERENCE, Bounds(2, 1, 2, 2), time_limit=0.0)
    assert (r.complete, r.stopped_by) == (False, "time-limit")
    assert {o.status for o in r.outcomes} == {"unknown"}


def test_progress_once_per_level() -> None:
    seen: list[Progress] = []
    r = explore_vectorized(REFERENCE, Bounds(2, 1, 1, 1), progress=seen.append)
    assert len(seen) >= r.depth
    assert seen[-1].states == r.states and seen[-1].transitions == r.transitions


@pytest.mark.parametrize("workers", [1, 2])
def test_out_of_domain_write_raises_step_error(workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 7)  # with 2 workers: raised in a worker process

    def bad_fill(s, i, p):  # type: ignore[no-untyped-def]
        s.tlb[i][p] = s.shadow[i][p] + 5

    variant = REFERENCE.derive("bad", replace_steps=[REFERENCE.step("fill").with_effect(bad_fill)])
    with pytest.raises(StepError, match=r"fill\(.*outside its domain"):
        explore_vectorized(variant, Bounds(2, 1, 1, 1), workers=workers)


def test_exception_in_user_step_names_the_step() -> None:
    def broken(s, i):  # type: ignore[no-untyped-def]
        raise KeyError("oops")

    variant = REFERENCE.derive("broken", replace_steps=[REFERENCE.step("reload_cr3").with_effect(broken)])
    with pytest.raises(StepError, match=r"reload_cr3\(0\).*KeyError"):
        explore_vectorized(variant, Bounds(2, 1, 1, 1))


def test_user_variant_with_new_variable_gets_fast_path() -> None:
    def write_counting(s, i, p, f):  # type: ignore[no-untyped-def]
        REFERENCE.step("write").effect(s, i, p, f)
        s.wrote[i] = True

    variant = REFERENCE.derive(
        "counting", add_variables=[Var("wrote", BOOL, (REFERENCE.variables[1].index[0],))],
        replace_steps=[REFERENCE.step("write").with_effect(write_counting)])
    b = Bounds(2, 1, 1, 1)
    fast = explore_vectorized(variant, b, symmetry=True)
    assert fast.engine == "vectorized" and "notice" not in fast.stats
    assert summary(fast) == summary(explore(Model(variant, b), symmetry=True))
    assert fast.states > 3_163  # the new variable splits states


@pytest.mark.parametrize("workers", [1, 2])
def test_python_branching_falls_back_with_notice(workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 7)
    def branchy(s, i, p):  # type: ignore[no-untyped-def]
        if s.shadow[i][p] != 0:  # Python control flow on a state value: not vectorizable
            s.tlb[i][p] = s.shadow[i][p]

    variant = REFERENCE.derive("branchy", replace_steps=[REFERENCE.step("fill").with_effect(branchy)])
    b = Bounds(1, 1, 1, 1)
    r = explore_vectorized(variant, b, workers=workers)
    assert "plain explorer" in r.stats["notice"]
    assert summary(r) == summary(explore(Model(variant, b)))


def test_stats_reported() -> None:
    r = explore_vectorized(REFERENCE, Bounds(2, 1, 1, 1), workers=2)
    assert r.workers == 2
    assert 0 < r.stats["bytes_per_state"] < 200
    assert r.stats["peak_rss_bytes"] > 0


def test_python_int_of_state_value_falls_back() -> None:
    def casting(s, i, p):  # type: ignore[no-untyped-def]
        s.tlb[i][p] = int(s.shadow[i][p])  # needs one value: not vectorizable

    variant = REFERENCE.derive("casting", replace_steps=[REFERENCE.step("fill").with_effect(casting)])
    r = explore_vectorized(variant, Bounds(1, 1, 1, 1))
    assert r.engine == "concrete" and "plain explorer" in r.stats["notice"]
    assert r.states == 75


def test_a_level_merge_reports_its_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wide level's merge takes minutes (3,2,1,2 spilled): it reports progress with a phase."""
    monkeypatch.setattr(vectorized, "PROGRESS_EVERY_S", 0.0)
    seen: list = []
    explore_vectorized(REFERENCE, Bounds(2, 1, 1, 1), workers=1, progress=seen.append)
    phases = [p.phase for p in seen if p.phase]
    assert phases and all(p.startswith("merging level ") and p.endswith("new states so far") for p in phases)


def test_default_workers_are_the_cpus_this_process_may_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --workers, one thread per CPU of the process's affinity, not per CPU of the machine: 16 threads on
    one allowed CPU were 4% slower than one and held 31% more memory (2,1,1,3,S=2; benchmarks/PROVE.md)."""
    monkeypatch.setattr(vectorized, "usable_cpus", lambda: 1)
    assert explore_vectorized(REFERENCE, Bounds(2, 1, 1, 1)).workers == 1
    monkeypatch.setattr(vectorized, "usable_cpus", lambda: 3)
    assert explore_vectorized(REFERENCE, Bounds(2, 1, 1, 1)).workers == 3
