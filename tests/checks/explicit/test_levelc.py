"""The search's model-independent C loops give exactly what their numpy versions give: the
visited runs' merge (keys, state numbers, blocks) and the numbering of AG EF edge targets."""

from __future__ import annotations

import numpy as np
import pytest

from deferral.checks.explicit import cbuild, levelc
from deferral.checks.explicit import visited as V

pytestmark = pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")


def _merged(a: np.ndarray, ai: np.ndarray, b: np.ndarray, bi: np.ndarray, c: bool,
            monkeypatch: pytest.MonkeyPatch) -> V.Run:
    with monkeypatch.context() as m:
        if not c:
            m.setattr(levelc, "available", lambda *_: False)
        ra, rb = V.as_run(a, ai), V.as_run(b, bi)
        run = V.merge_runs(ra, rb)
        assert not ra.keys and not rb.keys  # the inputs are consumed
        return run


def _two_words(keys: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Distinct two-word keys (16-byte big-endian void, as packing makes them) from distinct ``keys``."""
    words = np.stack([keys >> np.uint64(20), rng.integers(0, 1 << 12, keys.shape[0], dtype=np.uint64)
                      | ((keys & np.uint64(0xFFFFF)) << np.uint64(12))], axis=1)
    return np.ascontiguousarray(words.astype(">u8")).view("V16").ravel()


@pytest.mark.parametrize("words", [1, 2])
@pytest.mark.parametrize("sizes", [(1, 0), (0, 5), (3, 1), (1000, 999), (700_000, 300_001)])
def test_the_c_merge_is_the_numpy_merge(sizes: tuple[int, int], words: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(sum(sizes))
    n1, n2 = sizes
    keys = np.unique(rng.integers(0, 2**64 - 1, n1 + n2 + 50, dtype=np.uint64))[:n1 + n2]
    if words == 2:
        keys = _two_words(keys, rng)
    rng.shuffle(keys)
    a, b = np.sort(keys[:n1]), np.sort(keys[n1:])
    ai, bi = (rng.integers(0, 2**32, n, dtype=np.uint32) for n in (n1, n2))
    c, py = (_merged(a, ai, b, bi, flag, monkeypatch) for flag in (True, False))
    assert [k.shape[0] for k in c.keys] == [k.shape[0] for k in py.keys]
    for x, y in zip(c.keys + c.ids, py.keys + py.ids):
        assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_numbering_in_c_is_the_numpy_numbering(dtype: type) -> None:
    rng = np.random.default_rng(7)
    n_cand, n_states = 500, 1000
    state = rng.integers(-1, 5000, n_cand).astype(dtype)  # -1: cut by --max-states
    code = np.where(rng.random(4000) < 0.5, rng.integers(0, n_states, 4000),
                    -1 - rng.integers(0, n_cand, 4000)).astype(dtype)
    want = code.copy()
    new = want < 0
    want[new] = state[-1 - want[new]]
    assert levelc.number_codes(code, state)
    assert np.array_equal(code, want)


def test_no_compiler_leaves_numbering_to_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cbuild.ENV_CC, "0")
    code = np.array([-1, 3], dtype=np.int32)
    assert not levelc.number_codes(code, np.ones(1, np.int32))
    assert not levelc.available(np.uint64, np.uint32)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_backward_search_in_c_is_the_numpy_one(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    from deferral.checks.explicit.backreach import unreachable_goal_np

    rng = np.random.default_rng(seed)
    n = 3000
    src = rng.integers(0, n, 9000, dtype=np.uint32)
    dst = np.minimum(src + rng.integers(0, 40, 9000, dtype=np.uint32), n - 1).astype(np.uint32)  # forward, mostly
    hub = np.full(5000, n - 1, dtype=np.uint32)  # a target with a big in-degree
    src, dst = np.concatenate([src, rng.integers(0, n, 5000, dtype=np.uint32)]), np.concatenate([dst, hub])
    for goal_at in (n - 1, n - 7, 0):
        goal = np.zeros(n, dtype=bool)
        goal[goal_at] = True
        c = unreachable_goal_np(n, src, dst, goal)
        with monkeypatch.context() as m:
            m.setenv(cbuild.ENV_CC, "0")
            assert c == unreachable_goal_np(n, src, dst, goal)


def test_the_backward_search_in_small_pieces_marks_the_same_states() -> None:
    rng = np.random.default_rng(5)
    n = 500
    src = rng.integers(0, n, 2000).astype(np.uint64)
    dst = rng.integers(0, n, 2000).astype(np.uint64)
    packed = np.sort((dst << np.uint64(32)) | src)
    starts = np.empty(n + 1, dtype=np.uint32)
    assert levelc.csr_starts(packed, starts)
    assert np.array_equal(starts, np.searchsorted(packed, np.arange(n + 1, dtype=np.uint64) << np.uint64(32)))
    preds = (packed & np.uint64(0xFFFFFFFF)).astype(np.uint32)
    marks = []
    for budget in (1, 8, 1 << 20):  # 1: below the largest in-degree, which is then the piece size
        can = np.zeros(n, dtype=bool)
        can[[3, 77]] = True
        assert levelc.backward(np.array([3, 77], dtype=np.uint32), starts, preds, can, budget=budget)
        marks.append(can)
    assert all(np.array_equal(marks[0], m) for m in marks[1:]) and 2 < marks[0].sum() < n


@pytest.mark.parametrize("t,rows", [(0, 0), (0, 5), (1, 1), (5000, 300)])
def test_grouping_edges_by_source_in_c_is_the_stable_argsort(t: int, rows: int) -> None:
    rng = np.random.default_rng(t + rows)
    local = rng.integers(0, max(rows, 1), t).astype(np.uint32)
    dst = rng.integers(0, 2**32, t, dtype=np.uint32)
    got = levelc.group_by_source(local, dst, rows)
    assert got is not None
    assert np.array_equal(got[0], dst[np.argsort(local, kind="stable")])
    assert np.array_equal(got[1], np.bincount(local, minlength=rows)) and got[1].dtype == np.int64


@pytest.mark.parametrize("words", [1, 2])
@pytest.mark.parametrize("spread", [40, 1 << 40])  # many equal keys and few
def test_distinct_first_in_c_is_a_stable_sort(words: int, spread: int) -> None:
    rng = np.random.default_rng(spread + words)
    keys = rng.integers(0, spread, 30_000, dtype=np.uint64)
    if words == 2:  # equal keys stay equal
        keys = np.ascontiguousarray(np.stack([keys >> np.uint64(3), keys * np.uint64(7)], axis=1)
                                    .astype(">u8")).view("V16").ravel()
    got = levelc.distinct_first(keys)
    assert got is not None
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    first = np.ones(keys.shape[0], dtype=bool)
    first[1:] = sorted_keys[1:] != sorted_keys[:-1]
    group = np.empty(keys.shape[0], dtype=np.int64)
    group[order] = np.cumsum(first) - 1
    for x, y in zip(got, (sorted_keys[first], order[first], group)):
        assert x.dtype == y.dtype and np.array_equal(x, y)


@pytest.mark.parametrize("code_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("n_goals", [1, 2])
@pytest.mark.parametrize("goal_share", [0.0, 0.3, 0.9])
def test_the_c_goal_source_drop_is_the_numpy_one(code_dtype: type, n_goals: int, goal_share: float,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from deferral.checks.explicit import vectorized as VZ

    rng = np.random.default_rng(int(goal_share * 10) + n_goals)
    base, lo, rows, states, distinct = 500, 300, 200, 2000, 400
    t = 1500

    def chunk() -> VZ._Chunk:
        r = np.random.default_rng(7)
        code = r.integers(-100, states, distinct).astype(code_dtype)  # negative: a new candidate
        uidx = r.integers(0, distinct, t).astype(np.uint32)
        parents = np.sort(r.integers(lo, lo + rows, t)).astype(np.uint32)
        return VZ._Chunk(t, np.zeros(0, np.uint64), np.zeros(0, np.uint32), np.zeros(0, np.uint8),
                         uidx, code, parents, np.zeros(1, np.int64), np.zeros(1, np.int64))

    goals = [rng.random(states) < goal_share for _ in range(n_goals)]
    by_c = VZ._drop_goal_sources(chunk(), goals, base, lo, rows)
    with monkeypatch.context() as m:
        m.setattr(levelc, "drop_goal_sources", lambda *_: None)
        by_numpy = VZ._drop_goal_sources(chunk(), goals, base, lo, rows)
    assert by_c.hits is not None and by_numpy.hits is not None
    assert (by_c.hits == by_numpy.hits).all()
    assert by_c.uidx is not None and by_numpy.uidx is not None
    assert by_c.uidx.dtype == by_numpy.uidx.dtype and (by_c.uidx == by_numpy.uidx).all()
    assert by_c.all_parents is not None and by_numpy.all_parents is not None
    assert (by_c.all_parents == by_numpy.all_parents).all()
    if goal_share == 0.9:  # most rows done with: their transitions are dropped
        assert by_c.uidx.shape[0] < t
