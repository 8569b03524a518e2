"""Per-VCPU hypervisor state: mode, shadow, TLB, deferral queue, IPI mailbox, ack mask."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from deferral.engine.memory import ShadowPageTable, Tlb
from deferral.engine.queue import RingBuffer


class Mode(enum.Enum):
    """What a VCPU is doing; the values are the model's pc names."""

    IDLE = "Idle"  # running guest code
    INV = "Inv"  # in an invlpg, draining before the flush
    RELOAD = "Reload"  # in a CR3 reload, draining before the flush
    SD = "Sd"  # starting a shootdown, draining before the IPIs go out
    SDWAIT = "SdWait"  # waiting for shootdown acks
    IPI = "Ipi"  # handling a shootdown IPI


@dataclass
class Vcpu:
    """One VCPU as the hypervisor sees it."""

    index: int
    shadow: ShadowPageTable
    tlb: Tlb
    queue: RingBuffer
    mode: Mode = Mode.IDLE
    op_page: int | None = None  # page of the running invlpg / shootdown
    # IPI mailbox: mailbox[i] is the page of initiator i's pending shootdown IPI, or None.
    mailbox: list[int | None] = field(default_factory=list)
    # Shootdown ack mask: acks_pending[k] while this VCPU waits for k's ack.
    acks_pending: list[bool] = field(default_factory=list)
    # The IPI being handled: (initiator, page), and the mode it interrupted.
    handling: tuple[int, int] | None = None
    interrupted: Mode | None = None

    @classmethod
    def create(cls, index: int, vcpus: int, pages: int, queue: int) -> "Vcpu":
        return cls(index, ShadowPageTable(pages), Tlb(pages), RingBuffer(queue),
                   mailbox=[None] * vcpus, acks_pending=[False] * vcpus)

    def copy(self) -> "Vcpu":
        return Vcpu(self.index, self.shadow.copy(), self.tlb.copy(), self.queue.copy(), self.mode,
                    self.op_page, list(self.mailbox), list(self.acks_pending), self.handling,
                    self.interrupted)
