"""A variant whose IPI return path leaves ``waitret[k]`` set (it still clears ``cur[k]``).

The optimization: the "interrupted while waiting" flag is per-CPU scratch state that
Linux's IPI entry code saves on entry and does not wipe on return (like the saved
``irqs_disabled`` state of ``smp_call_function_many_cond``'s waiter); the next IPI entry
writes it again. Here ``ack`` does not reset ``waitret[k]``: it is read only while
``pc[k]`` is Ipi, and ``take_ipi`` writes it before that. Safe, but it breaks the
shipped lemma "waitret[k] implies pc[k] is Ipi". Try::

    deferral check --variant-file examples/lazy_waitret_clear.py
    deferral prove --variant-file examples/lazy_waitret_clear.py --no-shipped-lemmas

Computed (``python benchmarks/bench_prove.py --breaks 2,1,1,1 examples/lazy_waitret_clear.py``):
that lemma is the one no longer inductive, ``ack_ipi`` does not preserve it.
"""

from deferral.model import REFERENCE
from deferral.model.reference import PC
from deferral.model.schema import VCPU


def ack_keep_waitret(s, k, i):
    """k acks i's IPI and returns to what it was doing; waitret[k] is left as it is."""
    s.waiting[i][k] = False
    s.pc[k] = s.ite(s.waitret[k], PC.SdWait, PC.Idle)
    s.cur[k] = s.none(VCPU)


VARIANT = REFERENCE.derive(
    "lazy-waitret-clear",
    doc="ack leaves waitret[k] set (the next take_ipi overwrites it).",
    procedures={"ack": ack_keep_waitret},
)
