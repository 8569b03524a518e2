"""A shootdown IPI handler serves every pending shootdown IPI at once (safe).

Modelled on Linux's flush_smp_call_function_queue (kernel/smp.c): one CALL_FUNCTION
interrupt runs every queued TLB-flush callback, so several initiators' flush requests are
acknowledged in one interrupt. Here ack_ipi, with the queue drained, flushes and acks the
initiator it took and also every other initiator whose IPI is pending at it. (A new user's
variant, helper qa3, 5 Dec: its loop writes ``tlb[k][pg[j]]``, an index that is not the loop
variable, which the parametric backend refused until 6 Dec.)
"""

from deferral.model import VCPU, REFERENCE


def ack_all(s, k):
    """Queue drained: flush and ack the IPI taken and every other pending one."""
    i = s.cur[k]
    s.proc.remote_flush(k, i)
    s.proc.ack(k, i)
    for j in s.each(VCPU):
        with s.when(s.ipi[k][j]):
            s.proc.remote_flush(k, j)
            s.ipi[k][j] = False
            s.waiting[j][k] = False


VARIANT = REFERENCE.derive(
    "ipi-batch",
    doc="ack_ipi also serves every other pending shootdown IPI.",
    replace_steps=[REFERENCE.step("ack_ipi").with_effect(ack_all)],
)
