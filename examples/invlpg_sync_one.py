"""A variant whose invlpg resyncs only the invalidated page's own shadow entry instead of draining.

The optimization: KVM's shadow MMU handles a guest INVLPG without syncing every
out-of-sync shadow page: ``kvm_mmu_invlpg`` / ``__kvm_mmu_invalidate_addr``
(arch/x86/kvm/mmu/mmu.c, Linux 6.4+; ``FNAME(invlpg)`` in paging_tmpl.h before) walks to
the one shadow PTE that maps the address and, if its page is unsync, re-reads only that
guest PTE (``kvm_sync_spte``); the rest of the unsync list waits for the next CR3 load or
full flush. Here ``finish_invlpg`` no longer waits for the queue to be drained: it resyncs
i's own shadow entry of (cr3[i], pg[i]) from the guest PTE and flushes the TLB entry; the
page's notice stays queued (other VCPUs' entries are resynced when it is drained). Safe,
but it breaks the shipped lemma "req[k][p] implies p has a last writer and its queue holds
no notice of p" (i now sees its own write while the notice is still queued). Try::

    deferral check --variant-file examples/invlpg_sync_one.py
    deferral prove --variant-file examples/invlpg_sync_one.py

Computed (``python benchmarks/bench_prove.py --breaks 2,1,1,1 examples/invlpg_sync_one.py``):
that lemma is the one no longer inductive, ``finish_invlpg`` does not preserve it.
"""

from deferral.model import REFERENCE
from deferral.model.reference import PC


def finish_invlpg_sync_one(s, i):
    """Resync i's own shadow entry of the page from the guest PTE, drop the TLB entry (no drain)."""
    c, p = s.cr3[i], s.pg[i]
    with s.when(s.shadow[i][c][p] != 0):
        s.shadow[i][c][p] = s.gpt[c][p]
    s.proc.local_flush(i, p, c)
    s.pc[i] = PC.Idle
    s.pg[i] = 0


VARIANT = REFERENCE.derive(
    "invlpg-sync-one",
    doc="finish_invlpg resyncs only i's own shadow entry of the page; the queue is not drained first.",
    replace_steps=[REFERENCE.step("finish_invlpg").with_guard(lambda s, i: s.pc[i] == PC.Inv)
                   .with_effect(finish_invlpg_sync_one)],
)
