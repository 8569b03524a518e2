"""The trace corpus: curated deferral-trace/1 files that state their expected outcome.

The corpus (``traces/corpus/*.json``, shipped as package data) holds

* every published variant's shortest counterexample at the PROTOCOL.md bounds
  (``cex-<variant>.json``, expected ``violates`` its property), and
* interleavings of the reference worth keeping (``ref-<event>.json``, expected
  ``passes``): the shortest run in which the event happens and every VCPU is back
  to Idle afterwards. They are found by search, not written by hand: the reference is
  derived into an *observer* protocol with one ghost flag ``seen`` that the relevant
  step sets when the event happens, the observer is enumerated breadth-first
  (:func:`deferral.checks.compare.behaviours.reachable`), and the first state with ``seen`` set
  and every VCPU Idle gives the shortest such run, replayed on the reference itself.

Regenerate with ``python -m deferral.traces.corpus --regenerate`` (each file written
atomically); ``--check`` regenerates in memory and exits 1 if a committed file differs.

:func:`judge` replays a corpus trace against any protocol and says what happens there:
``violates`` (which properties), ``passes``, or ``cannot-replay`` (a step the protocol
does not have, arguments outside its bounds, a step not enabled where the trace takes it).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

from deferral.checks.explicit.reachable import reachable
from deferral.checks.explicit.search import search
from deferral.model.bounds import Bounds, BoundsError
from deferral.model.concrete import Model, State
from deferral.model.context import OneSpaceError, StepContext
from deferral.model.protocol import Protocol
from deferral.model.reference import IDLE, IPI, PC, REFERENCE, SDWAIT, in_shootdown
from deferral.model.schema import BOOL, VCPU, Var
from deferral.model.variants import PUBLISHED
from deferral.traces.format import Trace, TraceError, TraceStep, load
from deferral.traces.replay import path_to_trace, replay

#: Where the curated corpus lives (installed as package data).
CORPUS_DIR = Path(__file__).resolve().parent / "corpus"

#: PROTOCOL.md's bounds and shortest counterexample lengths for the published variants.
PUBLISHED_CEX: dict[str, tuple[Bounds, str, int | None]] = {
    "drain-local-only": (Bounds(2, 1, 1, 1), "no_stale_translation", 8),
    "ipi-before-drain": (Bounds(2, 1, 1, 1), "no_stale_translation", 6),
    "remote-no-drain": (Bounds(2, 1, 1, 1), "no_stale_translation", 7),
    "reload-no-drain": (Bounds(2, 1, 1, 1), "no_stale_translation", 5),
    "wait-irqs-off": (Bounds(2, 1, 1, 1), "shootdowns_can_complete", None),  # length not in PROTOCOL.md
    "overflow-drop": (Bounds(2, 2, 1, 1), "no_stale_translation", 7),
    # address spaces: PROTOCOL.md's lengths at N=2,S=2 (switch-no-drain: 7 at N=1 as well)
    "defer-non-current": (Bounds(2, 1, 1, 1, 2), "no_stale_translation", 9),
    "switch-no-drain": (Bounds(1, 1, 1, 1, 2), "no_stale_translation", 7),
    "resync-running-only": (Bounds(2, 1, 1, 1, 2), "no_stale_translation", 12),
}


# ---- judging a trace under some protocol -----------------------------------------------
@dataclass
class Judgement:
    """What a trace does under one protocol."""

    outcome: str  # violates | passes | cannot-replay
    properties: list[str] = field(default_factory=list)  # the properties it violates there
    reason: str = ""  # why it cannot replay
    steps: int = 0  # steps replayed

    def matches(self, expected: dict[str, Any] | None) -> bool:
        """Is this the outcome ``expected`` declares (None: nothing declared, always true)?"""
        if expected is None:
            return True
        if self.outcome != expected.get("outcome"):
            return False
        return self.outcome == "passes" or expected.get("property") in self.properties

    @property
    def brief_reason(self) -> str:
        """Why it cannot replay, without the state dump a step's error may carry (for tables)."""
        return self.reason.split("; state {")[0]

    def describe(self) -> str:
        if self.outcome == "violates":
            return "violates " + ", ".join(self.properties)
        if self.outcome == "cannot-replay":
            return f"cannot replay: {self.reason}"
        return "passes"


