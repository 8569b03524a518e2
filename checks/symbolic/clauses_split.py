"""The enumeration shared out between learners: each builds its share of the signatures' truth tables and takes
the others' from them, instead of every learner building all of them.

Why: the learners (:mod:`~deferral.checks.symbolic.clauses_process`) sample the same states and enumerate the
same families, so each spent the same 7-8 s building every signature's truth tables (lazy_cur_clear at
2,1,1..3,2,2, Q=3, S=2: (t, i, k) 3.8 s, (i, k) 1.7 s, the other four 1.9 s), both CPUs doing the same work
before any learning. Shared out, each builds about half and the learning starts that much sooner.

Who builds what: :func:`shares` deals the signatures out by their estimated cost (sampled states times parameter
assignments), the costliest first, each to the learner with the least so far; every learner computes the same
deal from the same samples. A learner sends each signature it built (:meth:`Signature.parts`: the kept
literals' texts, places and packed truth columns) with a digest of its samples, and rebuilds the others'
(:meth:`Signature.rebuilt`) with its own vocabulary. A share that does not come in time (a learner that is slow,
gone, or sampled other states) is built here after all: the families are the same whichever learner built a
signature, and only their time changes. Nothing here decides anything.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Callable, Protocol as Interface, Sequence

import numpy as np

from deferral.checks.symbolic.clauses import PEER_WAIT_FACTOR, PEER_WAIT_MIN_S, Signature
from deferral.checks.symbolic.truth import TruthTables, assignments
from deferral.model.bounds import Bounds
from deferral.model.protocol import Protocol
from deferral.model.schema import Domain

#: The tag the signatures' tables are exchanged under.
SIGNATURES_TAG = "signatures"

Params = Sequence[tuple[str, Domain]]


class Exchange(Interface):
    """What the sharing asks of the links to the other learners
    (:class:`~deferral.checks.symbolic.clauses_peers.PeerLinks`)."""

    rank: int  # this learner's place among them (0 first)
    count: int  # how many learners there are, this one included

    def share(self, tag: str, payload: Any) -> None:
        """Send ``payload`` (plain data) to every peer under ``tag``."""
        ...

    def gather(self, tag: str, until: float) -> dict[int, Any]:
        """The peers' payloads of ``tag`` (by seed) that came by ``until``."""
        ...


def cost(params: Params, samples: Sequence[tuple[Bounds, np.ndarray]]) -> int:
    """A signature's estimated cost to build: the sampled states times its parameter assignments, over the samples."""
    return sum(rows.shape[0] * len(assignments(params, b)) for b, rows in samples)


def shares(costs: Sequence[int], count: int) -> list[int]:
    """Which of ``count`` learners builds each signature (by rank): the costliest first, each to the learner with the
    least cost so far (the lowest rank among equals)."""
    load = [0] * max(1, count)
    owner = [0] * len(costs)
    for k in sorted(range(len(costs)), key=lambda k: (-costs[k], k)):
        rank = min(range(len(load)), key=lambda r: (load[r], r))
        owner[k] = rank
        load[rank] += costs[k]
    return owner


def samples_digest(samples: Sequence[tuple[Bounds, np.ndarray]]) -> str:
    """A digest of the samples (bounds, shape, states): a share is taken only from a learner with the same."""
    h = hashlib.blake2b(digest_size=16)
    for b, rows in samples:
        h.update(f"{b.short()}|{rows.shape}|{rows.dtype}|".encode())
        h.update(np.ascontiguousarray(rows).tobytes())
    return h.hexdigest()


def shared_signatures(protocol: Protocol, every: Sequence[Params], samples: Sequence[tuple[Bounds, np.ndarray]],
                      tables: TruthTables, peers: Exchange, deadline: float | None,
                      note: Callable[[str], None] | None = None) -> list[Signature]:
    """The signatures of ``every`` over ``samples``: this learner's share built here and sent to the peers, the
    others' rebuilt from theirs (built here where they do not come by a wait of :data:`PEER_WAIT_FACTOR` times
    this learner's own share, at least :data:`PEER_WAIT_MIN_S`, never past ``deadline``)."""
    t0 = time.monotonic()
    owner = shares([cost(params, samples) for params in every], peers.count)
    digest = samples_digest(samples)
    built: dict[int, Signature] = {}
    for k, params in enumerate(every):
        if owner[k] == peers.rank:
            built[k] = Signature(protocol, params, samples, tables)
    own_s = time.monotonic() - t0
    peers.share(SIGNATURES_TAG, {"digest": digest, "signatures": {k: sig.parts() for k, sig in built.items()}})
    missing = [k for k in range(len(every)) if k not in built]
    until = time.monotonic() + max(PEER_WAIT_MIN_S, PEER_WAIT_FACTOR * own_s)
    got = peers.gather(SIGNATURES_TAG, until if deadline is None else min(until, deadline)) if missing else {}
    taken, refused = 0, []
    for seed, payload in sorted(got.items()):
        if not isinstance(payload, dict) or payload.get("digest") != digest:
            refused.append(f"seed {seed}'s (other samples)")
            continue
        for k, parts in payload.get("signatures", {}).items():
            if k in built or not isinstance(k, int) or not 0 <= k < len(every):
                continue
            try:
                built[k] = Signature.rebuilt(protocol, every[k], samples[0][0], tables, parts)
                taken += 1
            except (ValueError, KeyError, TypeError) as exc:
                refused.append(f"seed {seed}'s ({exc})")
    here = [k for k in range(len(every)) if k not in built]
    for k in here:
        built[k] = Signature(protocol, every[k], samples, tables)
    if note:
        note(f"clauses: signatures shared out: {len(every) - len(missing)} built here ({own_s:.1f} s), {taken} taken "
             f"from the other learners" + (f", {len(here)} built here after all" if here else "")
             + (f"; not taken: {', '.join(refused)}" if refused else ""))
    return [built[k] for k in range(len(every))]
