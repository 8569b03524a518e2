"""A bounded ring buffer: one VCPU's deferral queue of "this PTE changed" notices.

Fixed storage of ``capacity`` slots, a head index and a count, as a hypervisor would keep
it in a per-VCPU page. Not thread-safe by itself: the hypervisor's step lock protects it.
"""

from __future__ import annotations


class QueueFull(Exception):
    """A push into a full ring (the caller must drain or drop first)."""


class RingBuffer:
    """FIFO of page numbers with room for ``capacity`` notices."""

    __slots__ = ("capacity", "_slots", "_head", "_count")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("a ring buffer needs at least one slot")
        self.capacity = capacity
        self._slots = [0] * capacity
        self._head = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def full(self) -> bool:
        return self._count == self.capacity

    def empty(self) -> bool:
        return self._count == 0

    def push(self, page: int) -> None:
        if self._count == self.capacity:
            raise QueueFull(f"ring of {self.capacity} is full")
        self._slots[(self._head + self._count) % self.capacity] = page
        self._count += 1

    def pop(self) -> int:
        if self._count == 0:
            raise IndexError("pop from an empty ring")
        page = self._slots[self._head]
        self._head = (self._head + 1) % self.capacity
        self._count -= 1
        return page

    def items(self) -> list[int]:
        """The pending notices, oldest first."""
        return [self._slots[(self._head + n) % self.capacity] for n in range(self._count)]

    def copy(self) -> "RingBuffer":
        other = RingBuffer(self.capacity)
        other._slots = list(self._slots)
        other._head = self._head
        other._count = self._count
        return other
