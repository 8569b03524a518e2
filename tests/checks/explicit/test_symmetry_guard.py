"""A reduced search refuses a variant whose steps do not treat the VCPUs alike (it would explore another system)."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

import pytest

from deferral.checks.explicit.search import search
from deferral.checks.explicit.symmetry_guard import check_symmetry
from deferral.model import PUBLISHED, REFERENCE, Bounds
from deferral.model.reference import enqueue_notice
from deferral.model.variants import AsymmetricProtocol

ASYMMETRIC_FILE = '''"""VCPU N-1's deferred writes are not queued."""
from deferral.model import REFERENCE
from deferral.model.reference import enqueue_notice
from deferral.model.variants import AsymmetricProtocol


def enqueue_unless_last(s, i, p, sp=0):
    if i == s.N - 1 and s.N > 1:
        return
    enqueue_notice(s, i, p, sp)


VARIANT = REFERENCE.derive("last-vcpu-loses-notice", doc="VCPU N-1 loses its notices.",
                           procedures={"enqueue_notice": enqueue_unless_last})
'''


def _enqueue_unless_last(s: Any, i: Any, p: Any, sp: Any = 0) -> None:
    if i == s.N - 1 and s.N > 1:
        return
    enqueue_notice(s, i, p, sp)


ASYMMETRIC = REFERENCE.derive("last-vcpu-loses-notice", doc="VCPU N-1 loses its notices.",
                              procedures={"enqueue_notice": _enqueue_unless_last})


def test_an_asymmetric_variant_is_refused_with_symmetry_and_searched_without() -> None:
    with pytest.raises(AsymmetricProtocol, match="does not treat its VCPUs alike"):
        search(ASYMMETRIC, Bounds(2, 1, 1, 1))
    plain = search(ASYMMETRIC, Bounds(2, 1, 1, 1), symmetry=False)
    assert plain.outcome("no_stale_translation").status == "violated"


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_every_published_protocol_treats_its_vcpus_alike(name: str) -> None:
    copy = PUBLISHED[name].derive(f"{name}-copy", doc="the same steps, not recognised as published")
    check_symmetry(copy, Bounds(3, 1, 1, 1), sample=30)  # raises if not


def test_the_cli_says_it_in_one_line_exit_2(cli, tmp_path: Path) -> None:
    variant = tmp_path / "asym.py"
    variant.write_text(ASYMMETRIC_FILE)
    out = cli("check", "--variant-file", str(variant))
    assert out.code == 2 and "Traceback" not in out.err
    assert len(out.err.strip().splitlines()) == 1 and "--no-symmetry" in out.err
    assert cli("check", "--variant-file", str(variant), "--no-symmetry").code == 1


def _remote_flush_unless_vcpu0(s: Any, k: Any, i: Any) -> None:
    """VCPU 0's IPI handler skips its TLB flush: an asymmetry that shows only once VCPU 0 handles an
    IPI with a TLB entry, deeper than the first breadth-first states."""
    p, sp = s.pg[i], s.sp[i]
    if k != 0:
        with s.when(sp == s.cr3[k]):
            s.tlb[k][p] = 0
    with s.when(s.covers[i] | (s.lw[sp][p] == k)):
        s.req[k][sp][p] = True


DEEP_ASYMMETRY = REFERENCE.derive("vcpu0-skips-flush", procedures={"remote_flush": _remote_flush_unless_vcpu0})


@pytest.mark.parametrize("bounds", [(2, 1, 1, 1), (3, 1, 1, 1)])
def test_an_asymmetry_deeper_than_the_first_states_is_refused_not_reported_holding(bounds) -> None:
    """The reduced search said 'holds' (exit 0) where the search without symmetry finds the bug."""
    assert search(DEEP_ASYMMETRY, Bounds(2, 1, 1, 1), symmetry=False).outcome("no_stale_translation").status \
        == "violated"
    with pytest.raises(AsymmetricProtocol):
        check_symmetry(DEEP_ASYMMETRY, Bounds(*bounds))


#: the same change as a user's file: the function above, its source copied
DEEP_ASYMMETRY_FILE = ("from typing import Any\n\nfrom deferral.model import REFERENCE\n\n\n"
                       + inspect.getsource(_remote_flush_unless_vcpu0)
                       + "\n\nVARIANT = REFERENCE.derive('vcpu0-skips-flush', "
                         "procedures={'remote_flush': _remote_flush_unless_vcpu0})\n")


def test_commands_without_a_symmetry_flag_search_an_asymmetric_variant_without_symmetry(cli, tmp_path: Path) -> None:
    """regress and simulate have no --no-symmetry: they refused the variant, pointing at a flag they
    do not have; prove's explicit route left it to bmc. Each now searches it without symmetry."""
    variant = tmp_path / "vcpu0.py"
    variant.write_text(DEEP_ASYMMETRY_FILE)
    regress = cli("regress", "--candidate", str(variant), "--bounds", "2,1,1,1", "--no-corpus", "--no-behaviours",
                  "--json")
    assert regress.code == 1, regress.err
    simulate = cli("simulate", "--variant-file", str(variant), "--workers", "1", "--walks", "8192", "--depth", "40",
                   "--json")
    assert simulate.code == 1, simulate.err
    assert json.loads(simulate.out)["length"] == 8  # the shrinking BFS (no symmetry) finds the shortest
    from deferral.checks.symbolic.exhaust import explore
    from deferral.model import load_variant_file
    ex = explore(load_variant_file(variant), Bounds(2, 1, 1, 1), 30.0)
    assert ex.status == "violated" and ex.depth == 8
