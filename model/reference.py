"""The reference SMP deferral protocol of PROTOCOL.md, defined once.

Every tool reads this definition: the explicit search evaluates it over numpy batches,
the Z3 encoding evaluates it over terms, replay and the engine's conformance checks
evaluate it over concrete states. Step and property functions follow the PROTOCOL.md
tables line by line; see :mod:`deferral.model.context` for the notation.
"""

from __future__ import annotations

from typing import Any

from deferral.model.context import StepContext
from deferral.model.protocol import Procedure, Property, Protocol, step
from deferral.model.schema import BOOL, FRAME, PAGE, VCPU, VCPU_OR_NONE, Enum, Queue, Var

PC = Enum(("Idle", "Inv", "Reload", "Sd", "SdWait", "Ipi"), name="pc")
IDLE, INV, RELOAD, SD, SDWAIT, IPI = range(6)

VARIABLES = (
    Var("gpt", FRAME, (PAGE,), "guest PTE of page p"),
    Var("shadow", FRAME, (VCPU, PAGE), "VCPU i's shadow entry (0 = none)"),
    Var("tlb", FRAME, (VCPU, PAGE), "VCPU i's TLB entry (0 = none)"),
    Queue("queue", PAGE, (VCPU,), "pending notices, oldest first", capacity="queue"),
    Var("pc", PC, (VCPU,), "what VCPU i is doing"),
    Var("pg", PAGE, (VCPU,), "page of i's running invlpg or shootdown"),
    Var("ipi", BOOL, (VCPU, VCPU), "ipi[k][i]: an IPI from initiator i is pending at k"),
    Var("cur", VCPU_OR_NONE, (VCPU,), "initiator whose IPI k is handling"),
    Var("waitret", BOOL, (VCPU,), "k took the IPI while in SdWait (returns there)"),
    Var("waiting", BOOL, (VCPU, VCPU), "waiting[i][k]: initiator i still waits for k's ack"),
    Var("lw", VCPU_OR_NONE, (PAGE,), "last writer of page p", ghost=True),
    Var("req", BOOL, (VCPU, PAGE), "k is now required to see the current gpt[p]", ghost=True),
    Var("covers", BOOL, (VCPU,), "i's running shootdown covers the latest write of pg[i]", ghost=True),
)


# ---- procedures ----------------------------------------------------------------------
def resync(s: StepContext, i: Any, p: Any) -> None:
    """Resync every VCPU's shadow entry of page p from the guest PTE (where it has one)."""
    for k in s.each(VCPU):
        with s.when(s.shadow[k][p] != 0):
            s.shadow[k][p] = s.gpt[p]


def drain_one(s: StepContext, i: Any) -> None:
    """Take the oldest notice off i's queue and resync that page."""
    p = s.queue[i].pop()
    s.proc.resync(i, p)


def enqueue_notice(s: StepContext, i: Any, p: Any) -> None:
    """Queue a notice for page p; a full queue is drained until empty first (overflow)."""
    with s.when(s.queue[i].full()):
        for _ in range(s.queue[i].capacity):
            with s.when(s.not_(s.queue[i].empty())):
                s.proc.drain_one(i)
    s.queue[i].push(p)


def post_ipis(s: StepContext, i: Any) -> None:
    """Send a shootdown IPI from i to every other VCPU and wait for each ack."""
    for k in s.each(VCPU):
        if k != i:  # a Python if on step arguments (not on state values) is fine
            s.ipi[k][i] = True
            s.waiting[i][k] = True


def local_flush(s: StepContext, i: Any, p: Any) -> None:
    """i drops its TLB entry of p (invlpg, CR3 reload); a write i made last is now visible to i."""
    s.tlb[i][p] = 0
    with s.when(s.lw[p] == i):
        s.req[i][p] = True


def initiator_flush(s: StepContext, i: Any) -> None:
    """A shootdown's local flush: i drops its entry of pg[i]; a covering shootdown makes the
    write visible to i."""
    p = s.pg[i]
    s.tlb[i][p] = 0
    with s.when(s.covers[i]):
        s.req[i][p] = True


def remote_flush(s: StepContext, k: Any, i: Any) -> None:
    """k, handling i's IPI, drops its entry of i's page; visible to k if i's shootdown covers
    the write or k wrote it last."""
    p = s.pg[i]
    s.tlb[k][p] = 0
    with s.when(s.covers[i] | (s.lw[p] == k)):
        s.req[k][p] = True


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


# ---- steps ---------------------------------------------------------------------------
@step(("i", VCPU), ("p", PAGE), ("f", FRAME), guard=lambda s, i, p, f: s.pc[i] == PC.Idle)
def write(s: StepContext, i: int, p: int, f: int) -> None:
    """The guest writes PTE p := f and queues a notice."""
    s.proc.enqueue_notice(i, p)
    s.gpt[p] = f
    s.lw[p] = i
    for k in s.each(VCPU):
        s.req[k][p] = False
        with s.when((s.pg[k] == p) & in_shootdown(s, k)):
            s.covers[k] = False