def steps_only(trace: Trace, protocol: Protocol | None = None) -> Trace:
    """The trace without its recorded states: only the step sequence is kept; with ``protocol``,
    also without the property it names where ``protocol`` has no such property (another
    protocol is judged on its own properties)."""
    kept = replace(trace, initial=None, steps=[TraceStep(s.step, dict(s.args)) for s in trace.steps])
    if protocol is None:
        return kept
    known = {p.name for p in protocol.properties}
    if kept.prop is not None and kept.prop not in known:
        kept = replace(kept, prop=None)
    if kept.expected is not None and kept.expected.get("property") not in (None, *known):
        kept = replace(kept, expected=None)
    return kept


def judge(trace: Trace, protocol: Protocol, *, strict: bool = False) -> Judgement:
    """Replay ``trace`` on ``protocol``: which invariants break, and the liveness it names.

    With ``strict`` the recorded states must match too (the trace's own variant); without
    it only the step sequence is replayed (another protocol may have other variables).
    Liveness is judged for the property the trace expects or names, when ``protocol``
    has it as a liveness property: violated when no goal state is reachable from the
    trace's last state.
    """
    try:
        report = replay(trace if strict else steps_only(trace, protocol), protocol)
    except (BoundsError, OneSpaceError) as exc:  # bounds it does not declare; one-space notation
        return Judgement("cannot-replay", reason=str(exc))
    if report.divergence is not None:
        return Judgement("cannot-replay", reason=report.divergence.describe(), steps=report.steps_replayed)
    violated = set(report.violated_properties)
    wanted = (trace.expected or {}).get("property") or trace.prop
    if report.liveness.get(wanted) is False:  # replay searched from the last state: no goal
        violated.add(wanted)
    if violated:
        return Judgement("violates", sorted(violated), steps=report.steps_replayed)
    return Judgement("passes", steps=report.steps_replayed)


# ---- the corpus on disk ----------------------------------------------------------------
@dataclass
class CorpusTrace:
    name: str  # file stem
    path: Path
    trace: Trace


def load_corpus(folder: str | Path | None = None) -> list[CorpusTrace]:
    """Every ``*.json`` trace of the corpus folder, by name; a bad file is a TraceError."""
    folder = CORPUS_DIR if folder is None else Path(folder)
    out = []
    for path in sorted(folder.glob("*.json")):
        trace = load(path)
        if trace.expected is None:
            raise TraceError(f"{path}: a corpus trace must state its expected outcome")
        out.append(CorpusTrace(path.stem, path, trace))
    return out


# ---- generating the corpus -------------------------------------------------------------
SEEN = Var("seen", BOOL, (), "observer: the event happened", ghost=True)


def _flag_then(step_name: str, event: Callable[..., Any]) -> Any:
    """The reference step ``step_name``, setting ``seen`` first where ``event`` holds."""
    original = REFERENCE.step(step_name)

    def effect(s: StepContext, *args: int) -> None:
        with s.when(event(s, *args)):
            s.seen = True
        original.effect(s, *args)

    return original.with_effect(effect)


def _others(s: StepContext, i: int, cond: Callable[[int], Any]) -> Any:
    return s.any(cond(k) for k in s.each(VCPU) if k != i)


#: name -> (bounds, step to observe, event over the step's pre-state and args, note)
EVENTS: dict[str, tuple[Bounds, str, Callable[..., Any], str]] = {
    "ipi-during-sdwait": (
        Bounds(2, 1, 1, 1), "take_ipi",
        lambda s, k, i: s.pc[k] == SDWAIT,
        "A VCPU waiting for its own shootdown's acks (SdWait) takes another VCPU's IPI, "
        "acks it and returns to SdWait; both shootdowns then complete."),
    "overflow-drain-during-shootdown": (
        Bounds(2, 1, 1, 1), "write",
        lambda s, i, sp, p, f: s.queue[i].full() & (sp == s.cr3[i]) & _others(
            s, i, lambda k: (s.pg[k] == p) & (s.sp[k] == sp) & in_shootdown(s, k) & (s.shadow[k][sp][p] != 0)),
        "A write into a full queue drains it (overflow), resyncing the shadow entry of another "
        "VCPU that runs a shootdown of the same page; every VCPU then returns to Idle."),
    "overlapping-shootdowns": (
        Bounds(2, 1, 1, 1), "send_ipis",
        lambda s, i: _others(s, i, lambda k: (s.pc[k] == SDWAIT) | ((s.pc[k] == IPI) & s.waitret[k])),
        "Two shootdowns overlap: a VCPU sends its IPIs while another VCPU's shootdown still "
        "waits for acks; both complete."),
    # address spaces (PROTOCOL.md, "Address spaces and CR3 reassignment"), at two spaces
    "write-other-space": (
        Bounds(1, 1, 1, 1, 2), "write",
        lambda s, i, sp, p, f: (sp != s.cr3[i]) & (s.shadow[i][sp][p] != 0) & (s.gpt[sp][p] != f),
        "A write to a space the writer does not run is not deferred: it is resynced at once, "
        "here in the writer's own cached shadow of that space, which would otherwise go stale."),
    "switch-drains": (
        Bounds(1, 1, 1, 1, 2), "drain_one",
        lambda s, i: (s.pc[i] == PC.Reload) & (s.sp[i] != s.cr3[i]),
        "A CR3 load that switches to another space drains the queue first (the seed's third "
        "drain point, cr3 reassignment), then flushes the TLB and runs the other space."),
    "shootdown-other-space": (
        Bounds(1, 1, 1, 1, 2), "send_ipis",
        lambda s, i: (s.sp[i] != s.cr3[i]) & s.not_(s.queue[i].empty()),
        "A shootdown of a space the initiator does not run sends its IPIs without draining "
        "the initiator's queue (its notices are of its own space) and without a local flush."),
}


