"""A variant whose IPI return path does not clear the handled-request fields.

Acknowledging a shootdown IPI resets ``cur[k]`` (whose IPI k handles) and ``waitret[k]``
(k took it while waiting) in the reference. Hypervisors commonly skip such stores on the
interrupt return path and let the next request overwrite the per-CPU slot (a lazy clear:
the fields are only read while ``pc[k]`` is Ipi, and ``take_ipi`` writes both before
that). The change is safe, but it breaks two shipped lemmas of model/invariant.py
("cur[k] names a VCPU exactly when pc[k] is Ipi", "waitret[k] implies pc[k] is Ipi"),
so the shipped-lemma route of ``deferral prove`` no longer proves it. Try::

    deferral check --variant-file examples/lazy_ipi_return.py
    deferral prove --variant-file examples/lazy_ipi_return.py

Computed (``python benchmarks/bench_prove.py --breaks 2,1,1,1 examples/lazy_ipi_return.py``):
those two are the ones no longer inductive, ``ack_ipi`` preserves neither.
"""

from deferral.model import REFERENCE
from deferral.model.reference import PC


def lazy_ack(s, k, i):
    """k acks i's IPI and returns to what it was doing; cur[k] and waitret[k] are left as they are."""
    s.waiting[i][k] = False
    s.pc[k] = s.ite(s.waitret[k], PC.SdWait, PC.Idle)


VARIANT = REFERENCE.derive(
    "lazy-ipi-return",
    doc="ack leaves cur[k] and waitret[k] set (the next take_ipi overwrites them).",
    procedures={"ack": lazy_ack},
)
