"""Coverage: per step transitions and enabling states, per property states checked.

The vectorized explorer's figures equal the plain explorer's (one state at a time).
"""

from __future__ import annotations

import json

import pytest

from deferral.checks.explicit.explore import explore
from deferral.checks.explicit.vectorized import explore_vectorized
from deferral.model import PUBLISHED, Bounds
from deferral.model.concrete import Model


@pytest.mark.parametrize("name,bounds,symmetry", [
    ("reference", Bounds(1, 1, 2, 1), False),
    ("drain-local-only", Bounds(2, 1, 1, 1), True),  # the invariant fails at level 8
    ("wait-irqs-off", Bounds(2, 1, 1, 1), True),
    ("reference", Bounds(1, 2, 1, 1), True),
])
def test_vectorized_and_plain_coverage_agree(name: str, bounds: Bounds, symmetry: bool) -> None:
    plain = explore(Model(PUBLISHED[name], bounds), symmetry=symmetry)
    fast = explore_vectorized(PUBLISHED[name], bounds, symmetry=symmetry, workers=2)
    assert plain.coverage is not None and fast.coverage is not None
    assert fast.coverage == plain.coverage
    cov = fast.coverage
    assert sum(cov.transitions.values()) == fast.transitions
    assert all(0 <= cov.enabled_in[s] <= fast.states for s in cov.enabled_in)
    assert all(cov.enabled_in[s] <= cov.transitions[s] for s in cov.enabled_in)
    for o in fast.outcomes:
        if o.status == "holds":
            assert cov.checked[o.name] == fast.states
        elif o.kind == "invariant":  # evaluated through the level of the first violation only
            assert 0 < cov.checked[o.name] < fast.states


def test_ipi_steps_never_enabled_with_one_vcpu() -> None:
    result = explore_vectorized(PUBLISHED["reference"], Bounds(1, 1, 1, 1), workers=1)
    assert result.coverage is not None
    assert result.coverage.never_enabled() == ["take_ipi", "ack_ipi"]


def test_check_reports_coverage_and_warns_on_never_enabled_steps(cli) -> None:
    one = cli("check", "--vcpus", "1", "--json")
    assert one.code == 0
    doc = json.loads(one.out)
    steps = {s["name"]: s for s in doc["coverage"]["steps"]}
    assert steps["take_ipi"] == {"name": "take_ipi", "transitions": 0, "enabled_in": 0}
    assert sum(s["transitions"] for s in steps.values()) == doc["transitions"]
    assert {p["name"]: p["states_checked"] for p in doc["coverage"]["properties"]} == {
        "no_stale_translation": 75, "shootdowns_can_complete": 75}
    assert "warning: step take_ipi is never enabled" in one.err
    assert "step ack_ipi" in one.err
    two = cli("check")
    assert "never enabled" not in two.err
    assert "Coverage" in two.out and "enabled in" in two.out


def test_a_search_stopped_by_a_limit_warns_once_not_per_step(cli) -> None:
    stopped = cli("check", "--max-states", "1", "--json")
    assert stopped.code == 3
    assert "never enabled" not in stopped.err
    lines = [line for line in stopped.err.splitlines() if "not enabled" in line]
    assert len(lines) == 1 and "incomplete" in lines[0] and "take_ipi" in lines[0]
