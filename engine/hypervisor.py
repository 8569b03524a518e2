"""The hypervisor side of the deferral protocol: the engine's atomic steps.

This is independent code (it does not call the model's step functions): one guest page
table per process in shared memory (named by the address of its top-level table), a CR3
per VCPU, per-VCPU shadow caches keyed by the guest's top-level table, untagged TLBs,
bounded deferral rings of (table, page) notices, IPI mailboxes and shootdown ack masks,
and the atomic steps of PROTOCOL.md as methods (with address spaces: ``switch_cr3``, and
a write to a table the writer does not run resynced at once, since no flush on the writer
would drain it).

Locking, honestly: there is ONE lock, the *step lock*. Every step method takes it for
exactly the duration of that step (check the step's precondition, apply its effect,
emit its event to the observer), so each PROTOCOL.md step is one critical section and
the order in which steps take the lock is the one global order of the trace. There
are no finer-grained locks; multi-step operations (an invlpg is ``invlpg``, then
``drain_one`` until the ring is empty, then ``finish_invlpg``) release the lock
between steps, so other VCPUs' steps interleave there, as they would on real SMP.

Each step first checks its own precondition and raises :class:`NotEnabled` if it
does not hold; :meth:`Hypervisor.why_not` reports that check without acting, so a
driver can single-step the engine (``execute``) and compare its enabledness with the
model's. A published variant is selected as :class:`~deferral.engine.bugs.Bugs`.
Events name steps and arguments in the model's vocabulary: a space is the index of its
guest table; with one space the space arguments are left out (as traces written before
spaces existed).
"""

from __future__ import annotations

import copy as copying
import functools
import inspect
import threading
from dataclasses import dataclass, field
from typing import Any, Callable

from deferral.engine.bugs import Bugs
from deferral.engine.memory import GuestPageTable
from deferral.engine.vcpu import Mode, Notice, Vcpu
from deferral.model.bounds import Bounds

#: The steps and their parameter names, in the model's vocabulary.
STEP_PARAMS: dict[str, tuple[str, ...]] = {
    "write": ("i", "s", "p", "f"), "fill": ("i", "p"), "shadow_fault": ("i", "p"), "invlpg": ("i", "p"),
    "shootdown": ("i", "s", "p"), "reload_cr3": ("i",), "switch_cr3": ("i", "s"), "drain_one": ("i",),
    "finish_invlpg": ("i",), "finish_reload": ("i",), "send_ipis": ("i",), "shootdown_done": ("i",),
    "take_ipi": ("k", "i"), "ack_ipi": ("k",),
}

FLUSHING = (Mode.INV, Mode.RELOAD, Mode.SD, Mode.IPI)

#: Where the guest's top-level tables live: process s's at ROOT_BASE * (s + 1).
ROOT_BASE = 0x1000


class NotEnabled(Exception):
    """A step requested where its precondition does not hold."""


@dataclass
class Event:
    """One atomic step as it took effect: its name, model arguments and facts it used."""

    step: str
    args: dict[str, int]
    info: dict[str, Any] = field(default_factory=dict)


Observer = Callable[["Hypervisor", Event], None]


