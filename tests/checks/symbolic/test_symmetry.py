"""Induction over one step instance per VCPU orbit (checks/symbolic/symmetry.py) gives the verdicts
of the full obligations, and a variant that treats one VCPU differently is not reduced."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from deferral.checks.symbolic import symmetry
from deferral.checks.terms.encoding import encode
from deferral.checks.symbolic.induction import check_inductive, houdini
from deferral.checks.symbolic.prove import prove
from deferral.model import PUBLISHED, REFERENCE, Bounds
from deferral.model.invariant import invariant_for
from deferral.model.protocol import Protocol
from deferral.model.reference import enqueue_notice
from deferral.model.variants import load_variant_file

EXAMPLES = Path(__file__).parents[3] / "examples"
#: In the normal run: the reference at three VCPUs, one bug, one example; the rest with DEFERRAL_SLOW=1.
QUICK = {"reference", "remote-no-drain", "self_ipi.py"}


def _cases() -> list[Any]:
    cases = [(name, p) for name, p in PUBLISHED.items()]
    cases += [(path.name, path) for path in sorted(EXAMPLES.glob("*.py"))]
    return [pytest.param(name, what, marks=() if name in QUICK else pytest.mark.slow, id=name)
            for name, what in cases]


def _verdicts(protocol: Protocol, bounds: Bounds, reduce: bool) -> tuple[list[str], str]:
    enc = encode(protocol, bounds)
    lemmas = invariant_for(enc.bounds)
    alive, _ = houdini(enc, lemmas, symmetry=reduce)
    return [lem.name for lem in alive], check_inductive(enc, lemmas, symmetry=reduce).status


@pytest.mark.parametrize("name,what", _cases())
def test_reduced_obligations_give_the_full_verdicts(name: str, what: Any) -> None:
    protocol = load_variant_file(what) if isinstance(what, Path) else what
    bounds = Bounds(3, 1, 1, 1) if name == "reference" else Bounds(2, 1, 1, 1)
    enc = encode(protocol, bounds)
    reps = symmetry.representatives(enc, invariant_for(bounds))
    assert reps is not None and len(reps) < enc.n_actions  # the reduction applies here
    assert _verdicts(protocol, bounds, True) == _verdicts(protocol, bounds, False)


def _enqueue_unless_last(s: Any, i: Any, p: Any, sp: Any = 0) -> None:
    """VCPU N-1's deferred writes lose their notice: it is not like the others."""
    if isinstance(i, int) and i == s.N - 1 and s.N > 1:
        return
    enqueue_notice(s, i, p, sp)


ASYMMETRIC = REFERENCE.derive("last-vcpu-loses-notice", doc="VCPU N-1's deferred writes are not queued.",
                              procedures={"enqueue_notice": _enqueue_unless_last})


def test_an_asymmetric_variant_is_not_reduced_and_not_proved() -> None:
    bounds = Bounds(2, 1, 1, 1)
    enc = encode(ASYMMETRIC, bounds)
    reps = symmetry.representatives(enc, invariant_for(bounds))
    assert reps is not None
    writes = [a.index for a in enc.model.actions if a.step.name == "write"]
    assert set(writes) <= set(reps)  # write(1, ...) is tried: its orbit is not symmetric
    alive, log = houdini(enc, invariant_for(bounds))
    assert any("write(1" in line for line in log), log
    assert check_inductive(enc, alive).status != "proved"
    assert prove(ASYMMETRIC, bounds, "auto", timeout=60, learn=False).status == "violated"


def test_an_asymmetric_lemma_turns_the_reduction_off() -> None:
    from deferral.model.invariant import Lemma

    only_first = Lemma("vcpu 0 is idle or not", (), lambda s: s.pc[0] == s.pc[0] + 0 * s.pc[1])
    first_idle = Lemma("vcpu 0 has no IPI from 1 pending", (), lambda s: s.not_(s.ipi[0][1]))
    enc = encode(REFERENCE, Bounds(2, 1, 1, 1))
    assert symmetry.representatives(enc, [only_first]) is not None  # the same on both sides
    assert symmetry.representatives(enc, [first_idle]) is None


def test_families_of_literals_are_checked_symmetric_literal_by_literal() -> None:
    """A family made of literals (strengthen.clause) is symmetric where each literal renames its
    instances alike (checked once per literal and encoding); a literal that names VCPU 0 turns the
    reduction off, and a family symmetric only as a whole is still found so by the whole query."""
    from deferral.checks.symbolic.strengthen import clause
    from deferral.checks.symbolic.vocabulary import Literal
    from deferral.model.schema import VCPU

    params = (("i", VCPU), ("k", VCPU))
    waiting = Literal("waiting[k][i]", lambda s, i, k: s.waiting[k][i], 1)
    pending = Literal("not ipi[i][k]", lambda s, i, k: s.not_(s.ipi[i][k]), 1)
    zero = Literal("ipi[0][1]", lambda s, i, k: s.ipi[0][1], 1)
    not_zero = Literal("not ipi[0][1]", lambda s, i, k: s.not_(s.ipi[0][1]), 1)
    enc = encode(REFERENCE, Bounds(3, 1, 1, 1))
    ok = clause(params, [pending, waiting])
    assert symmetry.representatives(enc, [ok]) is not None
    renamings = enc.derived["instance renamings"]
    assert all(renamings[(f, params, perm)] for f in ok.fn.any_of for perm in enc.layout.generators)
    assert symmetry.representatives(enc, [clause(params, [pending, zero])]) is None
    # each literal alone names VCPU 0, their disjunction is true: symmetric as a whole
    assert symmetry.representatives(enc, [clause(params, [zero, not_zero])]) is not None
