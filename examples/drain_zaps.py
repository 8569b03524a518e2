"""A variant whose drain zaps other VCPUs' shadow entries instead of resyncing them.

Draining a notice for page p resyncs the draining VCPU's own shadow entry from the guest
PTE, and clears (zaps) every other VCPU's shadow entry of p, so that they fault it in
again from the guest PTE the next time they touch the page. The file makes the change in
the model (``VARIANT``) and in the engine (``ENGINE``). Check it with::

    deferral regress --baseline reference --candidate examples/drain_zaps.py
    deferral check --variant-file examples/drain_zaps.py --spaces 2
    deferral engine run --variant-file examples/drain_zaps.py --seconds 1
    deferral conform --variant-file examples/drain_zaps.py --depth 4

It breaks no shipped lemma (``python benchmarks/bench_prove.py --breaks 2,1,1,1,2
examples/drain_zaps.py``: none), so the shipped lemmas prove it at once.
"""

from deferral.engine import Hypervisor
from deferral.model import REFERENCE, VCPU


def zap(s, i, p, sp):
    """Resync i's own shadow entry of page p of space sp; zap every other VCPU's entry of it."""
    for k in s.each(VCPU):
        with s.when(s.shadow[k][sp][p] != 0):
            s.shadow[k][sp][p] = s.ite(k == i, s.gpt[sp][p], 0)


VARIANT = REFERENCE.derive(
    "drain-zaps",
    doc="Draining zaps other VCPUs' shadow entries instead of resyncing them.",
    procedures={"resync": zap},
)


class ZappingHypervisor(Hypervisor):
    """The engine with the same change: draining a notice zaps the other VCPUs' entries."""

    def resync(self, drainer, table, page):
        for vcpu in self.vcpus:
            shadow = vcpu.shadow_of(table)  # vcpu's cached shadow of this guest table, if any
            if shadow is not None and shadow[page] != 0:
                shadow[page] = table[page] if vcpu.index == drainer else 0


ENGINE = ZappingHypervisor
