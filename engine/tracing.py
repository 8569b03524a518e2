"""Tracing: engine snapshots in the model's vocabulary, step recording, the online judge.

The :class:`Recorder` is the hypervisor's observer: the hypervisor calls it inside the
step lock right after each step's effect, so steps are numbered and appended in the one
global order in which they took effect. For each step it

* maps the engine's state to the model's JSON state form (:func:`snapshot`: only what the
  hypervisor holds; the ghost variables belong to the model),
* lets the model judge the step (:class:`~deferral.engine.judge.Judge`: the model's own
  steps compute the ghost variables, the model's invariants are evaluated on the
  engine's state with them),
* appends a :class:`~deferral.traces.format.TraceStep` (with the snapshot if asked) in
  memory or to a JSON Lines file; replay fills the ghosts in from the model the same way.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deferral.engine.hypervisor import Event, Hypervisor
from deferral.engine.judge import BATCH, Judge
from deferral.engine.vcpu import Mode, Vcpu
from deferral.model.concrete import Model, Violation
from deferral.traces.format import JsonlWriter, Trace, TraceStep


def snapshot(hv: Hypervisor) -> dict[str, Any]:
    """The engine's state in the model's vocabulary (``Model.to_json`` form, no ghost variables).

    A guest table is named by its space index; with one space, space indices are left out
    (``gpt[p]``, ``shadow[i][p]``, notices as pages) and ``cr3``/``sp`` are not shown.
    """
    vs = hv.vcpus
    one = hv.spaces == 1
    tables = hv.tables

    def shadows(v: Vcpu) -> list[Any]:
        rows = []
        for table in tables:
            shadow = v.shadow_of(table)
            rows.append(shadow.as_list() if shadow is not None else [0] * len(table))
        return rows[0] if one else rows

    def notice(n: tuple[int, int]) -> Any:
        return n[1] if one else [hv.space_of(n[0]), n[1]]

    out: dict[str, Any] = {
        "gpt": tables[0].as_list() if one else [t.as_list() for t in tables],
        "shadow": [shadows(v) for v in vs],
        "tlb": [v.tlb.as_list() for v in vs],
        "queue": [[notice(n) for n in v.queue.items()] for v in vs],
        "pc": [v.mode.value for v in vs],
        "pg": [0 if v.op_page is None else v.op_page for v in vs],
    }
    if not one:
        out["cr3"] = [hv.space_of(v.cr3) for v in vs]
        out["sp"] = [0 if v.op_root is None or v.mode is Mode.INV else hv.space_of(v.op_root) for v in vs]
    out.update({
        "ipi": [[v.mailbox[i] is not None for i in range(len(vs))] for v in vs],
        "cur": [None if v.handling is None else v.handling[0] for v in vs],
        "waitret": [v.mode is Mode.IPI and v.interrupted is Mode.SDWAIT for v in vs],
        "waiting": [list(v.acks_pending) for v in vs],
    })
    out.update(hv.added_state())  # variables a user's variant adds, kept by its ENGINE
    return out


@dataclass
class Stats:
    steps: int = 0
    by_step: Counter = field(default_factory=Counter)
    drains: int = 0  # notices drained: drain_one steps plus overflow drains inside writes
    overflow_drains: int = 0
    ipis_sent: int = 0
    ipis_taken: int = 0


@dataclass
class Findings:
    """What the judge found along a run: steps after which an invariant failed, and divergences."""

    violating_steps: int = 0
    first: dict[str, Any] | None = None  # step_number, step, property, args, values
    instances: set[tuple[Any, ...]] = field(default_factory=set)  # (property, *args)

    def add(self, number: int, label: str, violations: list[Violation]) -> None:
        if not violations:
            return
        self.violating_steps += 1
        self.instances.update((v.prop, *v.args) for v in violations)
        if self.first is None:
            v = violations[0]
            self.first = {"step_number": number, "step": label, "property": v.prop, "args": list(v.args),
                          "values": v.values, "describe": v.describe()}


class Recorder:
    """The hypervisor observer that numbers, judges and records every step."""

    def __init__(self, hv: Hypervisor, model: Model, *, snapshots: bool = False,
                 jsonl: str | Path | None = None, keep: bool = True, check: bool = True) -> None:
        self.variant = model.protocol.name
        self.source = model.protocol.source
        self.bounds = hv.bounds
        self.snapshots = snapshots
        self.initial = snapshot(hv)
        self.judge = Judge(model, self.initial) if check else None
        self.findings = Findings()
        self.stats = Stats()
        self.keep = keep
        self.steps: list[TraceStep] = []
        self.writer = JsonlWriter(jsonl, self._header([])) if jsonl is not None else None
        hv.observer = self

    def _header(self, steps: list[TraceStep]) -> Trace:
        return Trace(self.variant, self.bounds, steps, self.initial, variant_source=self.source,
                     note="recorded by deferral engine")

    def __call__(self, hv: Hypervisor, ev: Event) -> None:
        st = self.stats
        st.steps += 1
        st.by_step[ev.step] += 1
        if ev.step == "drain_one":
            st.drains += 1
        elif ev.step == "write" and ev.info.get("drained"):
            st.drains += ev.info["drained"]
            st.overflow_drains += 1
        elif ev.step == "take_ipi":
            st.ipis_taken += 1
        st.ipis_sent += ev.info.get("ipis", 0)
        state = snapshot(hv) if (self.snapshots or self.judge is not None) else None
        if self.judge is not None:
            assert state is not None
            self.judge.step(ev.step, ev.args, state)
            if self.judge.pending() >= BATCH:
                self.judged()
        tstep = TraceStep(ev.step, dict(ev.args), state if self.snapshots else None)
        if self.writer is not None:
            self.writer.step(tstep)
        if self.keep:
            self.steps.append(tstep)

    def judged(self) -> Findings:
        """The findings so far (evaluates the invariants on the states not yet judged)."""
        if self.judge is not None:
            for number, label, violations in self.judge.flush():
                self.findings.add(number, label, violations)
        return self.findings

    def trace(self) -> Trace:
        return self._header(list(self.steps))

    def close(self) -> None:
        self.judged()
        if self.writer is not None:
            self.writer.close()
            self.writer = None
