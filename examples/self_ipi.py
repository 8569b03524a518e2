"""A variant whose shootdown IPIs go to every VCPU, the initiator included.

The optimization: Linux's ``on_each_cpu_cond_mask`` and x86 ``flush_tlb_multi`` (and
Xen's ``flush_mask`` with the local CPU in the mask) run the flush for the local CPU
through the same path as for the others instead of special-casing it, which keeps one
code path. Here ``post_ipis`` sends the IPI to the initiator too, and the initiator
waits for its own ack: it takes its own IPI while in SdWait, flushes and acks like any
other VCPU. Safe, but it breaks the shipped lemma "no VCPU has an IPI from itself pending
or waits for itself". Try::

    deferral check --variant-file examples/self_ipi.py
    deferral prove --variant-file examples/self_ipi.py --no-shipped-lemmas

Computed (``python benchmarks/bench_prove.py --breaks 2,1,1,1 examples/self_ipi.py``):
that lemma is the one no longer inductive, ``send_ipis`` does not preserve it.
"""

from deferral.model import REFERENCE
from deferral.model.schema import VCPU


def post_ipis_to_all(s, i):
    """Send a shootdown IPI from i to every VCPU, i itself included, and wait for each ack."""
    for k in s.each(VCPU):
        s.ipi[k][i] = True
        s.waiting[i][k] = True


VARIANT = REFERENCE.derive(
    "self-ipi",
    doc="post_ipis sends the IPI to the initiator too; it handles and acks its own IPI.",
    procedures={"post_ipis": post_ipis_to_all},
)
