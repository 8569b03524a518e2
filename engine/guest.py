"""Guest programs: what each VCPU's guest does, random (seeded) or scripted.

A program is a sequence of :class:`Op`: write a PTE, access a page (TLB hit, fill or
shadow fault), invlpg, CR3 reload, TLB shootdown, and with several address spaces a
process switch (a CR3 load of another process's table); a write or a shootdown names the
process whose table it changes (its own, or another's: fork, exit, reclaim). A random
program is a pure function of (seed, VCPU, bounds): the k-th operation of VCPU i is the
same on every run (with one space, the same as before spaces existed). How the
VCPU threads interleave is not reproducible, and is the point of running them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Iterable, Iterator, Sequence

from deferral.model.bounds import Bounds

KINDS = ("write", "access", "invlpg", "reload", "shootdown", "switch")

#: Default mix of a random program (relative weights per kind).
DEFAULT_WEIGHTS: dict[str, int] = {"write": 25, "access": 35, "invlpg": 10, "reload": 8, "shootdown": 22}
#: With several address spaces: process switches too.
SPACES_WEIGHTS: dict[str, int] = {**DEFAULT_WEIGHTS, "switch": 10}


@dataclass(frozen=True)
class Op:
    kind: str
    page: int = 0
    frame: int = 0
    space: int = 0  # write / shootdown: whose table; switch: the process switched to

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown guest operation {self.kind!r}; choose one of {', '.join(KINDS)}")

    def label(self) -> str:
        where = f"{self.space}:" if self.space else ""
        if self.kind == "write":
            return f"write({where}{self.page},{self.frame})"
        if self.kind == "reload":
            return "reload"
        if self.kind == "switch":
            return f"switch({self.space})"
        return f"{self.kind}({where}{self.page})"


def random_program(seed: int, vcpu: int, bounds: Bounds,
                   weights: dict[str, int] | None = None) -> Iterator[Op]:
    """An endless random program for ``vcpu``, reproducible from ``seed``."""
    rng = random.Random(f"deferral-guest/{seed}/{vcpu}")
    spaces = int(bounds.get("spaces", 1))
    mix = weights or (DEFAULT_WEIGHTS if spaces == 1 else SPACES_WEIGHTS)
    kinds = list(mix)
    cum = list(mix.values())
    while True:
        kind = rng.choices(kinds, cum)[0]
        page = rng.randrange(bounds.pages)
        frame = rng.randrange(bounds.frames + 1) if kind == "write" else 0
        space = rng.randrange(spaces) if spaces > 1 and kind in ("write", "shootdown", "switch") else 0
        yield Op(kind, page if kind not in ("reload", "switch") else 0, frame, space)


def scripted(ops: Iterable[Op | tuple]) -> Iterator[Op]:
    """A finite program from ``Op``s or tuples like ("write", 0, 1), ("reload",), or
    ("write", 0, 1, 1) (page 0 := 1 in process 1's table), ("switch", 0, 0, 1)."""
    for op in ops:
        yield op if isinstance(op, Op) else Op(*op)


def check_program(ops: Sequence[Op], bounds: Bounds) -> None:
    """Raise ValueError when an operation names a page or frame outside the bounds."""
    spaces = int(bounds.get("spaces", 1))
    for op in ops:
        if not 0 <= op.page < bounds.pages or not 0 <= op.frame <= bounds.frames or not 0 <= op.space < spaces:
            raise ValueError(f"{op.label()} is outside {bounds.short()}")
