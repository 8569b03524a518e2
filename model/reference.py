"""The reference SMP deferral protocol of PROTOCOL.md, defined once, with address spaces.

Every tool reads this definition: the explicit search evaluates it over numpy batches,
the Z3 encoding evaluates it over terms, replay and the engine's conformance checks
evaluate it over concrete states. Step and property functions follow the PROTOCOL.md
tables line by line; see docs/notation.md for the notation.

Address spaces (bound S, ``--spaces``): each space has its own guest page table, each VCPU
a shadow of every space and a CR3 naming the space it runs; a write is deferred only when
it is to the writer's current space. At S = 1 every space index and argument is 0 and is
not shown (the SPACE sort is *elided* at one space), ``cr3``/``sp`` hold no state, and the
protocol, its states and its traces are exactly the one-space protocol.
"""

from __future__ import annotations

from typing import Any

from deferral.model.bounds import SPACES, STANDARD
from deferral.model.context import StepContext
from deferral.model.protocol import Procedure, Property, Protocol, step
from deferral.model.schema import BOOL, FRAME, PAGE, SPACE, VCPU, VCPU_OR_NONE, Enum, Pair, Queue, Var

PC = Enum(("Idle", "Inv", "Reload", "Sd", "SdWait", "Ipi"), name="pc")
IDLE, INV, RELOAD, SD, SDWAIT, IPI = range(6)

#: A deferral notice: a page of a space, shown as the page alone at one space, else [s, p].
NOTICE = Pair(SPACE, PAGE, name="notice")

VARIABLES = (
    Var("gpt", FRAME, (SPACE, PAGE), "guest PTE of page p in space s"),
    Var("shadow", FRAME, (VCPU, SPACE, PAGE), "VCPU i's shadow entry of page p of space s (0 = none)"),
    Var("tlb", FRAME, (VCPU, PAGE), "VCPU i's TLB entry of page p of the space it runs (0 = none)"),
    Queue("queue", NOTICE, (VCPU,), "pending notices (s, p), oldest first", capacity="queue"),
    Var("pc", PC, (VCPU,), "what VCPU i is doing"),
    Var("pg", PAGE, (VCPU,), "page of i's running invlpg or shootdown"),
    Var("cr3", SPACE, (VCPU,), "the space VCPU i runs"),
    Var("sp", SPACE, (VCPU,), "space of i's running shootdown, or target of its CR3 load"),
    Var("ipi", BOOL, (VCPU, VCPU), "ipi[k][i]: an IPI from initiator i is pending at k"),
    Var("cur", VCPU_OR_NONE, (VCPU,), "initiator whose IPI k is handling"),
    Var("waitret", BOOL, (VCPU,), "k took the IPI while in SdWait (returns there)"),
    Var("waiting", BOOL, (VCPU, VCPU), "waiting[i][k]: initiator i still waits for k's ack"),
    Var("lw", VCPU_OR_NONE, (SPACE, PAGE), "last writer of page p of space s", ghost=True),
    Var("req", BOOL, (VCPU, SPACE, PAGE), "k is now required to see the current gpt[s][p]", ghost=True),
    Var("covers", BOOL, (VCPU,), "i's running shootdown covers the latest write of (sp[i], pg[i])",
        ghost=True),
)


# ---- procedures ----------------------------------------------------------------------
def resync(s: StepContext, i: Any, p: Any, sp: Any = 0) -> None:
    """Resync every VCPU's shadow entry of page p of space sp from the guest PTE (where it has one)."""
    for k in s.each(VCPU):
        with s.when(s.shadow[k][sp][p] != 0):
            s.shadow[k][sp][p] = s.gpt[sp][p]


def drain_one(s: StepContext, i: Any) -> None:
    """Take the oldest notice (s, p) off i's queue and resync that page of that space."""
    notice = s.queue[i].pop()
    s.proc.resync(i, NOTICE.second_of(s, notice), NOTICE.first_of(s, notice))


