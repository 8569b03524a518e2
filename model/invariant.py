"""The reference protocol's inductive invariant, as named lemmas over all VCPUs and pages.

Each lemma is stated once, as a function ``fn(s, *args)`` in the StepContext notation
(so it evaluates on concrete states, numpy batches and Z3 terms alike), and holds for
every combination of its parameters (VCPUs ``i``/``k``, pages ``p``) at any bounds.
Their conjunction is inductive for the reference: it holds initially, every step
preserves it, and it implies ``no_stale_translation`` (the last lemma is that property).
``deferral prove --method induction`` checks exactly that with Z3.

The argument in words: a write queues its notice in the writer's own queue, so a shadow
entry that differs from the guest PTE always has the latest write's notice pending in
the last writer's queue (stale shadow lemma); ``req`` is only ever set once that notice
is gone (req lemma), so shadow entries are current wherever ``req`` holds, and TLB
fills copy those current entries. A covering shootdown sets ``req`` at each VCPU as it
acks (acked lemma), which needs the IPI bookkeeping lemmas to know whose page the ack
flushes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from deferral.model.context import StepContext
from deferral.model.reference import NOTICE, PC, in_shootdown, no_stale_translation
from deferral.model.schema import PAGE, SPACE, VCPU, Domain, Sort


@dataclass(frozen=True)
class Lemma:
    """``fn(s, *params)`` holds in every reachable state, for every parameter combination."""

    name: str
    params: tuple[tuple[str, Domain], ...]
    fn: Callable[..., Any]
    #: the name as read with the space index written out (``shadow[k][t][p]``), shown where a sort
    #: the name elides has more than one element (``name`` stays the lemma's identity: lemma files use it)
    spaced: str = field(default="", kw_only=True)

    def show(self, b: Any = None) -> str:
        """``for all k, p: name``; parameters of an elided sort with one element at ``b`` left out."""
        if self.name.startswith("for all "):  # a learned family names its own variables
            return self.name
        names = ", ".join(n for n, hide in zip((n for n, _ in self.params), self.elided(b)) if not hide)
        return f"for all {names}: {self.text(b)}" if names else self.text(b)

    def elided(self, b: Any = None) -> tuple[bool, ...]:
        """Which parameters are not shown at ``b``: those of an elided sort with one element there."""
        return tuple(b is not None and isinstance(d, Sort) and d.single(b) for _, d in self.params)

    def text(self, b: Any = None) -> str:
        """The lemma as read at bounds ``b``: ``spaced`` where there is more than one space, else ``name``."""
        return self.spaced if self.spaced and b is not None and not any(self.elided(b)) and _spaces(b) > 1 \
            else self.name


def _spaces(b: Any) -> int:
    """How many address spaces bounds ``b`` have (1 when they do not say)."""
    try:
        return int(b.get("spaces", 1))
    except AttributeError:
        return 1


def after_send(s: StepContext, i: Any) -> Any:
    """i has sent its shootdown IPIs and waits (possibly while handling another's IPI)."""
    return (s.pc[i] == PC.SdWait) | ((s.pc[i] == PC.Ipi) & s.waitret[i])


def queued(s: StepContext, j: Any, t: Any, p: Any) -> Any:
    """A notice (t, p) (page p of space t) is pending in VCPU j's queue."""
    q = s.queue[j]
    notice = NOTICE.make(s, t, p)
    return s.any((q.length > pos) & (q[pos] == notice) for pos in range(q.capacity))


def last_writer_has(s: StepContext, t: Any, p: Any, pending: bool) -> Any:
    """(t, p) has a last writer, and its queue holds (``pending``) / does not hold its notice."""
    return s.any((s.lw[t][p] == j) & (queued(s, j, t, p) if pending else s.not_(queued(s, j, t, p)))
                 for j in s.each(VCPU))


def _queue_normal(s: StepContext, i: int) -> Any:
    q = s.queue[i]
    return s.all((q.length > pos) | (q[pos] == 0) for pos in range(q.capacity))


def _queue_current_space(s: StepContext, i: int) -> Any:
    q = s.queue[i]
    return s.all((q.length <= pos) | (NOTICE.first_of(s, q[pos]) == s.cr3[i]) for pos in range(q.capacity))


def _cur_iff_ipi(s: StepContext, k: int) -> Any:
    return (s.pc[k] == PC.Ipi) == (s.cur[k] < s.N)


def _waitret_in_ipi(s: StepContext, k: int) -> Any:
    return s.not_(s.waitret[k]) | (s.pc[k] == PC.Ipi)


def _no_self_ipi(s: StepContext, i: int) -> Any:
    return s.not_(s.ipi[i][i]) & s.not_(s.waiting[i][i])


def _pending_ipi_awaited(s: StepContext, k: int, i: int) -> Any:
    return s.not_(s.ipi[k][i]) | s.waiting[i][k]


def _handled_ipi_awaited(s: StepContext, k: int, i: int) -> Any:
    handling = (s.pc[k] == PC.Ipi) & (s.cur[k] == i)
    return s.not_(handling) | (s.waiting[i][k] & s.not_(s.ipi[k][i]))


def _waits_after_send(s: StepContext, i: int, k: int) -> Any:
    return s.not_(s.waiting[i][k]) | after_send(s, i)


def _covers_own_write(s: StepContext, i: int) -> Any:
    return s.not_(s.covers[i]) | (in_shootdown(s, i) & (s.lw[s.sp[i]][s.pg[i]] == i))


def _covered_page_drained(s: StepContext, i: int) -> Any:
    return s.not_(s.covers[i] & after_send(s, i)) | s.not_(queued(s, i, s.sp[i], s.pg[i]))


def _acked_required(s: StepContext, i: int, k: int) -> Any:
    acked = s.covers[i] & after_send(s, i) & s.not_(s.waiting[i][k])
    return s.not_(acked) | s.req[k][s.sp[i]][s.pg[i]]


def _stale_shadow_pending(s: StepContext, k: int, t: int, p: int) -> Any:
    fresh = (s.shadow[k][t][p] == 0) | (s.shadow[k][t][p] == s.gpt[t][p])
    return fresh | last_writer_has(s, t, p, pending=True)


def _req_after_notice(s: StepContext, k: int, t: int, p: int) -> Any:
    return s.not_(s.req[k][t][p]) | last_writer_has(s, t, p, pending=False)


I, K, T, P = ("i", VCPU), ("k", VCPU), ("t", SPACE), ("p", PAGE)

#: The shipped invariant of the reference, weakest-first; the last lemma is the property.
#: "page p" is page p of space t wherever a lemma has t (at one space, t is always 0).
INVARIANT: tuple[Lemma, ...] = (
    Lemma("queue slots past the length are 0", (I,), _queue_normal),
    Lemma("cur[k] names a VCPU exactly when pc[k] is Ipi", (K,), _cur_iff_ipi),
    Lemma("waitret[k] implies pc[k] is Ipi", (K,), _waitret_in_ipi),
    Lemma("no VCPU has an IPI from itself pending or waits for itself", (I,), _no_self_ipi),
    Lemma("ipi[k][i] pending implies waiting[i][k]", (K, I), _pending_ipi_awaited),
    Lemma("k handling i's IPI implies waiting[i][k] and no second IPI from i pending at k", (K, I),
          _handled_ipi_awaited),
    Lemma("waiting[i][k] implies i has sent its IPIs (SdWait, or Ipi with waitret)", (I, K), _waits_after_send),
    Lemma("covers[i] implies i runs a shootdown of a page i wrote last", (I,), _covers_own_write),
    Lemma("covers[i] after sending implies pg[i] has no notice in i's queue", (I,), _covered_page_drained,
          spaced="covers[i] after sending implies (sp[i], pg[i]) has no notice in i's queue"),
    Lemma("covers[i] after sending and k acked (not waiting[i][k]) implies req[k][pg[i]]", (I, K),
          _acked_required, spaced="covers[i] after sending and k acked (not waiting[i][k]) implies req[k][sp[i]][pg[i]]"),
    Lemma("shadow[k][p] not 0 and not gpt[p] implies the last writer of p has p queued", (K, T, P),
          _stale_shadow_pending,
          spaced="shadow[k][t][p] not 0 and not gpt[t][p] implies the last writer of (t, p) has it queued"),
    Lemma("req[k][p] implies p has a last writer and its queue holds no notice of p", (K, T, P),
          _req_after_notice, spaced="req[k][t][p] implies (t, p) has a last writer and its queue holds no notice of it"),
    Lemma("req[k][p] implies tlb[k][p] and shadow[k][p] are 0 or gpt[p] (no_stale_translation)", (K, T, P),
          no_stale_translation, spaced="req[k][t][p] and cr3[k] = t imply tlb[k][p] and shadow[k][t][p] are 0 or "
          "gpt[t][p] (no_stale_translation)"),
)

#: With more than one space, notices in a queue are of the space its VCPU runs (a write to
#: another space is not queued, and CR3 changes only once the queue is drained).
SPACES_LEMMAS: tuple[Lemma, ...] = (
    Lemma("every notice in queue[i] is of the space i runs (cr3[i])", (I,), _queue_current_space),
)


def invariant_for(b: Any) -> tuple[Lemma, ...]:
    """The shipped invariant at bounds ``b``: with the spaces lemma when there is more than one space."""
    if b.get("spaces", 1) > 1:
        return INVARIANT[:1] + SPACES_LEMMAS + INVARIANT[1:]
    return INVARIANT


def lemma(name: str, lemmas: tuple[Lemma, ...] = INVARIANT) -> Lemma:
    for item in lemmas:
        if item.name == name:
            return item
    raise KeyError(name)


def without(names: list[str] | tuple[str, ...], lemmas: tuple[Lemma, ...] = INVARIANT) -> tuple[Lemma, ...]:
    """The invariant with the named lemmas dropped (a weakened invariant)."""
    missing = [n for n in names if n not in {x.name for x in lemmas}]
    if missing:
        raise KeyError(f"no such lemma(s): {missing}")
    return tuple(x for x in lemmas if x.name not in names)
