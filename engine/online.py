"""The online checker: ``no_stale_translation`` evaluated on the engine's own state.

After every step (under the step lock) it reads the engine's guest page table, shadows
and TLBs directly, and the ghost ``req`` kept by :mod:`deferral.engine.tracing`; it does
not consult the model. A violation is recorded with the step that caused it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from deferral.engine.hypervisor import Hypervisor


@dataclass
class StaleTranslation:
    step_number: int
    step: str
    vcpu: int
    page: int
    gpt: int
    tlb: int
    shadow: int

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def describe(self) -> str:
        return (f"step {self.step_number} {self.step}: VCPU {self.vcpu} must see gpt[{self.page}]="
                f"{self.gpt} but its TLB holds {self.tlb} and its shadow {self.shadow}")


def stale_translations(hv: Hypervisor, req: list[list[bool]]) -> list[tuple[int, int]]:
    """(k, p) where k is required to see gpt[p] but its TLB or shadow holds another frame."""
    bad = []
    for vcpu in hv.vcpus:
        k = vcpu.index
        for p in range(hv.bounds.pages):
            if not req[k][p]:
                continue
            guest = hv.gpt[p]
            if vcpu.tlb[p] not in (0, guest) or vcpu.shadow[p] not in (0, guest):
                bad.append((k, p))
    return bad


@dataclass
class OnlineChecker:
    """Counts the steps after which the engine's state breaks no_stale_translation."""

    violating_steps: int = 0
    first: StaleTranslation | None = None
    instances: set[tuple[int, int]] = field(default_factory=set)

    def check(self, hv: Hypervisor, req: list[list[bool]], number: int, label: str) -> None:
        bad = stale_translations(hv, req)
        if not bad:
            return
        self.violating_steps += 1
        self.instances.update(bad)
        if self.first is None:
            k, p = bad[0]
            v = hv.vcpus[k]
            self.first = StaleTranslation(number, label, k, p, hv.gpt[p], v.tlb[p], v.shadow[p])