def observer(event_name: str) -> Protocol:
    """The reference with a ghost flag ``seen`` set when the named event happens."""
    _, step_name, event, _ = EVENTS[event_name]
    return REFERENCE.derive(f"observe-{event_name}", add_variables=[SEEN],
                            replace_steps=[_flag_then(step_name, event)])


def interleaving(event_name: str) -> Trace:
    """The shortest reference run in which the event happens and every VCPU is Idle after."""
    bounds, _, _, note = EVENTS[event_name]
    watch = observer(event_name)
    reach = reachable(watch, bounds)
    layout = reach.model.layout
    seen = layout.slot("seen")
    pcs = [layout.slot("pc", (k,)) for k in range(bounds.vcpus)]
    hits = [n for n in range(len(reach)) if reach.rows[n, seen] and all(reach.rows[n, j] == IDLE for j in pcs)]
    if not hits:
        raise RuntimeError(f"{event_name}: no reachable run of the reference has this event")
    watched = reach.path_to(hits[0])
    model = Model(REFERENCE, bounds)
    path: list[tuple[Any, State]] = [(None, model.initial)]
    for action, _ in watched[1:]:
        assert action is not None
        mine = model.find_action(action.step.name, action.args)
        assert mine is not None
        nxt = model.apply(path[-1][1], mine)
        assert nxt is not None, "the observer and the reference disagree"
        path.append((mine, nxt))
    return path_to_trace(model, path, None, expected={"outcome": "passes"}, note=note)


def counterexample(variant: str) -> Trace:
    """The shortest counterexample of a published variant at its PROTOCOL.md bounds."""
    bounds, prop, length = PUBLISHED_CEX[variant]
    protocol = PUBLISHED[variant]
    result = search(protocol, bounds, symmetry=True)
    outcome = result.outcome(prop)
    if outcome.status != "violated" or outcome.path is None:
        raise RuntimeError(f"{variant} at {bounds.short()}: {prop} is {outcome.status}, expected a violation")
    if length is not None and outcome.length != length:
        raise RuntimeError(f"{variant}: shortest counterexample has {outcome.length} steps, "
                           f"PROTOCOL.md says {length}")
    note = f"{protocol.doc} Shortest counterexample ({outcome.length} steps) to {prop}."
    return path_to_trace(Model(protocol, bounds), outcome.path, prop,
                         expected={"outcome": "violates", "property": prop}, note=note)


def generate() -> dict[str, Trace]:
    """The whole corpus, by file name."""
    out: dict[str, Trace] = {}
    for variant in PUBLISHED_CEX:
        out[f"cex-{variant}.json"] = counterexample(variant)
    for event in EVENTS:
        out[f"ref-{event}.json"] = interleaving(event)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deferral.traces.corpus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--regenerate", action="store_true", help="write the corpus files")
    mode.add_argument("--check", action="store_true", help="exit 1 if a committed file differs")
    parser.add_argument("--out", default=str(CORPUS_DIR), help=f"corpus folder (default {CORPUS_DIR})")
    args = parser.parse_args(argv)
    folder = Path(args.out)
    corpus = generate()
    if args.regenerate:
        for name, trace in corpus.items():
            trace.save(folder / name)  # atomic per file
            print(f"wrote {folder / name}: {len(trace.steps)} steps, expected {trace.expected}")
        return 0
    stale = [name for name, trace in corpus.items()
             if not (folder / name).is_file() or (folder / name).read_text(encoding="utf-8") != trace.dumps()]
    for name in stale:
        print(f"differs: {folder / name}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