def enqueue_notice(s: StepContext, i: Any, p: Any, sp: Any = 0) -> None:
    """Queue a notice (sp, p); a full queue is drained until empty first (overflow)."""
    with s.when(s.queue[i].full()):
        for _ in range(s.queue[i].capacity):
            with s.when(s.not_(s.queue[i].empty())):
                s.proc.drain_one(i)
    s.queue[i].push(NOTICE.make(s, sp, p))


def post_ipis(s: StepContext, i: Any) -> None:
    """Send a shootdown IPI from i to every other VCPU and wait for each ack."""
    for k in s.each(VCPU):
        if k != i:  # a Python if on step arguments (not on state values) is fine
            s.ipi[k][i] = True
            s.waiting[i][k] = True


def local_flush(s: StepContext, i: Any, p: Any, sp: Any = 0) -> None:
    """i drops its TLB entry of p (invlpg, CR3 load); a write i made last to (sp, p) is now
    visible to i."""
    s.tlb[i][p] = 0
    with s.when(s.lw[sp][p] == i):
        s.req[i][sp][p] = True


def initiator_flush(s: StepContext, i: Any) -> None:
    """A shootdown's local flush: i drops its entry of pg[i] if it runs the shot-down space;
    a covering shootdown makes the write visible to i."""
    p, sp = s.pg[i], s.sp[i]
    with s.when(sp == s.cr3[i]):
        s.tlb[i][p] = 0
    with s.when(s.covers[i]):
        s.req[i][sp][p] = True


def remote_flush(s: StepContext, k: Any, i: Any) -> None:
    """k, handling i's IPI, drops its entry of i's page if it runs i's space; visible to k
    if i's shootdown covers the write or k wrote it last."""
    p, sp = s.pg[i], s.sp[i]
    with s.when(sp == s.cr3[k]):
        s.tlb[k][p] = 0
    with s.when(s.covers[i] | (s.lw[sp][p] == k)):
        s.req[k][sp][p] = True


def ack(s: StepContext, k: Any, i: Any) -> None:
    """k acks i's IPI and returns to what it was doing (SdWait or Idle)."""
    s.waiting[i][k] = False
    s.pc[k] = s.ite(s.waitret[k], PC.SdWait, PC.Idle)
    s.waitret[k] = False
    s.cur[k] = s.none(VCPU)


PROCEDURES = tuple(Procedure(fn.__name__, fn, fn.__doc__ or "") for fn in (
    resync, drain_one, enqueue_notice, post_ipis, local_flush, initiator_flush, remote_flush, ack))


def in_shootdown(s: StepContext, k: Any) -> Any:
    """k runs a shootdown: Sd, SdWait, or handling an IPI taken from SdWait."""
    return (s.pc[k] == PC.Sd) | (s.pc[k] == PC.SdWait) | ((s.pc[k] == PC.Ipi) & s.waitret[k])


def write_effect(s: StepContext, i: Any, sp: Any, p: Any, f: Any, defer: Any) -> None:
    """The guest writes PTE (sp, p) := f: queued where ``defer`` holds, else resynced at once."""
    @s.when(defer)
    def _queue() -> None:
        s.proc.enqueue_notice(i, p, sp)
    s.gpt[sp][p] = f

    @s.when(s.not_(defer))
    def _at_once() -> None:
        s.proc.resync(i, p, sp)
    s.lw[sp][p] = i
    for k in s.each(VCPU):
        s.req[k][sp][p] = False
        with s.when((s.sp[k] == sp) & (s.pg[k] == p) & in_shootdown(s, k)):
            s.covers[k] = False


