"""Compiled step kernels compute exactly what the step functions compute over numpy batches."""

from __future__ import annotations

import numpy as np
import pytest

from deferral.checks.explicit import expand, kernels
from deferral.checks.explicit.kernels import Kernel, compile_action, compile_property
from deferral.checks.explicit.numpy_ops import guard_mask, property_holds, successors
from deferral.checks.explicit.vectorized import explore_vectorized
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.context import StepError
from deferral.model.variants import PUBLISHED

BOUNDS = [Bounds(2, 1, 2, 2), Bounds(3, 1, 1, 2), Bounds(2, 2, 1, 1)]


def random_rows(layout, n: int, seed: int) -> np.ndarray:
    """Rows of in-domain slot values (not necessarily reachable: every path gets exercised)."""
    rng = np.random.default_rng(seed)
    sizes = np.array([slot.size for slot in layout.slots])
    return (rng.integers(0, 1 << 30, size=(n, len(sizes))) % sizes).astype(np.uint8)


@pytest.mark.parametrize("name", sorted(PUBLISHED))
@pytest.mark.parametrize("bounds", BOUNDS, ids=str)
def test_kernels_equal_numpy_path_on_random_rows(name: str, bounds: Bounds) -> None:
    protocol = PUBLISHED[name]
    model = Model(protocol, bounds)
    layout, procs = model.layout, protocol.procedure_table
    rows = random_rows(layout, 4000, seed=len(name) + bounds.vcpus)
    for action in model.actions:
        label = action.label()
        kernel = compile_action(layout, procs, action.step, action.args, label, protocol.name)
        assert kernel.guard is not None and kernel.effect is not None, label
        want = guard_mask(layout, procs, rows, action.step, action.args, label)
        got = kernel.guard(rows)
        got = np.full(rows.shape[0], got) if isinstance(got, bool) else got
        assert np.array_equal(got, want), label
        idx = np.flatnonzero(want)
        if idx.size == 0:
            continue
        try:
            expected = successors(layout, procs, rows, idx, action.step, action.args, label, protocol.name)
        except StepError as exc:  # random rows may make a queue overflow: same error expected
            with pytest.raises(StepError) as info:
                kernel.effect(rows[idx])
            assert str(info.value) == str(exc)
            continue
        out = rows[idx]
        kernel.effect(out)
        assert out.dtype == expected.dtype and np.array_equal(out, expected), label
    for prop in protocol.properties:
        holds = compile_property(layout, procs, prop)
        assert holds is not None
        assert np.array_equal(holds(rows), property_holds(layout, procs, rows, prop)), prop.name


def _no_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(expand, "compile_action", lambda *a, **k: Kernel(None, None))
    monkeypatch.setattr(expand, "compile_property", lambda *a, **k: None)


def _summary(r) -> tuple:
    return (r.states, r.transitions, r.depth, r.complete,
            [(o.name, o.status, o.path) for o in r.outcomes])


@pytest.mark.parametrize("name", ["reference", "ipi-before-drain", "overflow-drop", "remote-no-drain"])
def test_search_with_kernels_equals_numpy_path(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    bounds = Bounds(2, 1, 2, 2)
    fast = explore_vectorized(PUBLISHED[name], bounds, workers=1)
    _no_kernels(monkeypatch)
    slow = explore_vectorized(PUBLISHED[name], bounds, workers=1)
    assert _summary(fast) == _summary(slow)


def test_python_branching_gives_no_kernel() -> None:
    def guard(s, i):
        return s.pc[i] == 0 if s.pc[i] == 0 else False  # Python `if` on a state value

    model = Model(REFERENCE, Bounds(1, 1, 1, 1))
    action = model.actions[0]
    assert kernels.compile_guard(model.layout, REFERENCE.procedure_table, guard, (0,)) is None
    assert compile_action(model.layout, REFERENCE.procedure_table, action.step, action.args,
                          action.label(), "reference").guard is not None


def test_out_of_domain_write_checked_in_kernel() -> None:
    model = Model(REFERENCE, Bounds(1, 1, 1, 1))
    step = next(a.step for a in model.actions if a.step.name == "fill")

    def bad_effect(s, i, p):
        s.tlb[i][p] = s.shadow[i][p] + 5

    bad = type(step)(step.name, step.params, step.guard, bad_effect)
    kernel = compile_action(model.layout, REFERENCE.procedure_table, bad, (0, 0), "fill(0, 0)", "x")
    assert kernel.effect is not None and "_check" in kernel.effect.source
    rows = np.zeros((3, len(model.layout.slots)), dtype=np.uint8)
    with pytest.raises(StepError, match=r"step fill\(0, 0\) in x: wrote 5 to .*outside its domain"):
        kernel.effect(rows)
