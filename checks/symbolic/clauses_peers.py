"""The learners' exchange of Houdini fixpoints: what one spawned learner's first stage (and each draw of it) kept
goes to the others, which learn the same at once under their own seeds, so that each can start the next stage from
the union of them all.

Why: the stage at 3,2,2 seldom settles from the fixpoint of one first stage at 2,1,1, and mostly does from the
union of two or three drawn under other Z3 seeds (PROVE.md, 6 Dec, afternoon). One learner drew them one after
another (each 2-20 s) while the other drew its own for itself; exchanged, two learners have two fixpoints in the
time of one.

Two learners also learn their first stage at different instances (2,1,1 and 3,1,1, :func:`clauses.first_stage`):
from a 3,1,1 fixpoint the stage at 3,2,2 settles in one round, but 3,1,1 itself takes many rounds for some variants
where 2,1,1 takes few; exchanged, each learner's next stage starts from both where the other's came in time.

When: each learner sends its first stage's fixpoint as soon as it has it, tries the next stage from its own
fixpoint first (as a lone learner does), and takes the peers' (learned meanwhile) before it draws a first stage
again itself; each draw's fixpoint is sent and the peers' of that draw taken after it (:func:`clauses._from_draws`).

The links are sockets between the learners' processes (:class:`clauses_process.Team` makes them and hands each
learner its ends), read by a thread each, so that a learner still at work never holds up one that sends. A
fixpoint travels as :func:`clauses.entry` documents, rebuilt from the receiver's own vocabulary (every learner
samples and enumerates the same); a family that is not an enumerated clause is not sent. The same links carry each
learner's share of the enumeration (:meth:`PeerLinks.share`, :meth:`PeerLinks.gather`:
:mod:`~deferral.checks.symbolic.clauses_split`). Nothing here decides anything: the families only go to Houdini and
induction.
"""

from __future__ import annotations

import socket
import threading
import time
from multiprocessing.connection import Connection
from typing import Any, Callable, Sequence

from deferral.checks.symbolic import clauses
from deferral.checks.symbolic.clauses import Enumerated
from deferral.checks.symbolic.clauses_split import shared_signatures
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol


