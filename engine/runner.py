"""The threaded engine: one thread per VCPU running its guest program on the hypervisor.

Each VCPU thread runs guest operations as the hypervisor would service them:

* ``access``: one hardware walk (TLB hit, ``fill``, or ``shadow_fault`` from guest mode);
* ``write``: the guest's PTE write with its notice (``write``, overflow drain inside);
* ``invlpg``: ``invlpg``, ``drain_one`` until the ring is empty, ``finish_invlpg``;
* ``reload``: ``reload_cr3``, drain, ``finish_reload``; ``switch`` (several address
  spaces): ``switch_cr3`` to another process's table, drain, ``finish_reload``;
* ``shootdown``: ``shootdown``, drain (if of the table the VCPU runs), ``send_ipis``, then
  the wait loop: until every ack is in (``shootdown_done``), keep taking IPIs
  (``take_ipi``, drain, ``ack_ipi``) and let the hardware walk (``fill``);
* between operations, in guest mode, it takes pending IPIs.

A run stops after ``seconds``; then every thread finishes its operation and keeps
taking IPIs until all VCPUs are idle, or until a grace timeout, after which a VCPU still
waiting for acks is reported stuck (wait-irqs-off deadlocks this way; a run never hangs).
"""

from __future__ import annotations

import inspect
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from deferral.engine.bugs import Bugs, bugs_for
from deferral.engine.guest import Op, random_program
from deferral.engine.hypervisor import Hypervisor
from deferral.engine.tracing import Recorder
from deferral.engine.user import engine_error
from deferral.engine.vcpu import Mode
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.context import USER_ERRORS
from deferral.model.protocol import Protocol
from deferral.model.variants import get_variant
from deferral.traces.format import Trace

ProgramFactory = Callable[[int], Iterator[Op]]


@dataclass
class RunConfig:
    bounds: Bounds
    variant: str = "reference"
    seconds: float = 1.0
    seed: int = 0
    snapshots: bool = False
    trace_out: str | None = None
    jsonl: bool = False
    grace: float = 0.5  # after the stop: how long to wait for shootdowns to complete
    bugs: Bugs | None = None  # overrides the variant's bugs (test fault injection)
    protocol: Protocol | None = None  # a user's variant (default: the published ``variant``)
    engine: type[Hypervisor] | None = None  # a user's ENGINE (default: the stock hypervisor)
    programs: ProgramFactory | None = None  # VCPU -> program; default random from seed
    max_steps: int | None = None  # stop early after this many steps


@dataclass
class RunResult:
    summary: dict[str, Any]
    trace: Trace | None
    stuck: list[int] = field(default_factory=list)
    user_errors: list[str] = field(default_factory=list)  # raised in a user's ENGINE: bad input

    @property
    def violated(self) -> bool:
        return bool(self.summary["violations"]["steps"]) or bool(self.stuck)


class EngineStuck(Exception):
    """A step of a VCPU thread had not returned when the run ended: it holds the step lock."""

    def __init__(self, where: str, seconds: float) -> None:
        super().__init__(f"engine run: a step had not returned {seconds:g} s after the start (the run "
                         "and its grace time)")
        self.where = where


