"""The learners' exchange of fixpoints (checks/symbolic/clauses_peers.py): two links over a socket, in one process."""

from __future__ import annotations

import socket
import threading
import time
from multiprocessing.connection import Connection
from typing import Any

import pytest

from deferral.checks.symbolic import clauses
from deferral.checks.symbolic.clauses_peers import PeerLinks
from deferral.checks.symbolic.vocabulary import sample_rows
from deferral.model import REFERENCE, Bounds
from deferral.model.schema import VCPU

SMALL = Bounds(2, 1, 1, 1)


class _Found:
    """An enumeration of one signature, (i, k) at SMALL (what PeerLinks reads of clauses.Enumerated)."""

    def __init__(self) -> None:
        sig = clauses.Signature(REFERENCE, (("i", VCPU), ("k", VCPU)), [(SMALL, sample_rows(REFERENCE, SMALL))])
        self.families = sig.families()
        self.signatures = [sig]


@pytest.fixture(scope="module")
def enumerated() -> tuple[Any, Any]:
    """Two learners' enumerations of the same samples (each registers the families it makes)."""
    return _Found(), _Found()


def _pair() -> tuple[PeerLinks, PeerLinks]:
    a, b = socket.socketpair()
    return (PeerLinks(REFERENCE, {1: Connection(a.detach())}, 0),
            PeerLinks(REFERENCE, {0: Connection(b.detach())}, 1))


def test_a_learners_rank_is_its_place_by_seed() -> None:
    """PeerLinks.rank: how many peers have a smaller seed (it chooses the first stage: clauses.first_stage)."""
    first, second = _pair()
    assert (first.rank, second.rank) == (0, 1)


def _exchange(links: PeerLinks, tag: str, mine: Any, until: float, found: Any, note: Any) -> Any:
    links.send(tag, mine, note)
    return links.receive(tag, until, found, note)


def _at_once(*calls: Any) -> list[Any]:
    """Each call in a thread of its own, all at once; their answers in order."""
    out: list[Any] = [None] * len(calls)

    def run(n: int) -> None:
        out[n] = calls[n]()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return out


def test_each_learner_gets_the_others_fixpoint_rebuilt_and_registered(enumerated: tuple[Any, Any]) -> None:
    mine, theirs = enumerated
    zero, one = _pair()
    ours, its = mine.families[:3], theirs.families[3:5]
    own_made = clauses.make(mine.signatures[0].params, [mine.signatures[0].lits[mine.signatures[0].keep[0]]])
    notes: list[str] = []
    until = time.monotonic() + 20
    got0, got1 = _at_once(lambda: _exchange(zero, clauses.FIRST_TAG, [*ours, own_made], until, mine, notes.append),
                          lambda: _exchange(one, clauses.FIRST_TAG, its, until, theirs, None))
    assert [x.name for x in got0] == [x.name for x in its]
    assert [x.name for x in got1] == [x.name for x in [*ours, own_made]]
    assert all(isinstance(x, clauses.Clause) for x in got0 + got1)
    # a family the other made outside the enumeration is registered with its signature there (its literals' places)
    sig = theirs.signatures[0]
    assert own_made.name in sig.where and [sig.lits[(sig.keep + sig.always)[j]].text for j in sig.where[own_made.name]] \
        == list(own_made.texts)
    assert notes[0] == f"clauses: {clauses.FIRST_TAG}: 4 families sent to seed 1"
    assert notes[1].startswith(f"clauses: {clauses.FIRST_TAG}: the other learners' fixpoints: seed 1: 2 (")
    zero.close()
    one.close()


def test_a_peer_that_ended_its_job_or_has_gone_is_not_waited_for_and_a_slow_one_until_the_time_given(
        enumerated: tuple[Any, Any]) -> None:
    mine, _ = enumerated
    zero, one = _pair()
    one.end()  # its job is over: the next exchange of zero's does not wait
    t0 = time.monotonic()
    assert _exchange(zero, "draw 1000", mine.families[:1], t0 + 20, mine, None) == []
    assert time.monotonic() - t0 < 5
    # the next job: one has not ended it, and answers nothing; zero waits until the time given, no longer
    zero.begin(2)
    one.begin(2)
    notes: list[str] = []
    t0 = time.monotonic()
    assert _exchange(zero, "draw 2000", mine.families[:1], t0 + 1.0, mine, notes.append) == []
    assert 0.9 < time.monotonic() - t0 < 5 and "not waited for: seed 1" in notes[-1]
    # what it sent came (one has it for job 2), and a peer whose link closed is not waited for
    one.close()
    t0 = time.monotonic()
    assert _exchange(zero, "draw 3000", [], t0 + 20, mine, None) == []
    assert time.monotonic() - t0 < 5
    zero.close()