class PeerLinks:
    """A :class:`clauses.Peers`: one learner's links to the others (``conns``: a connection per peer, by the peer's
    seed); one job at a time (:meth:`begin`, :meth:`end`): what comes for another job is dropped."""

    def __init__(self, protocol: Protocol, conns: dict[int, Connection], seed: int = 0) -> None:
        self.protocol, self.conns = protocol, dict(sorted(conns.items()))
        self.rank = sum(peer < seed for peer in self.conns)  # this learner's place, by seed (:class:`clauses.Peers`)
        self.count = len(self.conns) + 1
        self.job = 0
        self._lock = threading.Condition()
        self._inbox: dict[tuple[int, int, str], list[Any]] = {}  # (job, peer, tag) -> the peer's documents
        self._ended: set[tuple[int, int]] = set()  # (job, peer): the peer has ended that job
        self._gone: set[int] = set()  # peers whose link has closed
        self._vocab: dict[Any, Any] = {}  # from_entries' vocabularies, built once
        self._readers = [threading.Thread(target=self._read, args=(peer, conn), daemon=True, name=f"peer {peer}")
                         for peer, conn in self.conns.items()]
        for reader in self._readers:
            reader.start()

    def _read(self, peer: int, conn: Connection) -> None:
        """A peer's messages, as they come, into the inbox (until its link closes)."""
        while True:
            try:
                kind, job, *rest = conn.recv()
            except Exception:  # noqa: BLE001 - closed, or not a message of this module's: that peer is gone
                with self._lock:
                    self._gone.add(peer)
                    self._lock.notify_all()
                return
            with self._lock:
                if kind in ("fixpoint", "data"):
                    tag, docs = rest
                    self._inbox[(job, peer, tag)] = docs
                elif kind == "ended":
                    self._ended.add((job, peer))
                self._lock.notify_all()

    def begin(self, job: int) -> None:
        """A new job: what is left of the last one is dropped."""
        with self._lock:
            self.job = job
            self._inbox = {k: v for k, v in self._inbox.items() if k[0] >= job}
            self._ended = {k for k in self._ended if k[0] >= job}

    def end(self) -> None:
        """This learner has ended its job: no peer waits for it any longer."""
        self._send(("ended", self.job))

    def _send(self, message: Any) -> None:
        for peer, conn in self.conns.items():
            if peer in self._gone:
                continue
            try:
                conn.send(message)
            except (OSError, ValueError):
                with self._lock:
                    self._gone.add(peer)

    def signatures(self, protocol: Protocol, every: Sequence[Any], samples: Sequence[Any], tables: Any,
                   deadline: float | None, note: Callable[[str], None] | None) -> list[Any]:
        """:meth:`clauses.Peers.signatures`: :func:`clauses_split.shared_signatures` over these links."""
        return shared_signatures(protocol, every, samples, tables, self, deadline, note)

    def share(self, tag: str, payload: Any) -> None:
        """:meth:`clauses_split.Exchange.share`."""
        self._send(("data", self.job, tag, payload))

    def gather(self, tag: str, until: float) -> dict[int, Any]:
        """:meth:`clauses_split.Exchange.gather`."""
        with self._lock:
            self._wait_for(tag, until)
            return {p: self._inbox[(self.job, p, tag)] for p in self.conns if (self.job, p, tag) in self._inbox}

    def _wait_for(self, tag: str, until: float) -> list[int]:
        """Wait (holding the lock) until every peer still at this job has sent ``tag``, or ``until``; the peers not
        waited for."""
        def waiting() -> list[int]:
            return [p for p in self.conns if p not in self._gone and (self.job, p) not in self._ended
                    and (self.job, p, tag) not in self._inbox]
        while waiting() and time.monotonic() < until:
            self._lock.wait(max(0.0, min(1.0, until - time.monotonic())))
        return waiting()

    def send(self, tag: str, mine: Sequence[Lemma], note: Callable[[str], None] | None) -> None:
        """:meth:`clauses.Peers.send`."""
        docs = [clauses.entry(lem) for lem in mine if isinstance(lem, clauses.Clause)]
        self._send(("fixpoint", self.job, tag, docs))
        if note:
            to = [str(p) for p in self.conns if p not in self._gone]
            note(f"clauses: {tag}: {len(docs)} families sent to "
                 + (f"seed {', '.join(to)}" if to else "no other learner"))

    def receive(self, tag: str, until: float, found: Enumerated, note: Callable[[str], None] | None) -> list[Lemma]:
        """:meth:`clauses.Peers.receive`."""
        t0 = time.monotonic()
        with self._lock:
            late = self._wait_for(tag, until)
            got = {p: self._inbox.get((self.job, p, tag)) for p in self.conns}
        out: list[Lemma] = []
        said = []
        at = found.signatures[0].at if found.signatures else None
        for peer, theirs in got.items():
            if theirs is None or at is None:
                continue
            try:
                rebuilt = clauses.from_entries(theirs, self.protocol, at, self._vocab)
            except ValueError as exc:  # not this vocabulary's (cannot be: the same samples); not taken
                said.append(f"seed {peer}'s not taken ({exc})")
                continue
            adopt(found, rebuilt)
            out += rebuilt
            said.append(f"seed {peer}: {len(rebuilt)}")
        if note:
            note(f"clauses: {tag}: the other learners' fixpoints: " + (", ".join(said) or "none")
                 + (f"; not waited for: seed {', '.join(map(str, late))}" if late else "")
                 + f" ({time.monotonic() - t0:.1f} s waited)")
        return out

    def close(self) -> None:
        """Close the links: each socket shut down first, so that its reader ends before its descriptor is released
        (a reader still in a read of a closed descriptor could read from the next socket given that number)."""
        for conn in self.conns.values():
            try:
                _shut(conn)
            except (OSError, ValueError):
                pass
        for reader in self._readers:
            reader.join(5.0)
        for conn in self.conns.values():
            try:
                conn.close()
            except OSError:
                pass


def _shut(conn: Connection) -> None:
    """Shut a connection's socket down both ways (its reader gets the end of the stream), leaving it open."""
    sock = socket.socket(fileno=conn.fileno())
    try:
        sock.shutdown(socket.SHUT_RDWR)
    finally:
        sock.detach()


def adopt(found: Enumerated, lemmas: Sequence[Lemma]) -> None:
    """Register each of ``lemmas`` (clauses rebuilt from another learner's documents) with the signature of its
    variables, where every literal is one of that signature's kept or always-true ones: the learning then tells
    where it is false from the signature's tables, as for the families it made itself."""
    by_params = {tuple((n, d.name) for n, d in sig.params): sig for sig in found.signatures}
    places: dict[int, dict[str, int]] = {}  # per signature: each literal's place in its keep + always
    for lem in lemmas:
        if not isinstance(lem, clauses.Clause):
            continue
        sig = by_params.get(tuple((n, d.name) for n, d in lem.params))
        if sig is None or lem.name in sig.where:
            continue
        if id(sig) not in places:
            places[id(sig)] = {sig.lits[j].text: k for k, j in enumerate(sig.keep + sig.always)}
        place = places[id(sig)]
        if all(t in place for t in lem.texts):
            sig.where[lem.name] = tuple(place[t] for t in lem.texts)