class Hypervisor:
    """Shared memory, per-VCPU structures and the atomic steps over them."""

    def __init__(self, bounds: Bounds, bugs: Bugs = Bugs(), observer: Observer | None = None) -> None:
        self.bounds = bounds
        self.bugs = bugs
        self.observer = observer
        self.lock = threading.Lock()  # the step lock
        self.spaces = int(bounds.get("spaces", 1))
        #: one page table per guest process; process s's top-level table is at tables[s].root
        self.tables = [GuestPageTable(bounds.pages, ROOT_BASE * (s + 1)) for s in range(self.spaces)]
        self.vcpus = [Vcpu.create(i, bounds.vcpus, bounds.pages, bounds.queue, self.tables[0].root)
                      for i in range(bounds.vcpus)]

    def added_state(self) -> dict[str, Any]:
        """The values of variables a user's variant adds, in the model's JSON form (``Model.to_json``:
        ``{"lastpg": 1}``), for a subclass that keeps them in fields of its own; none here."""
        return {}

    @property
    def gpt(self) -> GuestPageTable:
        """The first process's page table (the only one with one address space)."""
        return self.tables[0]

    def table(self, root: int) -> GuestPageTable:
        """The guest table whose top-level table is at ``root``."""
        return self.tables[root // ROOT_BASE - 1]

    def space_of(self, root: int) -> int:
        """The model's name of a guest table: its space index."""
        return root // ROOT_BASE - 1

    # ---- helpers (caller holds the lock) -------------------------------------------------
    def _emit(self, step: str, args: dict[str, int], **info: Any) -> None:
        if self.observer is not None:
            if self.spaces == 1:
                args = {k: v for k, v in args.items() if k != "s"}  # one space: not named
            self.observer(self, Event(step, args, info))

    @staticmethod
    def _require(reason: str | None) -> None:
        if reason is not None:
            raise NotEnabled(reason)

    def resync(self, drainer: int, table: GuestPageTable, page: int) -> None:
        """Re-read the guest PTE into every cached shadow of ``table`` that maps ``page``."""
        guest = table[page]
        for vcpu in self.vcpus:
            if self.bugs.drain_local_only and vcpu.index != drainer:
                continue  # BUG drain-local-only: other VCPUs' shadows are left stale
            if self.bugs.resync_running_only and vcpu.cr3 != table.root:
                continue  # BUG resync-running-only: cached shadows of other VCPUs are left stale
            if self.bugs.skip_resync_vcpu == vcpu.index:
                continue  # test-only fault injection
            shadow = vcpu.shadow_of(table)
            if shadow is not None and shadow[page] != 0:
                shadow[page] = guest

    def resync_now(self, table: GuestPageTable, page: int) -> None:
        """A write to a table the writer does not run: resync every cached shadow at once."""
        guest = table[page]
        for vcpu in self.vcpus:
            shadow = vcpu.shadow_of(table)
            if shadow is not None and shadow[page] != 0:
                shadow[page] = guest

    # ---- hooks a user's ENGINE may override (with resync and post_ipis) ---------------------
    def defers(self, i: int, table: GuestPageTable) -> bool:
        """Is a write by i to ``table`` deferred (queued), rather than resynced at once?"""
        if self.bugs.defer_non_current:
            return True  # BUG defer-non-current: every write is queued, whatever table i runs
        return table.root == self.vcpus[i].cr3

    def handler_drains(self, k: int) -> bool:
        """Does k's shootdown IPI handler drain k's queue before it acks?"""
        return not self.bugs.remote_no_drain  # BUG remote-no-drain: the handler skips the drain

    def invlpg_drains(self, i: int) -> bool:
        """Does i's invlpg drain i's queue before it drops the TLB entry?"""
        return True

    def reload_drains(self, i: int) -> bool:
        """Does i's running CR3 load (reload or switch) drain i's queue before it flushes?"""
        me = self.vcpus[i]
        if self.bugs.switch_no_drain and me.op_root != me.cr3:
            return False  # BUG switch-no-drain: a switch to another table flushes without draining
        return not self.bugs.reload_no_drain  # BUG reload-no-drain: flush without draining

    def flushes_locally(self, i: int) -> bool:
        """Does i's running shootdown flush i's own TLB (is it of the table i runs)?"""
        me = self.vcpus[i]
        return me.op_root == me.cr3

    def _drain_one(self, i: int) -> Notice:
        root, page = self.vcpus[i].queue.pop()
        self.resync(i, self.table(root), page)
        return root, page

    def post_ipis(self, i: int, root: int, page: int) -> int:
        """Post i's shootdown IPI (table, page) to every other VCPU; how many were sent."""
        me = self.vcpus[i]
        for other in self.vcpus:
            if other.index != i:
                other.mailbox[i] = (root, page)
                me.acks_pending[other.index] = True
        return len(self.vcpus) - 1

    # ---- preconditions -------------------------------------------------------------------
    def _idle(self, i: int) -> str | None:
        mode = self.vcpus[i].mode
        return None if mode is Mode.IDLE else f"VCPU {i} is {mode.value}, not Idle"

    def _args(self, step: str, args: dict[str, int]) -> dict[str, int]:
        """``args`` with the space named (0 where one space leaves it out)."""
        if "s" not in args and "s" in STEP_PARAMS.get(step, ()):
            return {**args, "s": 0}
        return args

    def steps(self) -> dict[str, tuple[str, ...]]:
        """The steps this engine takes, with their parameter names in the model's vocabulary: the
        protocol's (:data:`STEP_PARAMS`) and those a subclass adds (:func:`added_steps`)."""
        return {**STEP_PARAMS, **added_steps(type(self))}

    def why_not(self, step: str, args: dict[str, int]) -> str | None:
        """None when ``step(args)`` can run now, else why not (caller holds the lock or is alone)."""
        if step not in STEP_PARAMS:
            added = added_steps(type(self)).get(step)
            if added is None:
                return f"no step {step!r}"
            return self._why_not_added(step, added, args)
        args = self._args(step, args)
        v = self.vcpus
        if step in ("write", "invlpg", "shootdown", "reload_cr3"):
            return self._idle(args["i"])
        if step == "switch_cr3":
            me = v[args["i"]]
            if self.tables[args["s"]].root == me.cr3:
                return f"VCPU {me.index} already runs space {args['s']}"
            return self._idle(args["i"])
        if step == "fill":
            me, p = v[args["i"]], args["p"]
            if me.tlb[p] != 0:
                return "TLB hit"
            return None if me.shadow[p] != 0 else "no shadow entry to walk"
        if step == "shadow_fault":
            me, p = v[args["i"]], args["p"]
            if me.tlb[p] != 0 or me.shadow[p] != 0:
                return "no fault: the walk finds an entry"
            if self.table(me.cr3)[p] == 0:
                return "guest PTE not present"
            return self._idle(args["i"])
        if step == "drain_one":
            me = v[args["i"]]
            if me.mode not in FLUSHING:
                return f"VCPU {me.index} is {me.mode.value}, not flushing"
            return "queue empty" if me.queue.empty() else None
        if step == "finish_invlpg":
            me = v[args["i"]]
            if me.mode is not Mode.INV:
                return "not in invlpg"
            if not self.invlpg_drains(me.index):
                return None  # a user's ENGINE whose invlpg flushes without draining first
            return None if me.queue.empty() else "queue not drained"
        if step == "finish_reload":
            me = v[args["i"]]
            if me.mode is not Mode.RELOAD:
                return "not in a CR3 load"
            if not self.reload_drains(me.index):
                return None  # BUG reload-no-drain / switch-no-drain: flushes without draining first
            return None if me.queue.empty() else "queue not drained"
        if step == "send_ipis":
            me = v[args["i"]]
            if me.mode is not Mode.SD:
                return "not starting a shootdown"
            if not self.flushes_locally(me.index):
                return None  # no local flush, so no local drain to wait for
            return None if me.queue.empty() else "queue not drained"
        if step == "shootdown_done":
            me = v[args["i"]]
            if me.mode is not Mode.SDWAIT:
                return "not waiting for acks"
            return "acks pending" if any(me.acks_pending) else None
        if step == "take_ipi":
            me, i = v[args["k"]], args["i"]
            if me.mailbox[i] is None:
                return f"no IPI from {i} pending"
            if me.mode is Mode.IDLE:
                return None
            if me.mode is Mode.SDWAIT and not self.bugs.wait_irqs_off:
                return None  # the wait loop runs with interrupts on (BUG wait-irqs-off: off)
            return f"interrupts off ({me.mode.value})"
        if step == "ack_ipi":
            me = v[args["k"]]
            if me.mode is not Mode.IPI:
                return "not handling an IPI"
            if not self.handler_drains(me.index):
                return None  # BUG remote-no-drain: acks with notices still queued
            return None if me.queue.empty() else "queue not drained"
        raise AssertionError(step)  # pragma: no cover

    def can(self, step: str, args: dict[str, int]) -> bool:
        return self.why_not(step, args) is None

    # ---- the atomic steps ----------------------------------------------------------------
    def write(self, i: int, s: int, p: int, f: int) -> None:
        """The guest writes PTE p := f of process s's table and notifies the hypervisor."""
        with self.lock:
            self._require(self._idle(i))
            table = self.tables[s]
            drained = 0
            if self.defers(i, table):
                ring = self.vcpus[i].queue
                keep_notice = True
                if ring.full():
                    if self.bugs.overflow_drop:
                        keep_notice = False  # BUG overflow-drop: the notice is lost
                    else:
                        while not ring.empty():  # overflow: drain the whole ring first
                            self._drain_one(i)
                            drained += 1
                table[p] = f
                if keep_notice:
                    ring.push((table.root, p))
            else:  # a table i does not run: no flush on i would drain a notice, so resync now
                table[p] = f
                self.resync_now(table, p)
            self._emit("write", {"i": i, "s": s, "p": p, "f": f}, drained=drained)

    def fill(self, i: int, p: int) -> None:
        """Hardware walk of the shadow on a TLB miss."""
        with self.lock:
            self._require(self.why_not("fill", {"i": i, "p": p}))
            me = self.vcpus[i]
            me.tlb[p] = me.shadow[p]
            self._emit("fill", {"i": i, "p": p})

    def shadow_fault(self, i: int, p: int) -> None:
        """A walk that misses the shadow exits to the hypervisor, which maps the guest PTE."""
        with self.lock:
            self._require(self.why_not("shadow_fault", {"i": i, "p": p}))
            me = self.vcpus[i]
            guest = self.table(me.cr3)[p]
            me.shadow[p] = guest
            me.tlb[p] = guest
            self._emit("shadow_fault", {"i": i, "p": p})

    def access(self, i: int, p: int) -> str | None:
        """A guest access to page p: TLB hit, fill, shadow fault or guest fault, in one step.

        Returns the step taken ("fill" or "shadow_fault"), or None (hit / not present /
        a shadow miss outside guest mode, which waits for the VCPU to return to the guest).
        """
        with self.lock:
            me = self.vcpus[i]
            if me.tlb[p] != 0:
                return None
            shadow = me.shadow
            if shadow[p] != 0:
                me.tlb[p] = shadow[p]
                self._emit("fill", {"i": i, "p": p})
                return "fill"
            guest = self.table(me.cr3)[p]
            if guest != 0 and me.mode is Mode.IDLE:
                shadow[p] = guest
                me.tlb[p] = guest
                self._emit("shadow_fault", {"i": i, "p": p})
                return "shadow_fault"
            return None

    def invlpg(self, i: int, p: int) -> None:
        with self.lock:
            self._require(self._idle(i))
            me = self.vcpus[i]
            me.mode, me.op_page = Mode.INV, p
            self._emit("invlpg", {"i": i, "p": p})

    def shootdown(self, i: int, s: int, p: int) -> None:
        """Start a TLB shootdown of page p of process s's table (whichever table i runs)."""
        with self.lock:
            self._require(self._idle(i))
            me = self.vcpus[i]
            root = self.tables[s].root
            me.mode, me.op_page, me.op_root = Mode.SD, p, root
            sent = 0
            if self.bugs.ipi_before_drain:
                sent = self.post_ipis(i, root, p)  # BUG ipi-before-drain: IPIs out before the drain
            self._emit("shootdown", {"i": i, "s": s, "p": p}, ipis=sent)

    def reload_cr3(self, i: int) -> None:
        """Start a CR3 load of the table i runs (a reload)."""
        with self.lock:
            self._require(self._idle(i))
            me = self.vcpus[i]
            me.mode, me.op_root = Mode.RELOAD, me.cr3
            self._emit("reload_cr3", {"i": i})

    def switch_cr3(self, i: int, s: int) -> None:
        """Start a CR3 load of another process's table (a process switch)."""
        with self.lock:
            self._require(self.why_not("switch_cr3", {"i": i, "s": s}))
            me = self.vcpus[i]
            me.mode, me.op_root = Mode.RELOAD, self.tables[s].root
            self._emit("switch_cr3", {"i": i, "s": s})

    def drain_one(self, i: int) -> bool:
        """Drain one notice while flushing; False (no step) when the ring is empty."""
        with self.lock:
            reason = self.why_not("drain_one", {"i": i})
            if reason == "queue empty":
                return False
            self._require(reason)
            root, page = self._drain_one(i)
            self._emit("drain_one", {"i": i}, root=root, page=page)
            return True

    def finish_invlpg(self, i: int) -> None:
        with self.lock:
            self._require(self.why_not("finish_invlpg", {"i": i}))
            me = self.vcpus[i]
            page = me.op_page
            assert page is not None
            if not self.bugs.keep_tlb_on_invlpg:  # test-only fault injection
                me.tlb[page] = 0
            me.mode, me.op_page = Mode.IDLE, None
            self._emit("finish_invlpg", {"i": i}, page=page)

    def finish_reload(self, i: int) -> None:
        """Load CR3 (the target table) and flush the whole TLB."""
        with self.lock:
            self._require(self.why_not("finish_reload", {"i": i}))
            me = self.vcpus[i]
            assert me.op_root is not None
            me.cr3 = me.op_root
            me.tlb.flush_all()
            me.mode, me.op_root = Mode.IDLE, None
            self._emit("finish_reload", {"i": i})

    def send_ipis(self, i: int) -> None:
        with self.lock:
            self._require(self.why_not("send_ipis", {"i": i}))
            me = self.vcpus[i]
            page, root = me.op_page, me.op_root
            assert page is not None and root is not None
            if self.flushes_locally(i):
                me.tlb[page] = 0  # otherwise the TLB holds another table's translations
            sent = 0
            if not self.bugs.ipi_before_drain:
                sent = self.post_ipis(i, root, page)
            me.mode = Mode.SDWAIT
            self._emit("send_ipis", {"i": i}, page=page, ipis=sent)

    def shootdown_done(self, i: int) -> bool:
        """Complete the shootdown if every ack is in; False (no step) otherwise."""
        with self.lock:
            reason = self.why_not("shootdown_done", {"i": i})
            if reason == "acks pending":
                return False
            self._require(reason)
            me = self.vcpus[i]
            page = me.op_page
            me.mode, me.op_page, me.op_root = Mode.IDLE, None, None
            self._emit("shootdown_done", {"i": i}, page=page)
            return True

    def take_ipi(self, k: int, i: int) -> None:
        with self.lock:
            self._require(self.why_not("take_ipi", {"k": k, "i": i}))
            self._take_ipi(k, i)

    def _take_ipi(self, k: int, i: int) -> None:
        me = self.vcpus[k]
        notice = me.mailbox[i]
        assert notice is not None
        me.mailbox[i] = None
        me.interrupted, me.handling, me.mode = me.mode, (i, *notice), Mode.IPI
        self._emit("take_ipi", {"k": k, "i": i}, page=notice[1])

    def take_next_ipi(self, k: int, start: int = 0) -> int | None:
        """Take a pending IPI if interrupts are on (searching from initiator ``start``)."""
        with self.lock:
            n = self.bounds.vcpus
            for off in range(n):
                i = (start + off) % n
                if self.why_not("take_ipi", {"k": k, "i": i}) is None:
                    self._take_ipi(k, i)
                    return i
            return None

    def ack_ipi(self, k: int) -> None:
        with self.lock:
            self._require(self.why_not("ack_ipi", {"k": k}))
            me = self.vcpus[k]
            assert me.handling is not None and me.interrupted is not None
            initiator, root, page = me.handling
            if root == me.cr3:
                me.tlb[page] = 0  # otherwise k runs another table: nothing of it in the TLB
            self.vcpus[initiator].acks_pending[k] = False
            me.mode, me.interrupted, me.handling = me.interrupted, None, None
            self._emit("ack_ipi", {"k": k}, initiator=initiator, page=page)

    # ---- single-stepping -----------------------------------------------------------------
    def _why_not_added(self, step: str, params: tuple[str, ...], args: dict[str, int]) -> str | None:
        """A step a subclass adds has no precondition written here: it is enabled where a copy of
        this engine takes it without raising :class:`NotEnabled` (the subclass's own refusal)."""
        if sorted(params) != sorted(args):
            return f"no step {step}({', '.join(sorted(args))})"
        trial = self.copy()
        try:
            getattr(trial, step)(*(args[name] for name in params))
        except NotEnabled as exc:
            return str(exc) or f"{step} is not enabled"
        return None

    def execute(self, step: str, args: dict[str, int]) -> None:
        """Run one named step (the driver picks it); NotEnabled if it cannot run now."""
        params = self.steps().get(step)
        args = self._args(step, args)
        if params is None or sorted(params) != sorted(args):
            raise NotEnabled(f"no step {step}({', '.join(sorted(args))})")
        if step == "drain_one":
            with self.lock:
                self._require(self.why_not("drain_one", args))
            self.drain_one(args["i"])
        elif step == "shootdown_done":
            with self.lock:
                self._require(self.why_not("shootdown_done", args))
            self.shootdown_done(args["i"])
        else:
            getattr(self, step)(*(args[name] for name in params))

    def copy(self, observer: Observer | None = None) -> "Hypervisor":
        """An independent copy (for single-stepping searches); no thread may be running."""
        other = type(self)(self.bounds, self.bugs, observer)
        other.tables = [t.copy() for t in self.tables]
        other.vcpus = [v.copy() for v in self.vcpus]
        for name, value in vars(self).items():  # a subclass's own fields (a user's ENGINE), by value
            if name not in _OWN_FIELDS:
                setattr(other, name, copying.deepcopy(value))
        return other


#: The fields :class:`Hypervisor` itself keeps (copied by :meth:`Hypervisor.copy` one by one).
_OWN_FIELDS = frozenset({"bounds", "bugs", "observer", "lock", "spaces", "tables", "vcpus"})


@functools.lru_cache(maxsize=None)
def added_steps(cls: type) -> dict[str, tuple[str, ...]]:
    """The steps a subclass of :class:`Hypervisor` (a user's ENGINE) adds for steps its variant adds:
    its public methods that :class:`Hypervisor` does not have, each named like the model's step and
    taking its parameters by the model's names (``def lose_ipi(self, k, i)``), raising
    :class:`NotEnabled` where the step cannot run. Empty for the stock hypervisor."""
    out: dict[str, tuple[str, ...]] = {}
    for name in dir(cls):
        fn = getattr(cls, name, None)
        if name.startswith("_") or hasattr(Hypervisor, name) or not inspect.isfunction(fn):
            continue
        out[name] = tuple(list(inspect.signature(fn).parameters)[1:])
    return out


#: What selects an engine: a published variant's bugs (on the stock hypervisor) or a
#: user's ENGINE class (a subclass of :class:`Hypervisor`, see README "Your own variant").
EngineSpec = Bugs | type[Hypervisor]


def build_engine(spec: EngineSpec, bounds: Bounds) -> Hypervisor:
    """A fresh hypervisor for ``spec`` at ``bounds``."""
    if isinstance(spec, Bugs):
        return Hypervisor(bounds, spec)
    return spec(bounds)