class _Run:
    def __init__(self, cfg: RunConfig) -> None:
        self.cfg = cfg
        protocol = cfg.protocol if cfg.protocol is not None else get_variant(cfg.variant)
        if cfg.bugs is not None:
            self.bugs = cfg.bugs
        else:  # a user's ENGINE makes its own change; a published variant runs as its bug
            self.bugs = Bugs() if cfg.engine is not None else bugs_for(protocol.name)
        self.hv = (cfg.engine or Hypervisor)(cfg.bounds, self.bugs)
        jsonl = cfg.trace_out if (cfg.trace_out and cfg.jsonl) else None
        keep = cfg.trace_out is None or not cfg.jsonl
        self.rec = Recorder(self.hv, Model(protocol, cfg.bounds), snapshots=cfg.snapshots, jsonl=jsonl,
                            keep=keep)
        self.stop = threading.Event()
        self.deadline = float("inf")  # set at the stop: end of the grace period
        self.gave_up: set[int] = set()
        self.programs_over: set[int] = set()  # VCPUs whose program ended (or was stopped)
        self.errors: list[str] = []
        self.user_errors: list[str] = []  # the errors raised in a user's ENGINE
        self.started = 0
        self.lock = threading.Lock()

    # ---- per-VCPU behaviour ----------------------------------------------------------------
    def take_ipis(self, k: int) -> None:
        start = k + 1
        while (i := self.hv.take_next_ipi(k, start)) is not None:
            self.pause()
            if self.hv.handler_drains(k):
                self.drain(k)
            self.hv.ack_ipi(k)
            start = i + 1

    def drain(self, i: int) -> None:
        while self.hv.drain_one(i):
            self.pause()

    @staticmethod
    def pause() -> None:
        """A preemption point between two steps: let other VCPU threads run."""
        time.sleep(0)

    def perform(self, i: int, op: Op) -> None:
        hv = self.hv
        if op.kind == "access":
            hv.access(i, op.page)
        elif op.kind == "write":
            hv.write(i, op.space, op.page, op.frame)
        elif op.kind == "invlpg":
            hv.invlpg(i, op.page)
            self.pause()
            if hv.invlpg_drains(i):
                self.drain(i)
            hv.finish_invlpg(i)
        elif op.kind in ("reload", "switch"):
            if op.kind == "reload" or hv.tables[op.space].root == hv.vcpus[i].cr3:
                hv.reload_cr3(i)  # switching to the process it runs is a reload
            else:
                hv.switch_cr3(i, op.space)
            self.pause()
            if hv.reload_drains(i):
                self.drain(i)
            hv.finish_reload(i)
        elif op.kind == "shootdown":
            hv.shootdown(i, op.space, op.page)
            self.pause()
            if hv.flushes_locally(i):  # a shootdown of another process's table flushes nothing here
                self.drain(i)
            hv.send_ipis(i)
            self.pause()
            self.wait_for_acks(i, op.page)

    def wait_for_acks(self, i: int, page: int) -> None:
        spins = 0
        while not self.hv.shootdown_done(i):
            if time.monotonic() > self.deadline:
                self.gave_up.add(i)
                return
            self.take_ipis(i)  # interrupts on in the wait loop (the engine refuses under wait-irqs-off)
            spins += 1
            if spins % 7 == 0:
                self.hv.access(i, (page + spins) % self.cfg.bounds.pages)  # the hardware may walk
            time.sleep(0 if spins < 50 else 0.0002)

    def quiet(self) -> bool:
        """Every VCPU's program is over, every VCPU idle and no IPI pending: nothing can come."""
        with self.hv.lock:
            return (len(self.programs_over) == len(self.hv.vcpus)
                    and all(v.mode is Mode.IDLE and all(m is None for m in v.mailbox) for v in self.hv.vcpus))

    def vcpu_main(self, i: int) -> None:
        try:
            factory = self.cfg.programs or (lambda k: random_program(self.cfg.seed, k, self.cfg.bounds))
            program = factory(i)
            while not self.stop.is_set():
                self.take_ipis(i)
                op = next(program, None)
                if op is None:
                    break
                self.perform(i, op)
                if i in self.gave_up:
                    return
                if self.cfg.max_steps is not None and self.rec.stats.steps >= self.cfg.max_steps:
                    self.stop.set()
                time.sleep(0)
            # a VCPU whose program ended stays online and takes IPIs until no program runs: a
            # shootdown started later by another VCPU still needs its ack
            with self.hv.lock:
                self.programs_over.add(i)
            while not self.quiet() and time.monotonic() <= self.deadline:
                self.take_ipis(i)
                time.sleep(0.0002)
        except USER_ERRORS as exc:  # reported in the summary; the run must not hang (sys.exit() too)
            self.errors.append(f"VCPU {i}: {type(exc).__name__}: {exc}")
            crash = engine_error(exc)
            if crash:  # raised in the user's ENGINE: a broken variant file
                self.user_errors.append(f"{crash} (ENGINE, VCPU {i})")
            self.stop.set()

    # ---- the run -----------------------------------------------------------------------------
    def run(self) -> RunResult:
        cfg = self.cfg
        threads = [threading.Thread(target=self.vcpu_main, args=(i,), name=f"vcpu{i}", daemon=True)
                   for i in range(cfg.bounds.vcpus)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        end = t0 + cfg.seconds
        while not self.stop.is_set() and any(t.is_alive() for t in threads):
            left = end - time.monotonic()
            if left <= 0:
                break
            self.stop.wait(min(left, 0.01))  # scripted guests may all finish early
        self.deadline = time.monotonic() + cfg.grace
        self.stop.set()
        for t in threads:
            t.join(max(0.0, self.deadline - time.monotonic()) + 2.0)
        elapsed = time.monotonic() - t0
        alive = [t.name for t in threads if t.is_alive()]
        if alive and not self.hv.lock.acquire(timeout=1.0):  # a step that never returns holds it
            raise EngineStuck(self._where_stuck(threads), cfg.seconds + cfg.grace)
        if alive:
            self.hv.lock.release()
        with self.hv.lock:
            stuck = [v.index for v in self.hv.vcpus if v.mode is Mode.SDWAIT]
            modes = [v.mode.value for v in self.hv.vcpus]
            trace = self.rec.trace() if self.rec.keep else None
            self.rec.close()
        if cfg.trace_out and not cfg.jsonl and trace is not None:
            trace.save(cfg.trace_out)
        return RunResult(self._summary(elapsed, stuck, modes, alive), trace, stuck, list(self.user_errors))

    def _where_stuck(self, threads: list[threading.Thread]) -> str:
        """``vcpu0 at FILE line N (in F)``: the deepest frame of the ENGINE's file (else of any file)
        in each VCPU thread still running."""
        try:
            own = inspect.getsourcefile(type(self.hv)) or ""
        except TypeError:
            own = ""
        frames = sys._current_frames()
        places = []
        for t in threads:
            frame = frames.get(t.ident or -1)
            if not t.is_alive() or frame is None:
                continue
            stack = traceback.extract_stack(frame)
            mine = [f for f in stack if own and Path(f.filename) == Path(own)] or stack[-1:]
            places += [f"{t.name} at {f.filename} line {f.lineno} (in {f.name})" for f in mine[-1:]]
        return "; ".join(places) or "a VCPU thread"

    def _summary(self, elapsed: float, stuck: list[int], modes: list[str], alive: list[str]) -> dict[str, Any]:
        st, found, judge = self.rec.stats, self.rec.findings, self.rec.judge
        assert judge is not None
        return {
            "variant": self.rec.variant,
            "engine": type(self.hv).__name__,
            "bounds": self.cfg.bounds.as_dict(),
            "seed": self.cfg.seed,
            "seconds": self.cfg.seconds,
            "elapsed_s": round(elapsed, 3),
            "locking": "one global step lock; each protocol step is one critical section",
            "bugs": self.bugs.active(),
            "steps": st.steps,
            "by_step": dict(sorted(st.by_step.items())),
            "shootdowns": {"started": st.by_step["shootdown"], "completed": st.by_step["shootdown_done"]},
            "drains": st.drains,
            "overflow_drains": st.overflow_drains,
            "ipis": {"sent": st.ipis_sent, "taken": st.ipis_taken, "acked": st.by_step["ack_ipi"]},
            "violations": {  # the model's invariants on the engine's state, with the model's ghosts
                "properties": [p.name for p in judge.model.invariants],
                "steps": found.violating_steps,
                "instances": sorted([list(x) for x in found.instances]),
                "first": found.first,
            },
            "divergence": {  # engine steps the model does not accept as they happened
                "steps": judge.divergent_steps,
                "first": None if judge.first_divergence is None else judge.first_divergence.to_json(),
            },
            "stuck": stuck,
            "deadlocked": bool(stuck),
            "final_pc": modes,
            "threads_alive": alive,
            "errors": list(self.errors),
            "trace_out": self.cfg.trace_out,
            "trace_format": None if not self.cfg.trace_out else (
                "deferral-trace-jsonl/1" if self.cfg.jsonl else "deferral-trace/1"),
            "snapshots": self.cfg.snapshots,
        }


def run(cfg: RunConfig) -> RunResult:
    """Run the threaded engine under ``cfg``'s guests; never hangs (see module doc)."""
    if cfg.trace_out:
        Path(cfg.trace_out).parent.mkdir(parents=True, exist_ok=True)
    return _Run(cfg).run()
