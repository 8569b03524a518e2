"""A variant whose shootdown IPIs go only to the VCPUs that run the shot-down space.

The optimization: Linux's x86 ``flush_tlb_mm_range`` sends the flush IPI only to the
CPUs in ``mm_cpumask(mm)`` (those that run, or lazily hold, the address space), and
KVM/Xen likewise skip VCPUs whose current CR3 is another guest address space: a VCPU
that does not run the space has no TLB entries of it (a CR3 load flushes its TLB) and its
shadow entries are resynced by the drain. Here ``post_ipis`` posts to, and waits for,
only the other VCPUs whose ``cr3`` is the shootdown's space. At one space it is the
reference; from two spaces on it breaks the shipped lemma "covers[i] after sending and k
acked (not waiting[i][k]) implies req[k][pg[i]]" (a VCPU that was never sent the IPI counts
as acked). Try::

    deferral check --variant-file examples/lazy_tlb_ipi.py --spaces 2
    deferral prove --variant-file examples/lazy_tlb_ipi.py --spaces 2 --no-shipped-lemmas

Computed (``python benchmarks/bench_prove.py --breaks 2,1,1,1,2 examples/lazy_tlb_ipi.py``):
that lemma is the one no longer inductive, ``send_ipis`` does not preserve it.
"""

from deferral.model import REFERENCE
from deferral.model.schema import VCPU


def post_ipis_to_space(s, i):
    """Send a shootdown IPI from i to every other VCPU that runs the shot-down space, and wait for those."""
    for k in s.each(VCPU):
        if k != i:
            with s.when(s.cr3[k] == s.sp[i]):
                s.ipi[k][i] = True
                s.waiting[i][k] = True


VARIANT = REFERENCE.derive(
    "lazy-tlb-ipi",
    doc="post_ipis skips the VCPUs that do not run the shot-down space (mm_cpumask).",
    procedures={"post_ipis": post_ipis_to_space},
)
