"""A write making a non-present guest PTE present queues no notice (buggy, from F=2 on).

Modelled on the x86 rule that the TLB never caches a non-present entry, so Linux needs no
flush when a PTE goes from not-present to present (set_pte_at on a pte_none entry, and
the spurious-fault path flush_tlb_fix_spurious_fault), and on the shadow-paging shortcut
that follows from it: "nothing can be cached for a non-present guest PTE, so the write
needs no resync". But a shadow may still hold a frame the guest removed earlier whose own
notice is still queued on another VCPU; at one frame that stale frame is the only frame
there is, so the shortcut is safe only at F=1.
"""

from deferral.model import VCPU, REFERENCE
from deferral.model.reference import in_shootdown


def write_skip_nonpresent(s, i, sp, p, f):
    """The guest writes PTE (sp, p) := f; making a non-present entry present queues and resyncs nothing."""
    current = sp == s.cr3[i]
    was_present = (s.gpt[sp][p] != 0) | (f == 0)

    @s.when(current & was_present)
    def _queue():
        s.proc.enqueue_notice(i, p, sp)
    s.gpt[sp][p] = f

    @s.when(s.not_(current) & was_present)
    def _at_once():
        s.proc.resync(i, p, sp)
    s.lw[sp][p] = i
    for k in s.each(VCPU):
        s.req[k][sp][p] = False
        with s.when((s.sp[k] == sp) & (s.pg[k] == p) & in_shootdown(s, k)):
            s.covers[k] = False


VARIANT = REFERENCE.derive(
    "write-nonpresent-no-notice",
    doc="a write making a non-present PTE present is neither queued nor resynced.",
    replace_steps=[REFERENCE.step("write").with_effect(write_skip_nonpresent)],
)
