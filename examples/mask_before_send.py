"""A variant that marks the VCPUs to wait for when the shootdown starts, before the IPIs go out.

The optimization: Linux's ``native_flush_tlb_multi`` / ``smp_call_function_many_cond``
and KVM's ``kvm_make_vcpus_request_mask`` fill the per-call cpumask of CPUs to wait
for first, and send the IPIs later (after the local work); the waiter then polls that
mask. Here the ``shootdown`` step sets ``waiting[i][k]`` for every other VCPU at once and
``send_ipis`` only posts the IPIs. Safe (nothing acks before its IPI arrives), but it
breaks the shipped lemma "waiting[i][k] implies i has sent its IPIs". Try::

    deferral check --variant-file examples/mask_before_send.py
    deferral prove --variant-file examples/mask_before_send.py --no-shipped-lemmas

Computed (``python benchmarks/bench_prove.py --breaks 2,1,1,1 examples/mask_before_send.py``):
three shipped lemmas are no longer inductive: "ipi[k][i] pending implies waiting[i][k]" and
"covers[i] after sending and k acked (not waiting[i][k]) implies req[k][pg[i]]" (not
preserved by ``send_ipis``) and "waiting[i][k] implies i has sent its IPIs (SdWait, or Ipi
with waitret)" (not preserved by ``shootdown``).
"""

from deferral.model import REFERENCE
from deferral.model.protocol import step
from deferral.model.reference import PC
from deferral.model.schema import FRAME, PAGE, SPACE, VCPU


@step(("i", VCPU), ("s", SPACE), ("p", PAGE), guard=lambda s, i, sp, p: s.pc[i] == PC.Idle)
def shootdown(s, i, sp, p):
    """The guest starts a TLB shootdown of page p of space s; the VCPUs to wait for are marked now."""
    s.pc[i] = PC.Sd
    s.pg[i] = p
    s.sp[i] = sp
    s.covers[i] = s.lw[sp][p] == i
    for k in s.each(VCPU):
        if k != i:
            s.waiting[i][k] = True


def post_ipis_only(s, i):
    """Send a shootdown IPI from i to every other VCPU (the wait marks are already set)."""
    for k in s.each(VCPU):
        if k != i:
            s.ipi[k][i] = True


VARIANT = REFERENCE.derive(
    "mask-before-send",
    doc="shootdown marks waiting[i][k] at its start; send_ipis only posts the IPIs.",
    replace_steps=[shootdown],
    procedures={"post_ipis": post_ipis_only},
)