@step(("i", VCPU), ("p", PAGE), guard=lambda s, i, p: (s.tlb[i][p] == 0) & (s.shadow[i][p] != 0))
def fill(s: StepContext, i: int, p: int) -> None:
    """Hardware walk: the TLB caches the shadow entry (at any pc)."""
    s.tlb[i][p] = s.shadow[i][p]


@step(("i", VCPU), ("p", PAGE), guard=lambda s, i, p: (s.pc[i] == PC.Idle) & (s.tlb[i][p] == 0)
      & (s.shadow[i][p] == 0) & (s.gpt[p] != 0))
def shadow_fault(s: StepContext, i: int, p: int) -> None:
    """A fault on a missing shadow entry fills shadow and TLB from the guest PTE."""
    s.shadow[i][p] = s.gpt[p]
    s.tlb[i][p] = s.gpt[p]


@step(("i", VCPU), ("p", PAGE), guard=lambda s, i, p: s.pc[i] == PC.Idle)
def invlpg(s: StepContext, i: int, p: int) -> None:
    """The guest starts invalidating page p."""
    s.pc[i] = PC.Inv
    s.pg[i] = p


@step(("i", VCPU), ("p", PAGE), guard=lambda s, i, p: s.pc[i] == PC.Idle)
def shootdown(s: StepContext, i: int, p: int) -> None:
    """The guest starts a TLB shootdown of page p."""
    s.pc[i] = PC.Sd
    s.pg[i] = p
    s.covers[i] = s.lw[p] == i


@step(("i", VCPU), guard=lambda s, i: s.pc[i] == PC.Idle)
def reload_cr3(s: StepContext, i: int) -> None:
    """The guest starts a CR3 reload."""
    s.pc[i] = PC.Reload


@step(("i", VCPU), name="drain_one", guard=lambda s, i: ((s.pc[i] == PC.Inv) | (s.pc[i] == PC.Reload)
                                                      | (s.pc[i] == PC.Sd) | (s.pc[i] == PC.Ipi))
      & s.not_(s.queue[i].empty()))
def drain_one_step(s: StepContext, i: int) -> None:
    """Drain one notice while flushing."""
    s.proc.drain_one(i)


@step(("i", VCPU), guard=lambda s, i: (s.pc[i] == PC.Inv) & s.queue[i].empty())
def finish_invlpg(s: StepContext, i: int) -> None:
    """Queue drained: drop the TLB entry; the page's own last write is now visible to i."""
    s.proc.local_flush(i, s.pg[i])
    s.pc[i] = PC.Idle
    s.pg[i] = 0


@step(("i", VCPU), guard=lambda s, i: (s.pc[i] == PC.Reload) & s.queue[i].empty())
def finish_reload(s: StepContext, i: int) -> None:
    """Queue drained: flush the whole TLB; i's own writes are now visible to it."""
    for p in s.each(PAGE):
        s.proc.local_flush(i, p)
    s.pc[i] = PC.Idle


@step(("i", VCPU), guard=lambda s, i: (s.pc[i] == PC.Sd) & s.queue[i].empty())
def send_ipis(s: StepContext, i: int) -> None:
    """Queue drained: flush the local entry, IPI every other VCPU, wait for acks."""
    s.proc.initiator_flush(i)
    s.proc.post_ipis(i)
    s.pc[i] = PC.SdWait


@step(("i", VCPU), guard=lambda s, i: (s.pc[i] == PC.SdWait)
      & s.all(s.not_(s.waiting[i][k]) for k in s.each(VCPU)))
def shootdown_done(s: StepContext, i: int) -> None:
    """Every ack is in: a covering shootdown makes the write visible to all."""
    p = s.pg[i]
    with s.when(s.covers[i]):
        for k in s.each(VCPU):
            s.req[k][p] = True
    s.pc[i] = PC.Idle
    s.pg[i] = 0
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


STEPS = (write, fill, shadow_fault, invlpg, shootdown, reload_cr3, drain_one_step, finish_invlpg,
         finish_reload, send_ipis, shootdown_done, take_ipi, ack_ipi)


# ---- properties ----------------------------------------------------------------------
def no_stale_translation(s: StepContext, k: int, p: int) -> Any:
    """Once k must see the current gpt[p], neither its TLB nor its shadow holds another."""
    g = s.gpt[p]
    fresh = ((s.tlb[k][p] == 0) | (s.tlb[k][p] == g)) & ((s.shadow[k][p] == 0) | (s.shadow[k][p] == g))
    return s.not_(s.req[k][p]) | fresh


def no_vcpu_waiting(s: StepContext, i: int) -> Any:
    """VCPU i is not waiting for a shootdown (the AG EF goal)."""
    return s.pc[i] != PC.SdWait


PROPERTIES = (
    Property("no_stale_translation", "invariant", (("k", VCPU), ("p", PAGE)), no_stale_translation,
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
    doc="The SMP deferral protocol as PROTOCOL.md defines it.",
)
