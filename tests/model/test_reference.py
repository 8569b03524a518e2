"""The reference and the published variants against PROTOCOL.md's table and verdicts."""

from __future__ import annotations

import pytest

from deferral.checks.explicit.search import search
from deferral.model import PUBLISHED, REFERENCE, Bounds
from deferral.model.expected import REFERENCE_COUNTS, SMALL, VERDICTS

# (N, V, F, Q) -> (reachable states, up to VCPU symmetry), and the published verdicts
SMALL_TABLE = {b: REFERENCE_COUNTS[b] for b in SMALL}

@pytest.mark.parametrize("bounds", list(SMALL_TABLE), ids=lambda b: "N{}V{}F{}Q{}".format(*b))
@pytest.mark.parametrize("symmetry", [True, False], ids=["sym", "nosym"])
def test_reference_counts_and_verdicts(bounds: tuple[int, int, int, int], symmetry: bool) -> None:
    result = search(REFERENCE, Bounds(*bounds), symmetry=symmetry)
    full, orbits = SMALL_TABLE[bounds]
    assert result.states == (orbits if symmetry else full)
    assert result.complete
    assert [(o.name, o.status) for o in result.outcomes] == [
        ("no_stale_translation", "holds"), ("shootdowns_can_complete", "holds")]
    assert result.exit_code == 0


@pytest.mark.parametrize("name", list(VERDICTS))
def test_published_variant_verdict_and_shortest_length(name: str, searched) -> None:
    bounds, prop, length = VERDICTS[name]
    result = searched(name, bounds, False)
    outcome = result.outcome(prop)
    assert outcome.status == "violated"
    if length is not None:
        assert outcome.length == length
    others = [o for o in result.outcomes if o.name != prop]
    assert all(o.status == "holds" for o in others)


def test_overflow_drop_holds_at_one_page() -> None:
    result = search(PUBLISHED["overflow-drop"], Bounds(2, 1, 1, 1))
    assert all(o.status == "holds" for o in result.outcomes)


def test_variants_are_derivations_not_copies() -> None:
    for name, variant in PUBLISHED.items():
        if name == "reference":
            continue
        assert variant.parent is REFERENCE
        assert 1 <= len(variant.changes) <= 2
        unchanged = [s for s in variant.steps if s in REFERENCE.steps]
        assert len(unchanged) >= len(REFERENCE.steps) - 2
