"""The shipped lemmas as printed: in the protocol's indices at the bounds they are proved at."""

from __future__ import annotations

import re

from deferral.model import Bounds
from deferral.model.invariant import INVARIANT, invariant_for


def shown(b: Bounds) -> list[str]:
    return [lem.show(b) for lem in invariant_for(b)]


def test_at_two_spaces_a_lemma_over_spaces_names_the_space_of_each_read() -> None:
    """Printed at S=2 as at S=1, "for all k, t, p: shadow[k][p] ..." named a variable t its text
    never used, and read shadow, gpt and req without the space they are indexed by."""
    lines = shown(Bounds(2, 1, 1, 1, 2))
    over_spaces = [line for line in lines if line.startswith("for all k, t, p:")]
    assert len(over_spaces) == 3
    for line in over_spaces:
        assert not re.search(r"(shadow|req)\[k\]\[p\]|gpt\[p\]", line), line
        assert "[t]" in line
    assert any("req[k][sp[i]][pg[i]]" in line for line in lines)


def test_at_one_space_the_texts_are_the_lemma_names() -> None:
    b = Bounds(2, 1, 1, 1)
    assert shown(b) == [lem.show(b) for lem in INVARIANT]
    assert all(lem.name in lem.show(b) for lem in INVARIANT)
    assert not any("[t]" in line for line in shown(b))
