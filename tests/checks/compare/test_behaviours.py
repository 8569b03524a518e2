"""Behaviours of a side whose steps treat a VCPU differently: enumerated without symmetry."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from deferral.checks.compare.behaviours import Projection, compare, shared_variables
from deferral.checks.explicit.reachable import reachable
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.traces.report.document import states_shown

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "explicit"))
from test_symmetry_guard import DEEP_ASYMMETRY  # noqa: E402  (VCPU 0's IPI handler skips its flush)


def behaviours(protocol, bounds: Bounds, symmetry: bool) -> int:  # noqa: ANN001
    reach = reachable(protocol, bounds, symmetry=symmetry)
    projection = Projection.of(reach.model.layout, shared_variables(REFERENCE, protocol))
    return int(np.unique(projection.keys(reach.rows)).size)


def test_an_asymmetric_candidates_behaviours_are_all_counted() -> None:
    """A symmetry-reduced enumeration of a protocol that treats VCPU 0 differently misses states:
    regress reported 30 added behaviours where there are 42. Now that side is enumerated whole (its
    behaviours still counted up to symmetry), and its state count is marked as not orbits."""
    b = Bounds(2, 1, 1, 1)
    d = compare(REFERENCE, DEEP_ASYMMETRY, b)
    assert d.baseline_symmetric and not d.candidate_symmetric
    whole = behaviours(DEEP_ASYMMETRY, b, symmetry=False)
    assert d.candidate_behaviours == whole > behaviours(DEEP_ASYMMETRY, b, symmetry=True)
    assert d.candidate_states == len(reachable(DEEP_ASYMMETRY, b, symmetry=False))
    assert states_shown(d).endswith("*") and "*" not in states_shown(d).split("/")[0]
    assert d.added_example is not None  # a real path of the candidate (replayed without renaming)
    state = d.added_example[0][1]
    model = Model(DEEP_ASYMMETRY, b)
    for action, after in d.added_example[1:]:
        state = model.apply(state, action)
        assert state == after


def test_symmetric_sides_are_counted_in_orbits_as_before() -> None:
    d = compare(REFERENCE, REFERENCE, Bounds(2, 1, 1, 1))
    assert d.baseline_symmetric and d.candidate_symmetric and d.baseline_states == 3163 and d.added == d.lost == 0
    assert "*" not in states_shown(d)
