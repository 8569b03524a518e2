"""A reduced search refuses a variant whose steps do not treat the VCPUs alike (it would explore another system)."""

from __future__ import annotations

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
