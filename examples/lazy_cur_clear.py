"""A variant whose IPI return path leaves ``cur[k]`` set (it still clears ``waitret[k]``).

The optimization: Linux's ``flush_smp_call_function_queue`` / ``csd_unlock`` and KVM's
``kvm_make_all_cpus_request`` leave the per-CPU record of the request that was handled
(the ``call_single_data`` and its ``info`` pointer) as it is once the handler returns;
only the lock/flag is released, and the next request overwrites the record. Here ``ack``
does not reset ``cur[k]`` (whose IPI k handles): it is read only while ``pc[k]`` is Ipi,
and ``take_ipi`` writes it before that. Safe, but it breaks the shipped lemma
"cur[k] names a VCPU exactly when pc[k] is Ipi". Try::

    deferral check --variant-file examples/lazy_cur_clear.py
    deferral prove --variant-file examples/lazy_cur_clear.py --no-shipped-lemmas

Computed (``python benchmarks/bench_prove.py --breaks 2,1,1,1 examples/lazy_cur_clear.py``):
that lemma is the one no longer inductive, ``ack_ipi`` does not preserve it.
"""

from deferral.model import REFERENCE
from deferral.model.reference import PC


def ack_keep_cur(s, k, i):
    """k acks i's IPI and returns to what it was doing; cur[k] is left naming i."""
    s.waiting[i][k] = False
    s.pc[k] = s.ite(s.waitret[k], PC.SdWait, PC.Idle)
    s.waitret[k] = False


VARIANT = REFERENCE.derive(
    "lazy-cur-clear",
    doc="ack leaves cur[k] set (the next take_ipi overwrites it).",
    procedures={"ack": ack_keep_cur},
)
