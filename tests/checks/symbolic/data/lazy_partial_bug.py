"""(helper qa5, 6 Dec; one file with its _lazy_common.py) Lazy-TLB mode whose wake flushes only the page of the LAST shootdown it missed (buggy, needs 2 pages).

Models the bug class Linux's ``flush_tlb_func`` guards against with
``f->new_tlb_gen == local_tlb_gen + 1`` (a partial flush is only correct when exactly one flush
was missed; otherwise a full flush): a CPU in lazy mode that missed two shootdowns of different
pages and then replays only the last one's range. Same as lazy_wake.py except ``wake``: it drops
only ``tlb[i][spg[i]]`` (an index read from the state). At one page it is lazy_wake; at
``--pages 2`` the first missed page stays stale.
"""

from deferral.model import BOOL, PAGE, VCPU, REFERENCE, Property, Var, step
from deferral.model.reference import PC

_REF_PROP = next(p for p in REFERENCE.properties if p.name == "no_stale_translation")
VARIABLES = [Var("lazy", BOOL, (VCPU,), "i is in lazy-TLB mode (idle, old address space kept)"),
             Var("stale", BOOL, (VCPU,), "a shootdown skipped i while it was lazy"),
             Var("spg", PAGE, (VCPU,), "page of the last shootdown that skipped i")]
_GUEST_STEPS = ("write", "invlpg", "shootdown", "reload_cr3", "switch_cr3", "shadow_fault", "fill")


def not_lazy(step_obj):
    """The same step, enabled only on a VCPU that is not in lazy-TLB mode."""
    old = step_obj.guard
    return step_obj.with_guard(lambda s, i, *a: old(s, i, *a) & s.not_(s.lazy[i]))


def post_ipis_skip_lazy(s, i):
    """IPI every other VCPU that is not lazy; mark a lazy one's TLB as having missed a flush."""
    for k in s.each(VCPU):
        if k != i:
            with s.when(s.not_(s.lazy[k])):
                s.ipi[k][i] = True
                s.waiting[i][k] = True
            with s.when(s.lazy[k]):
                s.stale[k] = True
                s.spg[k] = s.pg[i]


@step(("i", VCPU), guard=lambda s, i: (s.pc[i] == PC.Idle) & s.not_(s.lazy[i]))
def go_lazy(s, i):
    """i goes idle in lazy-TLB mode: it keeps the old address space loaded and runs no user code."""
    s.lazy[i] = True


def no_stale_unless_lazy(s, k, sp, p):
    """A VCPU in lazy-TLB mode uses no user translation; any other must not see a stale one."""
    ref = _REF_PROP.predicate
    return s.any((s.lazy[k], ref(s, k, sp, p)))


def lazy_variant(name, doc, wake):
    return REFERENCE.derive(
        name, doc=doc,
        add_variables=VARIABLES,
        replace_steps=[not_lazy(REFERENCE.step(n)) for n in _GUEST_STEPS],
        add_steps=[go_lazy, wake],
        procedures={"post_ipis": post_ipis_skip_lazy},
        replace_properties=[Property("no_stale_translation", "invariant", _REF_PROP.params, no_stale_unless_lazy,
                                     doc=no_stale_unless_lazy.__doc__)],
    )

@step(("i", VCPU), guard=lambda s, i: s.lazy[i])
def wake(s, i):
    """i leaves lazy mode; if it missed a shootdown, it flushes only the last missed page."""
    with s.when(s.stale[i]):
        s.tlb[i][s.spg[i]] = 0
    s.lazy[i] = False
    s.stale[i] = False
    s.spg[i] = 0


VARIANT = lazy_variant("lazy-partial-bug", "lazy VCPUs skip IPIs; wake flushes only the last missed page", wake)
