"""The shipped invariant is inductive for the reference; weakened ones are caught with a CTI."""

from __future__ import annotations

import pytest

from deferral.checks.symbolic.induction import check_inductive, houdini
from deferral.checks.terms.encoding import encode
from deferral.model import PUBLISHED, REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.invariant import INVARIANT, without

STALE = "shadow[k][p] not 0 and not gpt[p] implies the last writer of p has p queued"


@pytest.mark.parametrize("bounds", [Bounds(2, 1, 1, 1), Bounds(2, 2, 2, 2), Bounds(3, 2, 1, 2)])
def test_shipped_invariant_is_inductive(bounds: Bounds) -> None:
    assert check_inductive(encode(REFERENCE, bounds), INVARIANT).status == "proved"


def test_every_lemma_holds_in_every_reachable_state() -> None:
    model = Model(REFERENCE, Bounds(2, 1, 1, 1))
    seen, frontier = {model.initial}, [model.initial]
    while frontier:
        nxt = []
        for s in frontier:
            for _, t in model.successors(s):
                c = model.canonical(t)
                if c not in seen:
                    seen.add(c)
                    nxt.append(c)
        frontier = nxt
    states = list(seen)
    assert len(states) == 3163  # PROTOCOL.md, up to VCPU symmetry
    for lemma in INVARIANT:
        for s in states:
            for args in _args(lemma, model.bounds):
                assert lemma.fn(model.context(s), *args), (lemma.name, args, model.to_json(s))


def _args(lemma, bounds):  # type: ignore[no-untyped-def]
    from itertools import product
    return product(*(range(d.size(bounds)) for _, d in lemma.params))


def test_dropping_a_lemma_gives_a_counterexample_to_induction() -> None:
    res = check_inductive(encode(REFERENCE, Bounds(2, 1, 1, 1)), without([STALE]))
    assert res.status == "not-inductive" and res.cti is not None
    model = Model(REFERENCE, Bounds(2, 1, 1, 1))
    assert model.apply(res.cti.before, res.cti.action) == res.cti.after
    assert any("no_stale_translation" in b for b in res.cti.broken)


def test_the_property_alone_is_not_inductive() -> None:
    assert check_inductive(encode(REFERENCE, Bounds(2, 1, 1, 1)), INVARIANT[-1:]).status == "not-inductive"


def test_houdini_keeps_the_shipped_invariant_and_drops_what_a_mutant_breaks() -> None:
    alive, _ = houdini(encode(REFERENCE, Bounds(2, 1, 1, 1)), INVARIANT)
    assert alive == list(INVARIANT)
    alive, log = houdini(encode(PUBLISHED["drain-local-only"], Bounds(2, 1, 1, 1)), INVARIANT)
    assert INVARIANT[-1] not in alive and log


@pytest.mark.parametrize("spaces", [1, 2])
def test_a_broken_lemma_is_named_as_read_at_the_bounds(spaces: int) -> None:
    """A counterexample to induction names the lemma instance in the text of its bounds: at one space
    without the space argument (it printed "(k=0, t=0, p=0)"), at two with the space index written out
    (it printed the one-space text "req[k][p] implies ... gpt[p]" beside "t=1": qa3, a user's tagged TLB)."""
    res = check_inductive(encode(PUBLISHED["reload-no-drain"], Bounds(2, 1, 1, 1).replace(spaces=spaces)), INVARIANT)
    assert res.status == "not-inductive" and res.cti is not None and res.cti.broken
    spaced = {lem.name: lem.spaced for lem in INVARIANT if lem.spaced}
    req = [b for b in res.cti.broken if b.startswith("req[k]")]
    assert req, res.cti.broken
    if spaces == 1:
        assert all("t=" not in b for b in res.cti.broken), res.cti.broken
        assert all(b.split(" (")[0] in {lem.name for lem in INVARIANT} or "(" in b for b in res.cti.broken)
    else:
        assert not any(b.startswith(name + " (") for b in res.cti.broken for name in spaced), res.cti.broken
        assert any(b.startswith(text + " (") and "t=" in b for b in res.cti.broken for text in spaced.values())
