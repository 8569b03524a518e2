"""Page tables as flat byte arrays: the guest's own table, per-VCPU shadows and TLBs.

An entry is a byte: 0 means not present, 1..F a frame number. The guest page table is
the guest's memory, shared by every VCPU; each VCPU has its own shadow table (what the
hardware walks) and its own TLB (what the hardware caches from that walk).
"""

from __future__ import annotations


class PageTable:
    """``pages`` entries of one byte each (0 = not present)."""

    __slots__ = ("entries",)

    def __init__(self, pages: int) -> None:
        self.entries = bytearray(pages)

    def __getitem__(self, page: int) -> int:
        return self.entries[page]

    def __setitem__(self, page: int, frame: int) -> None:
        self.entries[page] = frame

    def __len__(self) -> int:
        return len(self.entries)

    def clear(self) -> None:
        for page in range(len(self.entries)):
            self.entries[page] = 0

    def as_list(self) -> list[int]:
        return list(self.entries)

    def copy(self) -> "PageTable":
        other = type(self)(len(self.entries))
        other.entries[:] = self.entries
        return other


class GuestPageTable(PageTable):
    """One process's page table in shared guest memory; the guest writes it directly.

    ``root`` is the address of its top-level table: what a CR3 holds while the process
    runs, and the key of the hypervisor's shadow caches.
    """

    __slots__ = ("root",)

    def __init__(self, pages: int, root: int = 0x1000) -> None:
        super().__init__(pages)
        self.root = root

    def copy(self) -> "GuestPageTable":
        other = GuestPageTable(len(self.entries), self.root)
        other.entries[:] = self.entries
        return other


class ShadowPageTable(PageTable):
    """A VCPU's shadow page table, kept by the hypervisor, walked by the hardware."""


class Tlb(PageTable):
    """A VCPU's TLB: entries filled by a hardware walk of the shadow, dropped by flushes."""

    def flush_all(self) -> None:
        self.clear()
