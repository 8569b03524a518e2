"""Per-VCPU hypervisor state: CR3, shadow cache, TLB, deferral queue, IPI mailbox, ack mask."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from deferral.engine.memory import GuestPageTable, ShadowPageTable, Tlb
from deferral.engine.queue import RingBuffer

#: A deferral notice: (root of the guest table written, page).
Notice = tuple[int, int]


class Mode(enum.Enum):
    """What a VCPU is doing; the values are the model's pc names."""

    IDLE = "Idle"  # running guest code
    INV = "Inv"  # in an invlpg, draining before the flush
    RELOAD = "Reload"  # in a CR3 load (reload or switch), draining before the flush
    SD = "Sd"  # starting a shootdown, draining before the IPIs go out
    SDWAIT = "SdWait"  # waiting for shootdown acks
    IPI = "Ipi"  # handling a shootdown IPI


@dataclass
class Vcpu:
    """One VCPU as the hypervisor sees it.

    ``cr3`` is the root of the guest table it runs; ``shadows`` is its shadow cache, one
    shadow table per guest root it has run (kept across switches, so switching back reuses
    it); the TLB is untagged (it caches translations of the table it runs).
    """

    index: int
    pages: int
    cr3: int
    shadows: dict[int, ShadowPageTable]
    tlb: Tlb
    queue: RingBuffer
    mode: Mode = Mode.IDLE
    op_page: int | None = None  # page of the running invlpg / shootdown
    op_root: int | None = None  # table of the running shootdown, or the target of a CR3 load
    # IPI mailbox: mailbox[i] is (root, page) of initiator i's pending shootdown IPI, or None.
    mailbox: list[Notice | None] = field(default_factory=list)
    # Shootdown ack mask: acks_pending[k] while this VCPU waits for k's ack.
    acks_pending: list[bool] = field(default_factory=list)
    # The IPI being handled: (initiator, root, page), and the mode it interrupted.
    handling: tuple[int, int, int] | None = None
    interrupted: Mode | None = None

    @classmethod
    def create(cls, index: int, vcpus: int, pages: int, queue: int, cr3: int) -> "Vcpu":
        return cls(index, pages, cr3, {}, Tlb(pages), RingBuffer(queue),
                   mailbox=[None] * vcpus, acks_pending=[False] * vcpus)

    @property
    def shadow(self) -> ShadowPageTable:
        """The shadow the hardware walks: the cached shadow of the table CR3 names."""
        return self.shadow_for(self.cr3)

    def shadow_for(self, root: int) -> ShadowPageTable:
        """The cached shadow of guest table ``root`` (an empty one the first time)."""
        shadow = self.shadows.get(root)
        if shadow is None:
            shadow = self.shadows[root] = ShadowPageTable(self.pages)
        return shadow

    def shadow_of(self, table: GuestPageTable) -> ShadowPageTable | None:
        """The cached shadow of ``table``, if this VCPU has one."""
        return self.shadows.get(table.root)

    def copy(self) -> "Vcpu":
        return Vcpu(self.index, self.pages, self.cr3, {r: s.copy() for r, s in self.shadows.items()},
                    self.tlb.copy(), self.queue.copy(), self.mode, self.op_page, self.op_root,
                    list(self.mailbox), list(self.acks_pending), self.handling, self.interrupted)