# ---- steps ---------------------------------------------------------------------------
@step(("i", VCPU), ("s", SPACE), ("p", PAGE), ("f", FRAME), guard=lambda s, i, sp, p, f: s.pc[i] == PC.Idle)
def write(s: StepContext, i: int, sp: int, p: int, f: int) -> None:
    """The guest writes PTE p := f in space s: queued if s is i's current space, else resynced at once."""
    write_effect(s, i, sp, p, f, sp == s.cr3[i])


@step(("i", VCPU), ("p", PAGE), guard=lambda s, i, p: (s.tlb[i][p] == 0) & (s.shadow[i][s.cr3[i]][p] != 0))
def fill(s: StepContext, i: int, p: int) -> None:
    """Hardware walk: the TLB caches the shadow entry of the current space (at any pc)."""
    s.tlb[i][p] = s.shadow[i][s.cr3[i]][p]


@step(("i", VCPU), ("p", PAGE), guard=lambda s, i, p: (s.pc[i] == PC.Idle) & (s.tlb[i][p] == 0)
      & (s.shadow[i][s.cr3[i]][p] == 0) & (s.gpt[s.cr3[i]][p] != 0))
def shadow_fault(s: StepContext, i: int, p: int) -> None:
    """A fault on a missing shadow entry fills shadow and TLB from the current space's guest PTE."""
    c = s.cr3[i]
    s.shadow[i][c][p] = s.gpt[c][p]
    s.tlb[i][p] = s.gpt[c][p]


@step(("i", VCPU), ("p", PAGE), guard=lambda s, i, p: s.pc[i] == PC.Idle)
def invlpg(s: StepContext, i: int, p: int) -> None:
    """The guest starts invalidating page p (of its current space)."""
    s.pc[i] = PC.Inv
    s.pg[i] = p


@step(("i", VCPU), ("s", SPACE), ("p", PAGE), guard=lambda s, i, sp, p: s.pc[i] == PC.Idle)
def shootdown(s: StepContext, i: int, sp: int, p: int) -> None:
    """The guest starts a TLB shootdown of page p of space s."""
    s.pc[i] = PC.Sd
    s.pg[i] = p
    s.sp[i] = sp
    s.covers[i] = s.lw[sp][p] == i


@step(("i", VCPU), guard=lambda s, i: s.pc[i] == PC.Idle)
def reload_cr3(s: StepContext, i: int) -> None:
    """The guest starts a CR3 reload (of the space it runs)."""
    s.pc[i] = PC.Reload
    s.sp[i] = s.cr3[i]


@step(("i", VCPU), ("s", SPACE), guard=lambda s, i, sp: (s.pc[i] == PC.Idle) & (sp != s.cr3[i]),
      exists=lambda b: b["spaces"] > 1)
def switch_cr3(s: StepContext, i: int, sp: int) -> None:
    """The guest starts loading CR3 with another space (a process switch)."""
    s.pc[i] = PC.Reload
    s.sp[i] = sp


@step(("i", VCPU), name="drain_one", guard=lambda s, i: ((s.pc[i] == PC.Inv) | (s.pc[i] == PC.Reload)
                                                      | (s.pc[i] == PC.Sd) | (s.pc[i] == PC.Ipi))
      & s.not_(s.queue[i].empty()))
def drain_one_step(s: StepContext, i: int) -> None:
    """Drain one notice while flushing."""
    s.proc.drain_one(i)


@step(("i", VCPU), guard=lambda s, i: (s.pc[i] == PC.Inv) & s.queue[i].empty())
def finish_invlpg(s: StepContext, i: int) -> None:
    """Queue drained: drop the TLB entry; the page's own last write is now visible to i."""
    s.proc.local_flush(i, s.pg[i], s.cr3[i])
    s.pc[i] = PC.Idle
    s.pg[i] = 0


@step(("i", VCPU), guard=lambda s, i: (s.pc[i] == PC.Reload) & s.queue[i].empty())
def finish_reload(s: StepContext, i: int) -> None:
    """Queue drained: CR3 := the target space, flush the whole TLB; i's own writes (in every
    space) are now visible to it."""
    s.cr3[i] = s.sp[i]
    for p in s.each(PAGE):
        for sp in s.each(SPACE):
            s.proc.local_flush(i, p, sp)
    s.pc[i] = PC.Idle
    s.sp[i] = 0


