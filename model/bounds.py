"""Model bounds: how many VCPUs, pages, frames and queue slots a check explores."""

from __future__ import annotations

from dataclasses import dataclass

#: The ranges PROTOCOL.md allows for each bound: name -> (flag, low, high).
LIMITS: dict[str, tuple[str, int, int]] = {
    "vcpus": ("--vcpus", 1, 4),
    "pages": ("--pages", 1, 3),
    "frames": ("--frames", 1, 3),
    "queue": ("--queue", 1, 3),
}


class BoundsError(ValueError):
    """A bound outside the range PROTOCOL.md allows."""


@dataclass(frozen=True, order=True)
class Bounds:
    """N VCPUs, V pages, F frames (PTE values 0..F) and Q queue slots per VCPU."""

    vcpus: int = 2
    pages: int = 1
    frames: int = 1
    queue: int = 1

    def __post_init__(self) -> None:
        for name, (flag, low, high) in LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                raise BoundsError(f"{flag} must be an integer from {low} to {high}, got {value!r}")

    @property
    def N(self) -> int:  # noqa: N802 - the protocol's own names
        return self.vcpus

    @property
    def V(self) -> int:  # noqa: N802
        return self.pages

    @property
    def F(self) -> int:  # noqa: N802
        return self.frames

    @property
    def Q(self) -> int:  # noqa: N802
        return self.queue

    def as_dict(self) -> dict[str, int]:
        return {"vcpus": self.vcpus, "pages": self.pages, "frames": self.frames, "queue": self.queue}

    def short(self) -> str:
        return f"N={self.vcpus},V={self.pages},F={self.frames},Q={self.queue}"

    @classmethod
    def parse(cls, text: str) -> "Bounds":
        """Parse ``"N,V,F,Q"`` (as in ``--bounds 2,1,1,1``)."""
        parts = text.split(",")
        if len(parts) != 4 or not all(p.strip().isdigit() for p in parts):
            raise BoundsError(f"bounds must be four integers N,V,F,Q, got {text!r}")
        try:
            n, v, f, q = (int(p) for p in parts)
        except ValueError:  # digits int() refuses: "²", or more than 4300 of them
            raise BoundsError(f"bounds must be four integers N,V,F,Q, got {text[:40]!r}") from None
        return cls(n, v, f, q)
