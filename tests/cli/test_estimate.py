"""The size of a search said before it starts (a layout bound) and estimated after its first levels."""

from __future__ import annotations

from fuzz_support import run_cli
import pytest

import deferral.cli.estimate as estimate
from deferral.checks.explicit.limits import layout_bound, project_states
from deferral.checks.results import Progress
from deferral.model.reference import REFERENCE

#: States per BFS level of the reference at 2,2,1,2 with symmetry (from a search; 4,515,824 in all).
LEVELS_2212 = [1, 10, 81, 478, 2175, 7562, 21062, 48954, 100168, 183606, 289035, 394952, 490044, 542294,
               541085, 516790, 453616, 364253, 252715, 137101, 88505, 41450, 24933, 9668, 3449, 1309, 388,
               113, 25, 3]


def test_the_extrapolation_is_none_while_levels_grow_faster_and_close_once_growth_slows() -> None:
    assert project_states([1, 2, 4, 8, 16, 32, 64]) is None  # no slowing: no end in sight
    total = sum(LEVELS_2212)
    ratios = [project_states(LEVELS_2212[:d + 1]) / total for d in range(10, 20)]
    assert all(0.7 <= r <= 1.1 for r in ratios), ratios


def test_layout_bound_is_the_product_of_the_domains_over_the_vcpu_permutations() -> None:
    assert layout_bound((2, 3, 4)) == 24 and layout_bound((2, 3, 4), symmetric=2) == 12
    sizes = tuple(REFERENCE.layout(REFERENCE.bounds(2, 2, 1, 2)).sizes)
    assert layout_bound(sizes, 2) >= 4_515_824


def test_the_estimate_is_printed_once_and_warns_above_the_memory_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    lines: list[str] = []
    notes = estimate.SizeNotes(REFERENCE, REFERENCE.bounds(2, 2, 1, 2), True, 1, lines.append)
    notes.before()
    assert lines and lines[0].startswith("size: at most") and "by the layout" in lines[0]
    forward: list[Progress] = []
    report = notes.wrap(forward.append)
    stored = 1
    for depth, size in enumerate(LEVELS_2212[1:15], 1):
        stored += size
        report(Progress(stored, 0, depth, size, 1.0))
    assert len(forward) == 14  # every report goes on to the live display
    said = [line for line in lines if line.startswith("estimate:")]
    assert len(said) == 1 and "extrapolated from the growth of BFS levels 1.." in said[0]
    assert any(line.startswith("warning: the estimate passes --memory-limit") for line in lines)
    # with a work folder the search spills past the limit: a note, not a warning of exit 3
    lines.clear()
    spilling = estimate.SizeNotes(REFERENCE, REFERENCE.bounds(2, 2, 1, 2), True, 1, lines.append, spills=True)
    report = spilling.wrap(None)
    stored = 1
    for depth, size in enumerate(LEVELS_2212[1:15], 1):
        stored += size
        report(Progress(stored, 0, depth, size, 1.0))
    assert any(line.startswith("note: the estimate passes --memory-limit") and "--work-dir" in line for line in lines)
    assert not any(line.startswith("warning:") for line in lines)


def test_a_small_search_says_nothing_about_its_size() -> None:
    o = run_cli("check", "--json")
    assert o.code == 0 and "size:" not in o.err and "estimate:" not in o.err
