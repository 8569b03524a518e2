"""examples/drain_zaps.py as it was written before address spaces: the older notation, kept to test it.

A variant whose drain zaps other VCPUs' shadow entries instead of resyncing them.

Draining a notice for page p resyncs the draining VCPU's own shadow entry and zaps every
other VCPU's entry of p. It loops with ``range(s.N)`` and reads ``s.gpt[p]``, the notation
of one address space: at --spaces 1 it gives the results of examples/drain_zaps.py, at
more spaces a one-line error.
"""

from deferral.engine import Hypervisor
from deferral.model import REFERENCE


def zap(s, i, p):
    """Resync i's own shadow entry of p; zap every other VCPU's entry of p."""
    for k in range(s.N):
        with s.when(s.shadow[k][p] != 0):
            s.shadow[k][p] = s.gpt[p] if k == i else 0


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
