"""The bmc with VCPUs named in order (checks/symbolic/bmc_symmetry.py): the same shortest lengths as the
explicit search, fewer paths, and only where renaming VCPUs is known to commute with the protocol."""

from __future__ import annotations

import pytest
import z3

from deferral.checks.explicit.search import search
from deferral.checks.symbolic import bmc_symmetry
from deferral.checks.symbolic.bmc import BmcSearch
from deferral.checks.terms.encoding import encode
from deferral.model import PUBLISHED, REFERENCE, Bounds
from tests.checks.explicit.test_symmetry_guard import ASYMMETRIC, DEEP_ASYMMETRY

SPACE_BUGS = {"defer-non-current", "switch-no-drain", "resync-running-only"}
#: (resync-running-only left out: 12 steps at 2,1,1,1,S=2, 11 s of bmc; the other space bugs stand for it)
BUGS = sorted(set(PUBLISHED) - {"reference", "wait-irqs-off", "resync-running-only"})
AT = {"overflow-drop": (2, 2, 1, 1)}  # it needs a second page


def explicit_length(protocol, bounds: Bounds, symmetry: bool = True) -> int:  # noqa: ANN001
    bad = search(protocol, bounds, symmetry=symmetry, workers=1).outcome("no_stale_translation")
    assert bad.status == "violated" and bad.length is not None
    return bad.length


@pytest.mark.parametrize("name", BUGS)
def test_every_published_bug_has_the_explicit_searchs_shortest_length_with_vcpus_in_order(name: str) -> None:
    """At three VCPUs (six labellings of each path; two VCPUs and two spaces for the bugs that need a space, two pages for
    overflow-drop): the symmetric bmc's first violation is as long as the
    explicit search's shortest; the path is the model's own, ending in the violation."""
    bounds = Bounds(2, 1, 1, 1).replace(spaces=2) if name in SPACE_BUGS else Bounds(*AT.get(name, (3, 1, 1, 1)))
    enc = encode(PUBLISHED[name], bounds)
    found = BmcSearch(enc, 16, symmetric=True)
    assert found.symmetric and found.order is not None
    r = found.run(120)
    assert r.status == "violated" and r.depth == explicit_length(PUBLISHED[name], bounds)
    assert r.path is not None and enc.model.violations(r.path[-1][1])


def test_vcpus_are_named_in_order_along_the_path_the_bmc_finds() -> None:
    """drain-local-only at 3,1,1,1: in the solver's path (its steps' selectors; the path reported is then put in
    its least orientation), each VCPU is first named after the one below it."""
    enc = encode(PUBLISHED["drain-local-only"], Bounds(3, 1, 1, 1))
    found = BmcSearch(enc, 12)
    r = found.run(120)
    assert found.symmetric and r.status == "violated"
    model, first = found.solver.model(), []
    for d in range(r.depth):
        action = enc.model.actions[model.eval(enc.selector(f"{d}")).as_long()]
        for (_, domain), value in zip(action.step.params, action.args):
            if getattr(domain, "symmetric", False) and value not in first:
                first.append(value)
    assert len(first) >= 2 and first == list(range(len(first)))


def test_a_first_step_that_names_only_the_second_vcpu_is_ruled_out() -> None:
    """The constraint itself: from Init, a step naming VCPU 1 and not VCPU 0 has no place in an ordered path,
    one naming VCPU 0 has; without the constraint both are steps."""
    enc = encode(REFERENCE, Bounds(2, 1, 1, 1))
    order = bmc_symmetry.FirstNamed(enc)
    act = enc.selector("0")
    rules = order.step(act)
    write = {a.args[0]: a.index for a in enc.model.actions if a.name == "write" and len(set(a.args[:1])) == 1}
    for vcpu, allowed in ((0, True), (1, False)):
        s = z3.Solver()
        s.add(*rules, act == write[vcpu])
        assert (s.check() == z3.sat) is allowed, vcpu


def test_it_applies_only_where_renaming_vcpus_is_known_to_commute() -> None:
    """Published and two VCPUs or more: yes; one VCPU: nothing to rename; a variant that treats a VCPU
    differently (refused by the symmetry check): no, and the bmc then finds the explicit search's shortest
    without symmetry."""
    assert bmc_symmetry.applies(encode(REFERENCE, Bounds(3, 1, 1, 1)))
    assert not bmc_symmetry.applies(encode(REFERENCE, Bounds(1, 1, 1, 1)))
    for asym in (ASYMMETRIC, DEEP_ASYMMETRY):
        enc = encode(asym, Bounds(2, 1, 1, 1))
        assert not bmc_symmetry.applies(enc)
        found = BmcSearch(enc, 16)
        assert not found.symmetric
        r = found.run(120)
        assert r.status == "violated" and r.depth == explicit_length(asym, Bounds(2, 1, 1, 1), symmetry=False)


def test_auto_starts_no_symmetry_proof_at_the_requested_bounds_with_less_time_left_than_it_may_take(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A variant file's VCPU symmetry at the requested bounds rests on a Z3 proof (3.3-4 s at 6,3,3,3,S=3), which
    ran prove past its limit into the command's hard limit when a bmc slice started it with 1-2 s left. With
    less time left than SYMMETRY_PROOF_MIN_S (here: always), auto's explicit search there is not tried and its bmc
    there names the VCPUs in every order: the same shortest counterexample, and no proof asked at those bounds."""
    from pathlib import Path

    from deferral.checks.explicit import symmetry_guard
    from deferral.checks.symbolic import prove as auto
    from deferral.model.variants import load_variant_file

    asked: list[Bounds] = []
    real = symmetry_guard.check_symmetry

    def spy(protocol, at, *args, **kw):  # type: ignore[no-untyped-def]
        asked.append(at)
        return real(protocol, at, *args, **kw)

    monkeypatch.setattr(symmetry_guard, "check_symmetry", spy)
    monkeypatch.setattr(auto, "SYMMETRY_PROOF_MIN_S", 1e9)
    bug = load_variant_file(Path(__file__).parents[1] / "compare" / "data" / "write_nonpresent.py")
    bounds = Bounds(3, 1, 2, 1)  # violated at 2,1,2,1 in 6 steps (the ladder finds it), and no sooner here
    res = auto.prove(bug, bounds, timeout=60)
    assert (res.status, res.depth, res.shortest) == ("violated", 6, True), res.reason
    assert asked and bounds not in asked  # the smaller instances' proofs (fractions of a second) are still made
    assert any("less than the VCPU symmetry proof it rests on may take" in line for line in res.log)
