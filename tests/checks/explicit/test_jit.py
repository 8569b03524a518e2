"""The compiled loops (numba) agree with the numpy path: keys, unpacking, lookups, whole searches."""

from __future__ import annotations

import numpy as np
import pytest

from deferral.checks.explicit import jit, vectorized
from deferral.checks.explicit.packing import Packer
from deferral.checks.explicit.vectorized import explore_vectorized
from deferral.checks.explicit.visited import Visited
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.variants import PUBLISHED

pytestmark = pytest.mark.skipif(not jit.available(), reason="numba is not installed")


def random_rows(packer: Packer, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sizes = np.array(packer.layout.sizes)
    return (rng.integers(0, 1 << 30, size=(n, sizes.size)) % sizes).astype(packer.dtype_rows)


# one word and several (3,2,1,2 and 4,3,3,3), one address space and two (S=2)
@pytest.mark.parametrize("b", [(2, 2, 1, 2), (3, 1, 2, 2), (2, 1, 1, 1, 2), (1, 2, 1, 1, 2), (3, 2, 1, 2),
                               (4, 3, 3, 3)])
@pytest.mark.parametrize("symmetry", [True, False])
def test_keys_and_rows_agree(b: tuple, symmetry: bool) -> None:
    layout = Model(REFERENCE, Bounds(*b)).layout
    fast, slow = Packer(layout, symmetry, jit=True), Packer(layout, symmetry, jit=False)
    assert fast.jit and not slow.jit
    rows = random_rows(fast, 3000, seed=len(b) + sum(b))
    # rows whose VCPUs tie (every image equal up to late digits): VCPU 1's slots copied from VCPU 0's
    tied = rows.copy()
    if symmetry and len(fast.perms) > 1:
        src, _ = layout.permute_plan(fast.perms[1])
        tied = np.minimum(tied, tied[:, src])
    for batch in (rows, tied, rows[:0]):
        keys = fast.canonical_keys(batch)
        assert keys.dtype == slow.key_dtype
        assert np.array_equal(keys, slow.canonical_keys(batch))
        assert np.array_equal(fast.unpack(keys), slow.unpack(keys))
    assert (fast.n_words > 1) == (b in ((3, 2, 1, 2), (4, 3, 3, 3)))


def test_small_searches_take_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    layout = Model(REFERENCE, Bounds(2, 1, 1, 1)).layout
    monkeypatch.setattr(jit, "AFTER_ROWS", 2 * jit.MIN_ROWS)
    packer = Packer(layout, True)
    assert packer.jit
    packer.canonical_keys(random_rows(packer, jit.MIN_ROWS - 1, seed=3))
    assert packer._compiled(jit.MIN_ROWS - 1) is None
    # the first AFTER_ROWS rows of big batches are keyed by numpy, then the loops take over
    assert packer._compiled(jit.MIN_ROWS) is None and packer._compiled(jit.MIN_ROWS) is None
    assert packer._compiled(jit.MIN_ROWS) is not None
    monkeypatch.setenv(jit.ENV, "0")
    assert not Packer(layout, True).jit and not Visited(np.uint64).jit


def test_visited_lookup_agrees() -> None:
    rng = np.random.default_rng(7)
    keys = np.unique(rng.integers(0, 1 << 62, size=6000).astype(np.uint64))
    fast, slow = Visited(np.uint64, jit=True), Visited(np.uint64, jit=False)
    assert fast.jit and not slow.jit
    for a in range(0, keys.size, 700):  # several runs, merged geometrically
        part = keys[a:a + 700]
        for v in (fast, slow):
            v.add(np.sort(part[::2]), np.arange(a, a + part[::2].size, dtype=np.uint32))
    queries = np.concatenate([keys, rng.integers(0, 1 << 62, size=500).astype(np.uint64)])
    got = fast.lookup(np.sort(queries))
    assert np.array_equal(got, slow.lookup(np.sort(queries)))
    assert (got >= 0).sum() == sum(k.size for k, _ in fast.runs())
    # unsorted queries are answered too (the cluster search asks so)
    assert np.array_equal(fast.lookup(queries), slow.lookup(queries))


# a holding, an invariant-violating and a liveness-violating variant; two address spaces cut
# by --max-states (the whole search there takes seconds)
@pytest.mark.parametrize(("name", "b", "cut"), [("reference", (2, 1, 1, 1), None),
                                                ("drain-local-only", (2, 1, 1, 1), None),
                                                ("wait-irqs-off", (2, 1, 1, 1), None),
                                                ("reference", (2, 1, 1, 1, 2), 40_000)])
def test_search_agrees(name: str, b: tuple, cut: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    for threshold in ("MIN_ROWS", "AFTER_ROWS", "AFTER_STATES"):  # every batch through the loops
        monkeypatch.setattr(jit, threshold, 0)
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 997)  # many chunks: the two threads overlap
    fast = explore_vectorized(PUBLISHED[name], Bounds(*b), workers=2, max_states=cut)
    monkeypatch.setenv(jit.ENV, "0")
    assert not jit.enabled()
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 1 << 17)
    slow = explore_vectorized(PUBLISHED[name], Bounds(*b), workers=1, max_states=cut)
    assert (fast.states, fast.transitions, fast.depth) == (slow.states, slow.transitions, slow.depth)
    assert [(o.name, o.status, o.path) for o in fast.outcomes] == [(o.name, o.status, o.path) for o in slow.outcomes]
    assert fast.coverage == slow.coverage