@step(("i", VCPU), guard=lambda s, i: (s.pc[i] == PC.Sd) & s.any((s.queue[i].empty(), s.sp[i] != s.cr3[i])))
def send_ipis(s: StepContext, i: int) -> None:
    """Queue drained (or the shootdown is of another space): flush the local entry, IPI every
    other VCPU, wait for acks."""
    s.proc.initiator_flush(i)
    s.proc.post_ipis(i)
    s.pc[i] = PC.SdWait


@step(("i", VCPU), guard=lambda s, i: (s.pc[i] == PC.SdWait)
      & s.all(s.not_(s.waiting[i][k]) for k in s.each(VCPU)))
def shootdown_done(s: StepContext, i: int) -> None:
    """Every ack is in: a covering shootdown makes the write visible to all."""
    p, sp = s.pg[i], s.sp[i]
    with s.when(s.covers[i]):
        for k in s.each(VCPU):
            s.req[k][sp][p] = True
    s.pc[i] = PC.Idle
    s.pg[i] = 0
    s.sp[i] = 0
    s.covers[i] = False


@step(("k", VCPU), ("i", VCPU), guard=lambda s, k, i: s.ipi[k][i]
      & ((s.pc[k] == PC.Idle) | (s.pc[k] == PC.SdWait)))
def take_ipi(s: StepContext, k: int, i: int) -> None:
    """k takes i's IPI (from Idle, or while it waits for its own shootdown)."""
    s.ipi[k][i] = False
    s.waitret[k] = s.pc[k] == PC.SdWait
    s.cur[k] = i
    s.pc[k] = PC.Ipi


@step(("k", VCPU), guard=lambda s, k: (s.pc[k] == PC.Ipi) & s.queue[k].empty())
def ack_ipi(s: StepContext, k: int) -> None:
    """Queue drained: flush the initiator's page and ack."""
    i = s.cur[k]
    s.proc.remote_flush(k, i)
    s.proc.ack(k, i)


STEPS = (write, fill, shadow_fault, invlpg, shootdown, reload_cr3, switch_cr3, drain_one_step, finish_invlpg,
         finish_reload, send_ipis, shootdown_done, take_ipi, ack_ipi)


# ---- properties ----------------------------------------------------------------------
def no_stale_translation(s: StepContext, k: int, sp: int, p: int) -> Any:
    """Once k must see the current gpt[s][p] and runs s, neither its TLB nor its shadow holds another."""
    g = s.gpt[sp][p]
    fresh = (((s.tlb[k][p] == 0) | (s.tlb[k][p] == g))
             & ((s.shadow[k][sp][p] == 0) | (s.shadow[k][sp][p] == g)))
    return s.any((s.not_(s.req[k][sp][p]), s.cr3[k] != sp, fresh))


def no_vcpu_waiting(s: StepContext, i: int) -> Any:
    """VCPU i is not waiting for a shootdown (the AG EF goal)."""
    return s.pc[i] != PC.SdWait


PROPERTIES = (
    Property("no_stale_translation", "invariant", (("k", VCPU), ("s", SPACE), ("p", PAGE)), no_stale_translation,
             no_stale_translation.__doc__ or ""),
    Property("shootdowns_can_complete", "liveness", (("i", VCPU),), no_vcpu_waiting,
             "From every reachable state, a state where no VCPU is in SdWait is reachable."),
)

REFERENCE = Protocol(
    "reference",
    VARIABLES,
    PROCEDURES,
    STEPS,
    PROPERTIES,
    doc="The SMP deferral protocol as PROTOCOL.md defines it, with address spaces.",
    bound_decls=STANDARD + (SPACES,),
)
