"""PCID-tagged TLB whose lazy VCPUs miss a shootdown (buggy, --spaces 2).

The same tagged TLB as pcid_tagged.py (Linux's PCID switch_mm_irqs_off, KVM's cached
previous roots with CR3 NOFLUSH), but only writes bump the space's generation: a
shootdown taken by a VCPU that runs another space leaves its tagged entries of the
shot-down space alone. This is the bug class Linux's tlb_gen handling in
flush_tlb_func/switch_mm_irqs_off closes for lazy-TLB CPUs (a CPU not running the mm
must still see the mm's tlb_gen move, or it reloads a stale ASID with NOFLUSH).
"""

from deferral.model import BOOL, FRAME, PAGE, SPACE, VCPU, REFERENCE, Var
from deferral.model.reference import PC, write_effect


def write_marks_dirty(s, i, sp, p, f):
    write_effect(s, i, sp, p, f, sp == s.cr3[i])
    for k in s.each(VCPU):
        s.dirty[k][sp] = True


def finish_reload_pcid(s, i):
    t = s.sp[i]
    c = s.cr3[i]
    switching = t != c
    for p in s.each(PAGE):
        restored = s.ite(switching & s.not_(s.dirty[i][t]), s.ptlb[i][t][p], 0)
        with s.when(switching):
            s.ptlb[i][c][p] = s.tlb[i][p]
            s.ptlb[i][t][p] = 0
        for sp in s.each(SPACE):
            s.proc.local_flush(i, p, sp)
        s.tlb[i][p] = restored
    s.dirty[i][t] = False
    s.cr3[i] = t
    s.pc[i] = PC.Idle
    s.sp[i] = 0


VARIANT = REFERENCE.derive(
    "pcid-lazy-bug",
    doc="tagged TLB; a shootdown does not mark the tag of a VCPU that runs another space.",
    add_variables=[Var("ptlb", FRAME, (VCPU, SPACE, PAGE), "entries kept under the tag of a space i does not run"),
                   Var("dirty", BOOL, (VCPU, SPACE), "i's tagged entries of s may predate a write")],
    replace_steps=[REFERENCE.step("write").with_effect(write_marks_dirty),
                   REFERENCE.step("finish_reload").with_effect(finish_reload_pcid)],
)
