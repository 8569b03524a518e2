"""A variant that defers a write to any address space, and drains before every shootdown.

The optimization: Xen's shadow paging lets a guest page table go out of sync whatever
address space it belongs to (``sh_unsync`` in xen/arch/x86/mm/shadow/multi.c, the page
recorded in the writing vCPU's out-of-sync table ``v->arch.paging.shadow.oos``), and
resyncs that vCPU's whole table on its next guest TLB flush or CR3 write
(``shadow_resync_all`` / ``sh_resync_all``), instead of write-protecting and resyncing
at once the tables of spaces the vCPU does not run. Here every write is queued (the
reference queues only writes to the writer's current space and resyncs the others at
once), and ``send_ipis`` always waits for the queue to be drained (the reference skips the
drain for a shootdown of another space: with other spaces' notices queued that is the
published bug defer-non-current). At one space it is the reference; from two spaces on it
breaks the shipped lemma "every notice in queue[i] is of the space i runs (cr3[i])". Try::

    deferral check --variant-file examples/defer_all_spaces.py --spaces 2
    deferral prove --variant-file examples/defer_all_spaces.py --spaces 2

Computed (``python benchmarks/bench_prove.py --breaks 2,1,1,1,2 examples/defer_all_spaces.py``):
that lemma is the one no longer inductive, ``write`` of another space does not preserve it;
at one space no shipped lemma breaks.
"""

from deferral.model import REFERENCE
from deferral.model.reference import PC, write_effect


def write_deferred(s, i, sp, p, f):
    """The guest writes PTE p := f in space sp: queued whatever space i runs."""
    write_effect(s, i, sp, p, f, True)


VARIANT = REFERENCE.derive(
    "defer-all-spaces",
    doc="every write is queued; send_ipis always waits for the queue to be drained (out-of-sync pages).",
    replace_steps=[REFERENCE.step("write").with_effect(write_deferred),
                   REFERENCE.step("send_ipis").with_guard(lambda s, i: (s.pc[i] == PC.Sd) & s.queue[i].empty())],
)
