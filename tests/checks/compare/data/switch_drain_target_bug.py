"""A CR3 switch drains only the target space's notices, shootdowns unchanged (buggy, --spaces 2).

As switch_drain_target.py (Xen's sh_update_cr3 resyncing only what the new top-level
table needs), but without the matching change to shootdowns: a VCPU that left a space
with notices of it still queued can shoot that space down, and the reference's send_ipis
does not drain for a space the initiator does not run. Other VCPUs that run the space
then keep the old entry in their shadow after the shootdown completed.
"""

from deferral.model import PAGE, REFERENCE
from deferral.model.reference import NOTICE, PC


def no_notice_of(s, i, sp):
    """No notice of space sp is in i's queue."""
    return s.all(s.not_(s.queue[i].contains(NOTICE.make(s, sp, p))) for p in s.each(PAGE))


VARIANT = REFERENCE.derive(
    "switch-drain-target-bug",
    doc="finish_reload waits only for the target space's notices.",
    replace_steps=[REFERENCE.step("finish_reload").with_guard(
        lambda s, i: (s.pc[i] == PC.Reload) & no_notice_of(s, i, s.sp[i]))],
)
