"""Shootdown IPIs carry the page in ONE global variable, without a lock (buggy at 2 VCPUs and 2 pages).

A user's change (qa5) modelled on the old Linux i386 ``flush_tlb_others``: the initiator stores
the address in the global ``flush_va`` and sends the IPI; handlers (``smp_invalidate_interrupt``)
flush the page ``flush_va`` names. The lock (``tlbstate_lock``) that kept one shootdown at a time is
left out, so a second initiator overwrites ``flush_va`` and a handler of the first flushes the
second's page. At one page both name the same page (safe); at 2,2,1,1 it is violated in 10 steps.
"""

from deferral.model import PAGE, REFERENCE, VCPU, Var


def post_ipis_global(s, i):
    """Store the page in the global flush_va, then IPI every other VCPU."""
    s.gva = s.pg[i]
    for k in s.each(VCPU):
        if k != i:
            s.ipi[k][i] = True
            s.waiting[i][k] = True


def remote_flush_global(s, k, i):
    """k flushes the page named by the global flush_va (if it runs i's space)."""
    p, sp = s.pg[i], s.sp[i]
    with s.when(sp == s.cr3[k]):
        s.tlb[k][s.gva] = 0
    with s.when(s.covers[i] | (s.lw[sp][p] == k)):
        s.req[k][sp][p] = True


VARIANT = REFERENCE.derive(
    "global-flush-va-nolock", doc="one global flush_va, no lock",
    add_variables=[Var("gva", PAGE, (), "the global flush_va")],
    procedures={"post_ipis": post_ipis_global, "remote_flush": remote_flush_global},
)
