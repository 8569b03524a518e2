"""A variant whose shootdown IPI stays pending at the target until the target has flushed and acked.

The optimization: Linux's generic IPI code (kernel/smp.c) keeps a synchronous call's
``call_single_data`` locked (``CSD_FLAG_LOCK``, the sender's "request pending" mark) while
the handler runs: ``__flush_smp_call_function_queue`` calls ``func(info)`` and only then
``csd_unlock(csd)`` for a synchronous csd, so one store releases the request and acks it
(the same order as KVM's ``kvm_make_all_cpus_request`` waiters polling the request bit).
Here ``take_ipi`` leaves ``ipi[k][i]`` set and ``ack`` clears it together with
``waiting[i][k]``: nothing reads ``ipi[k][i]`` while k handles it (``take_ipi`` needs k
Idle or in SdWait). Safe, but it breaks the shipped lemma "k handling i's IPI implies
waiting[i][k] and no second IPI from i pending at k". Try::

    deferral check --variant-file examples/ipi_unlock_after_flush.py
    deferral prove --variant-file examples/ipi_unlock_after_flush.py

Computed (``python benchmarks/bench_prove.py --breaks 2,1,1,1 examples/ipi_unlock_after_flush.py``):
that lemma is the one no longer inductive, ``take_ipi`` does not preserve it.
"""

from deferral.model import REFERENCE
from deferral.model.reference import PC
from deferral.model.schema import VCPU


def take_ipi_keep_pending(s, k, i):
    """k takes i's IPI (from Idle, or while it waits for its own shootdown); the request stays pending."""
    s.waitret[k] = s.pc[k] == PC.SdWait
    s.cur[k] = i
    s.pc[k] = PC.Ipi


def ack_and_unlock(s, k, i):
    """k acks i's IPI (one store: the request is released and acked) and returns to what it was doing."""
    s.ipi[k][i] = False
    s.waiting[i][k] = False
    s.pc[k] = s.ite(s.waitret[k], PC.SdWait, PC.Idle)
    s.waitret[k] = False
    s.cur[k] = s.none(VCPU)


VARIANT = REFERENCE.derive(
    "ipi-unlock-after-flush",
    doc="take_ipi leaves ipi[k][i] pending; ack clears it with waiting[i][k] (csd_unlock after the flush).",
    replace_steps=[REFERENCE.step("take_ipi").with_effect(take_ipi_keep_pending)],
    procedures={"ack": ack_and_unlock},
)
