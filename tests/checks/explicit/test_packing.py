"""Keys: order-preserving, exact inverse, canonical key == Model.canonical; the visited runs."""

from __future__ import annotations

import numpy as np
import pytest

from deferral.checks.explicit.backreach import unreachable_goal_np
from deferral.checks.explicit.liveness import unreachable_goal
from deferral.checks.explicit import packing
from deferral.checks.explicit.packing import Packer, blas_threads
from deferral.checks.explicit import visited as visited_mod
from deferral.checks.explicit.visited import Visited
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model


def random_rows(packer: Packer, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sizes = np.array(packer.layout.sizes)
    return (rng.integers(0, 1 << 30, size=(n, sizes.size)) % sizes).astype(packer.dtype_rows)


@pytest.mark.parametrize("b", [(1, 1, 1, 1), (2, 2, 1, 1), (3, 1, 2, 2), (3, 2, 2, 2), (4, 3, 3, 3)])
@pytest.mark.parametrize("symmetry", [False, True])
def test_canonical_key_is_model_canonical(b: tuple, symmetry: bool) -> None:
    bounds = Bounds(*b)
    model = Model(REFERENCE, bounds)
    packer = Packer(model.layout, symmetry)
    rows = random_rows(packer, 200, seed=sum(b))
    keys = packer.canonical_keys(rows)
    back = packer.unpack(keys)
    for row, got in zip(rows, back):
        state = tuple(int(x) for x in row)
        want = model.canonical(state) if symmetry else state
        assert tuple(int(x) for x in got) == want
    # key order is tuple order (so the least key of an orbit is the least tuple)
    order = np.argsort(keys, kind="stable")
    tuples = [tuple(int(x) for x in back[i]) for i in order]
    assert tuples == sorted(tuples)


def test_large_layout_uses_several_words() -> None:
    packer = Packer(REFERENCE.layout(Bounds(4, 3, 3, 3)), True)
    assert packer.n_words >= 2 and packer.bytes_per_key == 8 * packer.n_words


@pytest.mark.parametrize("min_block,void", [(visited_mod.MIN_BLOCK, False), (16, False), (16, True)])
def test_visited_lookup_and_merge(monkeypatch: pytest.MonkeyPatch, min_block: int, void: bool) -> None:
    monkeypatch.setattr(visited_mod, "MIN_BLOCK", min_block)  # 16: runs of many blocks, merged a block at a time
    rng = np.random.default_rng(1)
    all_keys = np.unique(rng.integers(0, 1 << 62, size=5000).astype(np.uint64))
    if void:  # multi-word keys are big-endian void words: sorted like the numbers
        all_keys = np.ascontiguousarray(all_keys.astype(">u8")).view("V8")
    rng.shuffle(all_keys)
    visited = Visited(all_keys.dtype)
    ids = {}
    for start in range(0, 4000, 400):
        batch = np.sort(all_keys[start:start + 400])
        numbers = np.arange(start, start + batch.size, dtype=np.uint32)
        visited.add(batch, numbers)
        ids.update(zip(batch.tolist(), numbers.tolist()))
    queries = np.sort(all_keys)
    got = visited.lookup(queries)
    for q, g in zip(queries.tolist(), got.tolist()):
        assert g == ids.get(q, -1)
    assert len(visited) == 4000
    for run in visited.sorted_runs():  # blocks are sorted, consecutive and within their size
        whole = np.concatenate(run.keys)
        assert (np.sort(whole) == whole).all() and np.unique(whole).shape == whole.shape and run.fences is not None
        assert run.fences.tobytes() == b"".join(k[:1].tobytes() for k in run.keys)
        assert max(k.shape[0] for k in run.keys) <= visited_mod.block_size(whole.shape[0])
    if min_block == 16:
        assert max(len(run.keys) for run in visited.sorted_runs()) > 1


def test_backward_reachability_matches_reference() -> None:
    rng = np.random.default_rng(7)
    for _ in range(20):
        n = int(rng.integers(1, 40))
        m = int(rng.integers(0, 80))
        src, dst = rng.integers(0, n, size=m), rng.integers(0, n, size=m)
        goal = rng.random(n) < 0.2
        assert unreachable_goal_np(n, src, dst, goal) == unreachable_goal(n, list(zip(src, dst)), goal)


def _least_image(layout, state: tuple) -> tuple:
    return min(layout.permute(state, perm) for perm in layout.permutations)


@pytest.mark.parametrize("b", [(2, 1, 1, 1), (3, 1, 2, 2), (3, 2, 2, 2), (4, 3, 3, 3), (5, 1, 1, 1),
                               (6, 1, 1, 1), (6, 2, 1, 1, 2)])
def test_signature_pruned_keys_equal_all_images_with_many_ties(b: tuple) -> None:
    """Few distinct values: VCPUs often tie on their signatures, so several orders are tried
    (at 5 and 6 VCPUs, the numpy path's orders found from the sorted signatures)."""
    packer = Packer(REFERENCE.layout(Bounds(*b)), True, jit=False)
    assert packer.sig_slots is not None
    rng = np.random.default_rng(3)
    sizes = np.array(packer.layout.sizes)
    m = 3000 if b[0] < 6 else 600
    for top in (1, 2, 3):
        rows = (rng.integers(0, top, size=(m, sizes.size)) % sizes).astype(packer.dtype_rows)
        rows[:50] = rows[0]  # identical rows, including the all-tied one
        assert (packer.canonical_keys(rows) == packer.canonical_keys_all(rows)).all()


def test_signature_pruning_on_other_layout_shapes() -> None:
    """Page-major VCPU index, a VCPU-valued variable first or later, VCPU x VCPU arrays."""
    from deferral.model import BOOL, PAGE, VCPU
    from deferral.model.schema import FRAME, VCPU_OR_NONE, Layout, Var

    shapes = [
        (Var("x", BOOL, (PAGE, VCPU)), Var("y", FRAME, (VCPU,)), Var("o", VCPU_OR_NONE, (VCPU,)),
         Var("z", BOOL, (VCPU, VCPU)), Var("w", FRAME, (VCPU, PAGE))),
        (Var("o", VCPU_OR_NONE, (PAGE,)), Var("y", FRAME, (VCPU,))),
        (Var("g", FRAME, (PAGE,)), Var("z", BOOL, (VCPU, VCPU)), Var("y", FRAME, (VCPU,))),
    ]
    rng = np.random.default_rng(5)
    for variables in shapes:
        layout = Layout(Bounds(3, 2, 2, 1), variables)
        packer = Packer(layout, True)
        sizes = np.array(layout.sizes)
        rows = (rng.integers(0, 2, size=(400, sizes.size)) % sizes).astype(packer.dtype_rows)
        back = packer.unpack(packer.canonical_keys(rows))
        for row, got in zip(rows, back):
            assert tuple(int(v) for v in got) == _least_image(layout, tuple(int(v) for v in row))


@pytest.mark.parametrize("b", [(2, 2, 1, 2), (3, 1, 2, 2)])
def test_keys_in_blocks_equal_one_batch(b: tuple) -> None:
    """More rows than a block (and a ragged last block): same keys as the all-images path."""
    packer = Packer(REFERENCE.layout(Bounds(*b)), True)
    rows = random_rows(packer, 2 * packing.BLOCK_ROWS + 17, seed=11)
    rows[::3] = rows[0]
    keys = packer.canonical_keys(rows)
    assert keys.shape == (rows.shape[0],)
    assert (keys == packer.canonical_keys_all(rows)).all()


def test_blas_threads_restores_the_setting() -> None:
    from threadpoolctl import threadpool_info

    def blas() -> list[int]:
        return [pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"]

    before = blas()
    if not before:
        pytest.skip("numpy without a BLAS thread pool")
    with blas_threads(1):
        assert blas() == [1] * len(before)
    assert blas() == before

def test_many_fitting_orders_are_keyed_in_halves(monkeypatch: pytest.MonkeyPatch) -> None:
    """More (row, order) pairs than ``MAX_PAIRS``: the rows are keyed half at a time, same keys."""
    packer = Packer(REFERENCE.layout(Bounds(5, 1, 1, 1)), True, jit=False)
    rng = np.random.default_rng(8)
    sizes = np.array(packer.layout.sizes)
    rows = (rng.integers(0, 2, size=(300, sizes.size)) % sizes).astype(packer.dtype_rows)
    rows[:40] = 0  # every VCPU tied: 120 orders each
    calls = []
    block = Packer._canonical_block
    monkeypatch.setattr(Packer, "_canonical_block", lambda self, r: calls.append(r.shape[0]) or block(self, r))
    monkeypatch.setattr(packing, "MAX_PAIRS", 500)
    assert (packer.canonical_keys(rows) == packer.canonical_keys_all(rows)).all()
    assert len(calls) > 3 and min(calls) < 10
