"""The safe examples/: each holds (explicit search), breaks a different shipped lemma, and inference proves it."""

from __future__ import annotations

from pathlib import Path

import pytest

from deferral.checks.explicit.search import search
from deferral.checks.symbolic import infer as inference
from deferral.checks.symbolic.encoding import encode
from deferral.checks.symbolic.induction import houdini
from deferral.checks.symbolic.bmc import bmc
from deferral.model import REFERENCE, Bounds
from deferral.model.protocol import Protocol, step
from deferral.model.reference import PC, write_effect
from deferral.model.schema import FRAME, PAGE, SPACE, VCPU
from deferral.model.invariant import invariant_for
from deferral.model.variants import load_variant_file

EXAMPLES = Path(__file__).parents[3] / "examples"
#: example file -> (bounds where it differs from the reference, the shipped lemma it breaks there)
BREAKS = {
    "lazy_ipi_return.py": (Bounds(2, 1, 1, 1), "waitret[k] implies pc[k] is Ipi"),
    "lazy_cur_clear.py": (Bounds(2, 1, 1, 1), "cur[k] names a VCPU exactly when pc[k] is Ipi"),
    "lazy_waitret_clear.py": (Bounds(2, 1, 1, 1), "waitret[k] implies pc[k] is Ipi"),
    "self_ipi.py": (Bounds(2, 1, 1, 1), "no VCPU has an IPI from itself pending or waits for itself"),
    "mask_before_send.py": (Bounds(2, 1, 1, 1), "waiting[i][k] implies i has sent its IPIs (SdWait, or Ipi with waitret)"),
    "lazy_tlb_ipi.py": (Bounds(2, 1, 1, 1, 2),
                        "covers[i] after sending and k acked (not waiting[i][k]) implies req[k][pg[i]]"),
}


@pytest.mark.parametrize("name", sorted(BREAKS))
def test_example_holds_and_houdini_drops_its_lemma(name: str) -> None:
    bounds, lemma = BREAKS[name]
    protocol = load_variant_file(EXAMPLES / name)
    found = search(protocol, bounds)
    assert all(o.status == "holds" for o in found.outcomes), found
    alive, _ = houdini(encode(protocol, bounds), invariant_for(bounds))
    assert lemma not in {x.name for x in alive}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BREAKS))
def test_inference_proves_example_without_shipped_lemmas(name: str) -> None:
    bounds, _ = BREAKS[name]
    protocol = load_variant_file(EXAMPLES / name)
    res = inference.infer(encode(protocol, bounds), timeout=300)
    assert res.status == "proved", res.reason


def same_value_mutant() -> Protocol:
    """A buggy mutant (Linux's "skip set_pte of the same value", without the pending-notice check):
    the last writer no longer has the page queued while another VCPU's notice is pending."""
    @step(("i", VCPU), ("s", SPACE), ("p", PAGE), ("f", FRAME), guard=lambda s, i, sp, p, f: s.pc[i] == PC.Idle)
    def write(s, i, sp, p, f):  # noqa: ANN001, ANN202
        """The guest writes PTE p := f; a write of the same value is neither queued nor resynced."""
        same = s.gpt[sp][p] == f

        @s.when(s.not_(same))
        def _changed() -> None:
            write_effect(s, i, sp, p, f, sp == s.cr3[i])

        @s.when(same)
        def _unchanged() -> None:
            s.lw[sp][p] = i
            for k in s.each(VCPU):
                s.req[k][sp][p] = False
    return REFERENCE.derive("same-value-skip", doc="a write of the same value is not queued", replace_steps=[write])


def test_same_value_mutant_is_refuted_exactly_and_never_proved() -> None:
    protocol, bounds = same_value_mutant(), Bounds(2, 1, 1, 1)
    found = search(protocol, bounds)
    bad = [o for o in found.outcomes if o.status == "violated"]
    assert bad and bad[0].name == "no_stale_translation"
    short = bmc(encode(protocol, bounds), bad[0].length or 0)
    assert short.status == "violated" and short.depth == bad[0].length
    res = inference.infer(encode(protocol, bounds), timeout=120)
    assert res.status != "proved", res.families
