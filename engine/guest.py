"""Guest programs: what each VCPU's guest does, random (seeded) or scripted.

A program is a sequence of :class:`Op`: write a PTE, access a page (TLB hit, fill or
shadow fault), invlpg, CR3 reload, TLB shootdown. A random program is a pure function
of (seed, VCPU, bounds): the k-th operation of VCPU i is the same on every run. How the
VCPU threads interleave is not reproducible, and is the point of running them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from deferral.model.bounds import Bounds

KINDS = ("write", "access", "invlpg", "reload", "shootdown")

#: Default mix of a random program (relative weights per kind).
DEFAULT_WEIGHTS: dict[str, int] = {"write": 25, "access": 35, "invlpg": 10, "reload": 8, "shootdown": 22}


@dataclass(frozen=True)
class Op:
    kind: str
    page: int = 0
    frame: int = 0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown guest operation {self.kind!r}; choose one of {', '.join(KINDS)}")

    def label(self) -> str:
        if self.kind == "write":
            return f"write({self.page},{self.frame})"
        if self.kind == "reload":
            return "reload"
        return f"{self.kind}({self.page})"


def random_program(seed: int, vcpu: int, bounds: Bounds,
                   weights: dict[str, int] | None = None) -> Iterator[Op]:
    """An endless random program for ``vcpu``, reproducible from ``seed``."""
    rng = random.Random(f"deferral-guest/{seed}/{vcpu}")
    mix = weights or DEFAULT_WEIGHTS
    kinds = list(mix)
    cum = list(mix.values())
    while True:
        kind = rng.choices(kinds, cum)[0]
        page = rng.randrange(bounds.pages)
        frame = rng.randrange(bounds.frames + 1) if kind == "write" else 0
        yield Op(kind, page if kind != "reload" else 0, frame)


def scripted(ops: Iterable[Op | tuple]) -> Iterator[Op]:
    """A finite program from ``Op``s or tuples like ("write", 0, 1), ("reload",)."""
    for op in ops:
        yield op if isinstance(op, Op) else Op(*op)


def check_program(ops: Sequence[Op], bounds: Bounds) -> None:
    """Raise ValueError when an operation names a page or frame outside the bounds."""
    for op in ops:
        if not 0 <= op.page < bounds.pages or not 0 <= op.frame <= bounds.frames:
            raise ValueError(f"{op.label()} is outside {bounds.short()}")
