"""Tracing: ghost variables, engine snapshots in the model's vocabulary, step recording.

The :class:`Recorder` is the hypervisor's observer: the hypervisor calls it inside the
step lock right after each step's effect, so steps are numbered and appended in the one
global order in which they took effect. For each step it

* updates the ghost variables ``lw``, ``req`` and ``covers`` (the engine itself has no
  use for them; the rules are PROTOCOL.md's ghost updates, driven by the step's event),
* runs the online checker (:mod:`deferral.engine.online`),
* optionally maps the engine's state to the model's JSON state form (:func:`snapshot`),
* appends a :class:`~deferral.traces.format.TraceStep` in memory or to a JSON Lines file.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deferral.engine.hypervisor import Event, Hypervisor
from deferral.engine.online import OnlineChecker
from deferral.engine.vcpu import Mode
from deferral.model.bounds import Bounds
from deferral.traces.format import JsonlWriter, Trace, TraceStep


@dataclass
class Ghost:
    """lw[p] (None before the first write), req[k][p], covers[i]."""

    lw: list[int | None]
    req: list[list[bool]]
    covers: list[bool]

    @classmethod
    def initial(cls, bounds: Bounds) -> "Ghost":
        return cls([None] * bounds.pages, [[False] * bounds.pages for _ in range(bounds.vcpus)],
                   [False] * bounds.vcpus)

    def copy(self) -> "Ghost":
        return Ghost(list(self.lw), [list(r) for r in self.req], list(self.covers))

    def update(self, hv: Hypervisor, ev: Event) -> None:
        """Apply the ghost rules of ``ev`` (hv holds the state after the step)."""
        a, n = ev.args, hv.bounds.vcpus
        if ev.step == "write":
            i, p = a["i"], a["p"]
            self.lw[p] = i
            for v in hv.vcpus:
                self.req[v.index][p] = False
                in_shootdown = v.mode in (Mode.SD, Mode.SDWAIT) or (
                    v.mode is Mode.IPI and v.interrupted is Mode.SDWAIT)
                if in_shootdown and v.op_page == p:
                    self.covers[v.index] = False
        elif ev.step == "shootdown":
            self.covers[a["i"]] = self.lw[a["p"]] == a["i"]
        elif ev.step == "finish_invlpg":
            i, p = a["i"], ev.info["page"]
            if self.lw[p] == i:
                self.req[i][p] = True
        elif ev.step == "finish_reload":
            i = a["i"]
            for p in range(hv.bounds.pages):
                if self.lw[p] == i:
                    self.req[i][p] = True
        elif ev.step == "send_ipis":
            i = a["i"]
            if self.covers[i]:
                self.req[i][ev.info["page"]] = True
        elif ev.step == "shootdown_done":
            i = a["i"]
            if self.covers[i]:
                for k in range(n):
                    self.req[k][ev.info["page"]] = True
            self.covers[i] = False
        elif ev.step == "ack_ipi":
            k, i, p = a["k"], ev.info["initiator"], ev.info["page"]
            if self.covers[i] or self.lw[p] == k:
                self.req[k][p] = True


def snapshot(hv: Hypervisor, ghost: Ghost) -> dict[str, Any]:
    """The engine's state as the model's JSON state (``Model.to_json`` form)."""
    vs = hv.vcpus
    return {
        "gpt": hv.gpt.as_list(),
        "shadow": [v.shadow.as_list() for v in vs],
        "tlb": [v.tlb.as_list() for v in vs],
        "queue": [v.queue.items() for v in vs],
        "pc": [v.mode.value for v in vs],
        "pg": [0 if v.op_page is None else v.op_page for v in vs],
        "ipi": [[v.mailbox[i] is not None for i in range(len(vs))] for v in vs],
        "cur": [None if v.handling is None else v.handling[0] for v in vs],
        "waitret": [v.mode is Mode.IPI and v.interrupted is Mode.SDWAIT for v in vs],
        "waiting": [list(v.acks_pending) for v in vs],
        "lw": list(ghost.lw),
        "req": [list(r) for r in ghost.req],
        "covers": list(ghost.covers),
    }


@dataclass
class Stats:
    steps: int = 0
    by_step: Counter = field(default_factory=Counter)
    drains: int = 0  # notices drained: drain_one steps plus overflow drains inside writes
    overflow_drains: int = 0
    ipis_sent: int = 0
    ipis_taken: int = 0


class Recorder:
    """The hypervisor observer that numbers, checks and records every step."""

    def __init__(self, hv: Hypervisor, variant: str, *, snapshots: bool = False,
                 jsonl: str | Path | None = None, keep: bool = True, check: bool = True) -> None:
        self.variant = variant
        self.bounds = hv.bounds
        self.snapshots = snapshots
        self.ghost = Ghost.initial(hv.bounds)
        self.checker = OnlineChecker() if check else None
        self.stats = Stats()
        self.keep = keep
        self.steps: list[TraceStep] = []
        self.initial = snapshot(hv, self.ghost)
        self.writer = JsonlWriter(jsonl, self._header([])) if jsonl is not None else None
        hv.observer = self

    def _header(self, steps: list[TraceStep]) -> Trace:
        return Trace(self.variant, self.bounds, steps, self.initial, note="recorded by deferral engine")

    def __call__(self, hv: Hypervisor, ev: Event) -> None:
        self.ghost.update(hv, ev)
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
        if (ev.step == "send_ipis") != hv.bugs.ipi_before_drain and ev.step in ("send_ipis", "shootdown"):
            st.ipis_sent += hv.bounds.vcpus - 1
        if self.checker is not None:
            label = f"{ev.step}({','.join(str(v) for v in ev.args.values())})"
            self.checker.check(hv, self.ghost.req, st.steps, label)
        tstep = TraceStep(ev.step, dict(ev.args), snapshot(hv, self.ghost) if self.snapshots else None)
        if self.writer is not None:
            self.writer.step(tstep)
        if self.keep:
            self.steps.append(tstep)

    def trace(self) -> Trace:
        return self._header(list(self.steps))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
