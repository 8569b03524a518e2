"""The published protocol variants, as the bugs a hypervisor developer could really write.

Each published variant name selects a :class:`Bugs` setting that changes exactly one
place in :mod:`deferral.engine.hypervisor` or :mod:`deferral.engine.runner` (see the
comments at each ``self.bugs.<name>`` test there). Two further fields are test-only
fault injections (not protocol variants): they make the engine deviate from every
variant, so the tests can check that replay and conform catch a deviation.
"""

from __future__ import annotations

from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Bugs:
    drain_local_only: bool = False  # resync only the draining VCPU's own shadow
    ipi_before_drain: bool = False  # post IPIs when the shootdown starts, before draining
    remote_no_drain: bool = False  # IPI handler acks without draining its own queue
    reload_no_drain: bool = False  # CR3 reload flushes without draining the queue
    wait_irqs_off: bool = False  # the shootdown wait loop runs with interrupts off
    overflow_drop: bool = False  # a notice for a full queue is dropped, not drained
    defer_non_current: bool = False  # a write to a table the writer does not run is queued too
    switch_no_drain: bool = False  # a switch to another table flushes without draining
    resync_running_only: bool = False  # a drain resyncs only shadows of VCPUs running the table
    # ---- test-only fault injection (no variant models these) ----
    skip_resync_vcpu: int | None = None  # drain never resyncs this VCPU's shadow
    keep_tlb_on_invlpg: bool = False  # finish_invlpg forgets to drop the TLB entry

    def active(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) not in (False, None)]


#: Variant name -> the engine bug that implements it.
VARIANT_BUGS: dict[str, Bugs] = {
    "reference": Bugs(),
    "drain-local-only": Bugs(drain_local_only=True),
    "ipi-before-drain": Bugs(ipi_before_drain=True),
    "remote-no-drain": Bugs(remote_no_drain=True),
    "reload-no-drain": Bugs(reload_no_drain=True),
    "wait-irqs-off": Bugs(wait_irqs_off=True),
    "overflow-drop": Bugs(overflow_drop=True),
    "defer-non-current": Bugs(defer_non_current=True),
    "switch-no-drain": Bugs(switch_no_drain=True),
    "resync-running-only": Bugs(resync_running_only=True),
}


class UnknownVariant(ValueError):
    """A variant the engine has no implementation of."""


def bugs_for(variant: str) -> Bugs:
    """The engine setting for a published variant name."""
    try:
        return VARIANT_BUGS[variant]
    except KeyError:
        raise UnknownVariant(f"the engine implements only the published variants "
                             f"({', '.join(VARIANT_BUGS)}), not {variant!r}") from None
