"""The level-synchronous search on a Ray cluster: actors own hash partitions of the visited set.

``deferral check --cluster ADDRESS`` runs here. Each :class:`Partition` actor owns the
states whose key hashes to it (:func:`owner_of`): its part of the visited set, of every
BFS level, and each of its states' BFS parent (the parent's key) and the action that
reached it. One BFS level is three steps driven by :class:`_ClusterSearch`:

1. ``expand``: every partition expands its part of the frontier
   (:class:`~deferral.checks.explicit.expand.Expander`: the fused C loop of the
   single-machine search, or its numpy step kernels), deduplicates the successors and
   returns one bucket per owner partition; the buckets are Ray objects, so they travel
   through the object store straight to their owners (the driver only passes references);
2. ``receive``: each owner merges the buckets routed to it and keeps the keys it has not
   visited (the driver learns how many);
3. ``commit``: each owner numbers its new states (in key order), checks the invariants on
   them and makes them its part of the next frontier. The driver's ``--max-states``
   quota is applied here, so a limit cuts the search at exactly that many states.

Without a limit, a level is one call per partition (``advance``: receive, commit, then
expand the new frontier), and the driver submits the next level before it reads the
reports of this one, so the workers never wait for the driver between levels.

Results equal the single-machine search's: the same states and transitions are counted,
and a counterexample leads to the least-key violating state of the first BFS level that
has one, by a chain of BFS parents, so it is a shortest one (paths of equal length may
differ in their choice of parents). ``shootdowns_can_complete`` (AG EF) is checked too:
with liveness properties each owner also keeps the reversed edges into its states, and a
distributed backward search from the goal states marks every state that can reach one;
the counterexample leads to the least (depth, key) state that cannot. Ray is imported
only here: the single-machine path never loads it.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable, Iterator

import numpy as np

from deferral.checks.explicit import levelc
from deferral.checks.explicit.expand import Expander
from deferral.checks.explicit.fused import MIN_ROWS, Scratch
from deferral.checks.explicit.levelmerge import distinct_first
from deferral.checks.explicit.limits import peak_rss_bytes
from deferral.checks.explicit.numpy_ops import NotVectorizable
from deferral.checks.explicit.packing import Packer
from deferral.checks.explicit.symmetry_guard import check_symmetry
from deferral.checks.explicit.visited import Visited
from deferral.checks.results import (ALL_VIOLATED, Outcome, Path, Progress, ProgressFn, SearchResult, every_verdict_in,
                                    path_from_parents)
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.context import StepError
from deferral.model.protocol import Protocol

#: Frontier rows unpacked and expanded at a time inside a partition.
CHUNK_ROWS = 1 << 16
#: Sorted keys looked up in the visited runs at a time by the fused loop's dedup (its hash
#: table stays in cache).
LOOKUP_ROWS = 1 << 16
#: A BFS level of this many states has the workers make the fused C loop (the single-machine
#: search's threshold for one chunk; a worker's share of the level may be far smaller).
FUSED_LEVEL_ROWS = MIN_ROWS
#: Newly reached states whose predecessors are gathered at a time by the AG EF rounds.
BACK_ROWS = 1 << 18
#: Seconds the partition actors may take to start (placement, imports) before giving up.
STARTUP_TIMEOUT_S = 120.0
#: Driver-side key: an int (one 64-bit word) or big-endian bytes (several); both order as keys do.
KeyObj = int | bytes


class ClusterUnavailable(Exception):
    """Ray is not installed, or the cluster address cannot be used: bad input, no search ran."""


class ClusterError(Exception):
    """The cluster failed during the search (a worker died, ...): no verdict."""


def parse_address(address: str) -> tuple[str | None, int | None]:
    """``local:K`` -> (None, K): start a K-CPU Ray on this machine; else (address, None)."""
    if address.startswith("local:"):
        text = address[len("local:"):]
        if not text.isdigit() or int(text) < 1:
            raise ClusterUnavailable(f"--cluster {address}: expected local:K with K >= 1 workers")
        return None, int(text)
    if not address:
        raise ClusterUnavailable("--cluster: empty address")
    return address, None


def owner_of(keys: np.ndarray, n_words: int, parts: int) -> np.ndarray:
    """The partition owning each key: a multiplicative hash of its 64-bit words, mod ``parts``."""
    if parts == 1:
        return np.zeros(keys.shape[0], dtype=np.int64)
    words = keys.reshape(-1, 1) if n_words == 1 else keys.view(">u8").reshape(-1, n_words).astype(np.uint64)
    h = np.zeros(keys.shape[0], dtype=np.uint64)
    for j in range(n_words):
        h ^= words[:, j]
        h *= np.uint64(0x9E3779B97F4A7C15)
        h ^= h >> np.uint64(29)
    return ((h >> np.uint64(32)) % np.uint64(parts)).astype(np.int64)


def _by_owner(owner: np.ndarray, parts: int) -> list[np.ndarray]:
    """The positions of each partition's items (ascending), from their owners: one radix sort
    of the owners, not a pass per partition (which would cost ``parts`` times more)."""
    if parts == 1:
        return [np.arange(owner.shape[0])]
    order = np.argsort(owner.astype(np.uint16 if parts <= 1 << 16 else np.int64), kind="stable")
    cuts = np.concatenate(([0], np.cumsum(np.bincount(owner, minlength=parts))))
    return [order[cuts[q]:cuts[q + 1]] for q in range(parts)]


def _key_obj(keys: np.ndarray, i: int) -> KeyObj:
    return int(keys[i]) if keys.dtype == np.uint64 else bytes(keys[i:i + 1].tobytes())


def _key_arr(key: KeyObj, dtype: Any) -> np.ndarray:
    if isinstance(key, int):
        return np.array([key], dtype=np.uint64)
    return np.frombuffer(key, dtype=dtype).copy()


def _unique(a: np.ndarray) -> np.ndarray:
    """The distinct values of ``a``, sorted (``a`` is sorted in place; faster than ``np.unique``)."""
    a.sort()
    keep = np.ones(a.shape[0], dtype=bool)
    keep[1:] = a[1:] != a[:-1]
    return a[keep]


class Partition:
    """One hash partition of the search: its states, levels, parents and reversed edges.

    Run as a Ray actor (the class is wrapped by ``ray.remote`` in :func:`explore_cluster`),
    or in-process by the tests of its logic.
    """

    def __init__(self, protocol: Protocol, bounds: Bounds, symmetry: bool, index: int, parts: int,
                 fused_rows: int = FUSED_LEVEL_ROWS) -> None:
        self.model = Model(protocol, bounds)
        self.expander = Expander(self.model, symmetry)
        self.packer: Packer = self.expander.packer
        self.index, self.parts = index, parts
        self.fused_rows = fused_rows
        self.invariants = self.model.invariants
        self.lives = self.model.liveness
        self.visited = Visited(self.packer.key_dtype)
        self.count = 0
        # per depth: my first local number at it (local numbers go by depth, then key: the
        # visited set maps a key to its number, so the keys are not kept a second time)
        self.level_starts: list[int] = []
        self.level_parent: list[np.ndarray] = []  # the key of each one's BFS parent
        self.level_via: list[np.ndarray] = []  # the action that reached it
        # stored as one byte while there are fewer than 256 actions (as the single search does)
        self.stored_via: Any = np.uint8 if len(self.model.actions) < 256 else self.expander.action_dtype
        self.goals: dict[str, list[np.ndarray]] = {p.name: [] for p in self.lives}
        self.frontier = np.zeros(0, self.packer.key_dtype)
        self.frontier_done = np.zeros(0, dtype=bool)  # frontier states that satisfy every goal
        self.pending: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.pending_edges: tuple[np.ndarray, np.ndarray] | None = None
        self.rev_dst: list[np.ndarray] = []  # reversed edges: my state (local number) ...
        self.rev_src: list[np.ndarray] = []  # ... and the key of a predecessor
        self.reached = np.zeros(0, dtype=bool)
        self.newly = np.zeros(0, dtype=np.int64)
        self.preds: np.ndarray | None = None
        self.pred_starts = np.zeros(1, dtype=np.int64)
        self.scratch = Scratch()  # the fused loop's buffers, reused from chunk to chunk
        self.fused_chunks = 0  # frontier chunks expanded by the fused C loop
        self.cpu_start = time.process_time()  # CPU seconds of this search, set-up excluded

    def _owners(self, keys: np.ndarray) -> np.ndarray:
        return owner_of(keys, self.packer.n_words, self.parts)

    def _empty_bucket(self) -> dict[str, np.ndarray]:
        kd = self.packer.key_dtype
        return {"keys": np.zeros(0, kd), "parent": np.zeros(0, kd),
                "via": np.zeros(0, self.expander.action_dtype),
                "edge_dst": np.zeros(0, kd), "edge_src": np.zeros(0, kd)}

    # ---- one BFS level ---------------------------------------------------------------------
    def start(self, keys: np.ndarray) -> int:
        """Stage the initial state (when this partition owns it) as level 0's candidates."""
        self.pending = (keys, keys.copy(), np.zeros(keys.shape[0], self.expander.action_dtype))
        self.pending_edges = None
        return int(keys.shape[0])

    def expand(self) -> tuple[Any, ...]:
        """Successors of my frontier: one bucket per owner partition, then this level's figures.

        The first level of about ``fused_rows`` states in all (my part times the partitions)
        makes the fused C loop if there is none yet (compiled, or loaded from this machine's
        cache): a partition's share of a level may stay below the single-machine search's
        threshold for one chunk, the whole level does not.

        A bucket holds the successor keys (a sorted run of distinct keys per chunk: a key
        may be in several) with one (parent key, action) reaching each and, when liveness is
        checked, the distinct edges (target, source) out of frontier states that do not
        satisfy every goal (self-loops left out).
        """
        fk = self.frontier
        if fk.shape[0] * self.parts >= self.fused_rows:
            self.expander.fused()
        # per chunk (cache-sized): its distinct successors, the first (action order, then row)
        # transition reaching each and, for AG EF, its distinct edges (successor, source row),
        # split by owner at once. No merge across the chunks here: the owner's merge keeps a
        # key's first sender and, in it, the earliest chunk (what a merge here would have
        # chosen), so the level never sits whole in this worker's memory twice (its radix
        # scratch alone was 72 bytes a candidate)
        parts: list[list[dict[str, np.ndarray]]] = [[] for _ in range(self.parts)]
        n_succ = 0
        for a in range(0, fk.shape[0], CHUNK_ROWS):
            keys, par, act = self._transitions(fk[a:a + CHUNK_ROWS], a)
            n_succ += keys.shape[0]
            if not keys.shape[0]:
                continue
            uniq, rep, group = self._distinct(keys, want_group=bool(self.lives))
            del keys
            owner = self._owners(uniq)
            edges = None
            if group is not None:  # a chunk's pairs are its own: no two chunks share a source row
                rows = np.int64(CHUNK_ROWS)
                pair = _unique(group.astype(np.int64) * rows + (par.astype(np.int64) - a))
                g, src = pair // rows, pair % rows + a
                del pair, group
                keep = ~self.frontier_done[src]
                keep &= uniq[g] != fk[src]
                g, src = g[keep], src[keep]
                edges = (g, src, _by_owner(owner[g], self.parts))
            for q, sel in enumerate(_by_owner(owner, self.parts)):
                piece = {"keys": uniq[sel], "parent": fk[par[rep[sel]]], "via": act[rep[sel]]}
                if edges is not None:
                    e = edges[2][q]
                    piece["edge_dst"], piece["edge_src"] = uniq[edges[0][e]], fk[edges[1][e]]
                parts[q].append(piece)
        buckets = [self._empty_bucket() for _ in range(self.parts)]
        for bucket, pieces in zip(buckets, parts):
            if pieces:
                for field in bucket:  # a field at a time, its pieces dropped once joined
                    got = [piece.pop(field) for piece in pieces if field in piece]  # no edges without liveness
                    if got:
                        bucket[field] = np.concatenate(got)
        sent = [sum(v.nbytes for v in b.values()) for b in buckets]
        stats = {"successors": n_succ, "routed_bytes": sum(sent),
                 "remote_bytes": sum(sent) - sent[self.index]}
        return (*buckets, stats)

    def _transitions(self, keys: np.ndarray, offset: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every transition out of my frontier states ``keys`` (rows from ``offset``): successor
        keys, parent rows, actions; grouped by action, rows ascending in each. By the fused C
        loop when there is one for this chunk (as in the single-machine search), else by the
        step kernels over the unpacked rows (and where the loop meets a value outside a
        domain, so that the step's own error is raised)."""
        loop = self.expander.fused(keys.shape[0])
        if loop is not None:
            got = loop.successors(keys, offset, self.scratch)
            if got is not None:
                self.fused_chunks += 1
                return got[0].copy(), got[1], got[2].copy()  # keys and actions are in the scratch
        succ, par, act = self.expander.successors(self.packer.unpack(keys))
        return succ, par + offset, act

    def _distinct(self, keys: np.ndarray, want_group: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """:func:`distinct_first`, by the fused loop's dedup (one-word keys) when there is one."""
        loop = self.expander.fused(keys.shape[0])
        if loop is not None and loop.dedup is not None:
            got = loop.dedup(keys, [], want_group)
            if got is not None:
                return got[0], got[1], got[3]
        return distinct_first(keys, want_group)

    def receive(self, *buckets: dict[str, np.ndarray]) -> int:
        """Merge the buckets routed to me; stage the keys not visited yet. Returns their number."""
        keys = np.concatenate([b["keys"] for b in buckets])
        parent = np.concatenate([b["parent"] for b in buckets])
        via = np.concatenate([b["via"] for b in buckets])
        # sorted runs, one per sender and chunk, in that order: a key's first sender wins, and
        # in it its earliest chunk (the transition first in action, then row order)
        uniq, rep, _ = distinct_first(keys, want_group=False)
        fresh = self._lookup(uniq) < 0
        self.pending = (uniq[fresh], parent[rep[fresh]], via[rep[fresh]])
        self.pending_edges = None
        if self.lives:
            self.pending_edges = (np.concatenate([b["edge_dst"] for b in buckets]),
                                  np.concatenate([b["edge_src"] for b in buckets]))
        return int(self.pending[0].shape[0])

    def advance(self, *buckets: dict[str, np.ndarray]) -> tuple[Any, ...]:
        """One whole level in one call (no ``--max-states`` quota): :meth:`receive` the buckets,
        :meth:`commit` every staged key, then :meth:`expand` the new frontier. Returns the
        next level's buckets, then ``{"report": commit's, "stats": expand's}``."""
        self.receive(*buckets)
        report = self.commit(1 << 62)
        *out, stats = self.expand()
        return (*out, {"report": report, "stats": stats})

    def commit(self, limit: int) -> dict[str, Any]:
        """Number the first ``limit`` staged keys as my part of the next level; check them.

        Returns how many were added and, per invariant, the least key that violates it here.
        """
        assert self.pending is not None
        keys, parent, via = (a[:limit] for a in self.pending)
        self.pending = None
        n = keys.shape[0]
        # local state numbers: uint32 (what the compiled dedup looks up) while they fit
        id_dtype = np.uint32 if self.count + n < 1 << 32 else np.int64
        self.visited.add(keys, np.arange(self.count, self.count + n, dtype=id_dtype))
        self.level_starts.append(self.count)
        self.level_parent.append(parent)
        self.level_via.append(via.astype(self.stored_via, copy=False))
        self.count += n
        bad: dict[str, KeyObj] = {}
        done = np.ones(n, dtype=bool)
        goal_parts: dict[str, list[np.ndarray]] = {p.name: [] for p in self.lives}
        for a in range(0, n, CHUNK_ROWS):
            holds = self.expander.checker(keys[a:a + CHUNK_ROWS])
            for prop in self.invariants:
                if prop.name not in bad:
                    ok = holds(prop)
                    if not ok.all():
                        bad[prop.name] = _key_obj(keys, a + int(np.flatnonzero(~ok)[0]))
            for prop in self.lives:
                g = holds(prop)
                goal_parts[prop.name].append(g)
                done[a:a + g.shape[0]] &= g
        for prop in self.lives:
            parts = goal_parts[prop.name]
            self.goals[prop.name].append(np.concatenate(parts) if parts else np.zeros(0, dtype=bool))
        self.frontier, self.frontier_done = keys, done
        if self.pending_edges is not None:
            dst, src = self.pending_edges
            self.pending_edges = None
            ids = self._numbers(dst)
            known = ids >= 0  # targets cut by --max-states are dropped (liveness is unknown then)
            self.rev_dst.append(ids[known].astype(np.uint32 if self.count < 1 << 32 else np.int64))
            self.rev_src.append(src[known])
        return {"new": n, "bad": bad}

    def _numbers(self, keys: np.ndarray) -> np.ndarray:
        """My local number of each of ``keys`` (in any order), -1 where I do not store it."""
        order = np.argsort(keys)
        ids = np.empty(keys.shape[0], dtype=np.int64)
        ids[order] = self._lookup(keys[order])
        return ids

    def _lookup(self, keys: np.ndarray) -> np.ndarray:
        """My local number of each of the sorted ``keys``, -1 where I do not store it: by the
        fused loop's dedup a cache-sized slice at a time when there is one, else by
        :meth:`Visited.lookup`."""
        loop = self.expander.fused(keys.shape[0])
        if loop is None or loop.dedup is None or keys.dtype != np.uint64:
            return self.visited.lookup(keys)
        runs = self.visited.runs()
        out = np.empty(keys.shape[0], dtype=np.int64)
        for a in range(0, keys.shape[0], LOOKUP_ROWS):
            got = loop.dedup(keys[a:a + LOOKUP_ROWS], runs, True)
            if got is None:  # state numbers past uint32
                return self.visited.lookup(keys)
            _, _, known, uidx = got
            ids = known[uidx]
            out[a:a + ids.shape[0]] = np.where(ids >= 0, ids, -1)  # -(1 + candidate): not stored
        return out

    def parent_of(self, depth: int, key: KeyObj) -> tuple[KeyObj, int]:
        """The BFS parent (key) of my state ``key`` at ``depth``, and the action that reached it."""
        n = int(self._lookup(_key_arr(key, self.packer.key_dtype))[0])
        i = n - self.level_starts[depth]
        assert n >= 0 and 0 <= i < self.level_parent[depth].shape[0], "state not stored at that depth"
        return _key_obj(self.level_parent[depth], i), int(self.level_via[depth][i])

    def _key_of(self, n: int) -> KeyObj:
        """The key of my local state number ``n`` (a pass over the visited runs: for a
        counterexample's last state, once)."""
        for keys, ids in self.visited.runs():
            at = np.flatnonzero(ids == n)
            if at.size:
                return _key_obj(keys, int(at[0]))
        raise AssertionError("local state number out of range")

    def figures(self) -> dict[str, Any]:
        """Stored states and bytes held by this partition."""
        held = (self.visited.nbytes + sum(a.nbytes for a in self.level_parent) + sum(a.nbytes for a in self.level_via)
                + sum(a.nbytes + b.nbytes for a, b in zip(self.rev_dst, self.rev_src))
                + (0 if self.preds is None else self.preds.nbytes + self.pred_starts.nbytes))
        return {"states": self.count, "bytes": held, "cpu_s": time.process_time() - self.cpu_start,
                "fused_chunks": self.fused_chunks, "fused_problem": self.expander.fused_problem,
                # VmHWM of this worker process: ru_maxrss is wrong for a process started by a
                # big one (it inherits the parent's resident size as its peak)
                "peak_rss_bytes": peak_rss_bytes()}

    # ---- AG EF: backward reachability of the goal states ----------------------------------
    def back_start(self, prop: str) -> int:
        """Mark my goal states of ``prop`` as reaching the goal; they are the first frontier."""
        goal = self.goals[prop]
        self.reached = np.concatenate(goal) if goal else np.zeros(0, dtype=bool)
        if self.preds is None:  # CSR of the reversed edges, by target
            self.preds, self.pred_starts = self._reversed_index()
        self.newly = np.flatnonzero(self.reached)
        return int(self.newly.shape[0])

    def _reversed_index(self) -> tuple[np.ndarray, np.ndarray]:
        """The reversed edges as a CSR by target: predecessor keys, and where each of my
        states' begin (uint32 while the edges fit). Built in place: (target, edge) packed in
        one word and sorted (unique, so any sort gives the stable order), the starts read off
        it, the edge numbers then pick the keys: about 24 bytes an edge and 4 a state at the
        peak (an argsort, a bincount and int64 starts took 32 and 16)."""
        dst = np.concatenate(self.rev_dst) if self.rev_dst else np.zeros(0, np.uint32)
        self.rev_dst = []
        src = np.concatenate(self.rev_src) if self.rev_src else np.zeros(0, self.packer.key_dtype)
        self.rev_src = []  # the edges are in the index from here on, not twice
        n_edges = dst.shape[0]
        if self.count >= 1 << 32 or n_edges >= 1 << 32:  # past 32-bit numbers: the plain way
            order = np.argsort(dst, kind="stable")
            starts = np.zeros(self.count + 1, dtype=np.int64)
            np.cumsum(np.bincount(dst, minlength=self.count), out=starts[1:])
            return src[order], starts
        packed = dst.astype(np.uint64)
        del dst
        packed <<= np.uint64(32)
        packed |= np.arange(n_edges, dtype=np.uint64)
        packed.sort()
        starts = np.zeros(self.count + 1, dtype=np.uint32)  # state i: preds[starts[i]:starts[i+1]]
        if not levelc.csr_starts(packed, starts):
            starts[1:] = np.searchsorted(packed >> np.uint64(32), np.arange(1, self.count + 1, dtype=np.uint64))
        packed &= np.uint64(0xFFFFFFFF)
        preds = src[packed]
        return preds, starts

    def back_expand(self) -> tuple[Any, ...]:
        """The predecessors of my newly reached states: one bucket of keys per owner, then their number."""
        assert self.preds is not None
        found_parts, total = [], 0
        for a in range(0, self.newly.shape[0], BACK_ROWS):  # bounded pieces: the first round has most states
            newly = self.newly[a:a + BACK_ROWS]
            begin = self.pred_starts[newly].astype(np.int64)  # (uint32 starts: signed arithmetic below)
            c = self.pred_starts[newly + 1].astype(np.int64) - begin
            n = int(c.sum())
            if n:
                offsets = np.repeat(begin - (np.cumsum(c) - c), c) + np.arange(n)
                found_parts.append(_unique(self.preds[offsets]))
                total += n
        if total == 0:
            return (*(np.zeros(0, self.packer.key_dtype) for _ in range(self.parts)), 0)
        found = _unique(np.concatenate(found_parts)) if len(found_parts) > 1 else found_parts[0]
        del found_parts
        return (*(found[sel] for sel in _by_owner(self._owners(found), self.parts)), int(found.shape[0]))

    def back_receive(self, *buckets: np.ndarray) -> int:
        """Mark the routed predecessors as reaching the goal; those new to it are the next frontier."""
        ids = self._numbers(np.concatenate(buckets))
        ids = ids[ids >= 0]
        self.newly = _unique(ids[~self.reached[ids]])  # a key may come from several workers
        self.reached[self.newly] = True
        return int(self.newly.shape[0])

    def back_advance(self, *buckets: np.ndarray) -> tuple[Any, ...]:
        """:meth:`back_receive` then :meth:`back_expand`: the next buckets, then how many
        states the buckets newly marked."""
        newly = self.back_receive(*buckets)
        return (*self.back_expand()[:self.parts], newly)

    def back_stuck(self) -> tuple[int, KeyObj] | None:
        """My least (depth, key) state that cannot reach the goal, if any."""
        stuck = np.flatnonzero(~self.reached)
        if not stuck.size:
            return None
        n = int(stuck[0])  # local numbers go by depth, then key
        depth = int(np.searchsorted(np.asarray(self.level_starts), n, side="right")) - 1
        return depth, self._key_of(n)


class _Host:
    """The Ray actor: holds one :class:`Partition` at a time, so a pool serves many searches."""

    def __init__(self) -> None:
        from threadpoolctl import threadpool_limits

        self.part: Partition | None = None
        # one BLAS thread for the actor's life (the key products are small; see
        # packing.blas_threads): set once, not per call (threadpoolctl takes ms to set it)
        self.blas = threadpool_limits(limits=1, user_api="blas")

    def setup(self, *args: Any) -> None:
        self.part = None  # free the previous search first
        self.part = Partition(*args)

    def ready(self) -> bool:
        return True

    def call(self, method: str, *args: Any) -> Any:
        assert self.part is not None
        return getattr(self.part, method)(*args)


class Cluster:
    """A connection to Ray and a pool of partition actors, reused by successive searches.

    ``address`` is ``local:K`` (start Ray on this machine with K CPUs, loopback only, and
    stop it on :meth:`close`) or the address of a running cluster (``HOST:6379``, ``auto``,
    ``ray://HOST:10001``). If this process is connected to Ray already, that connection
    is used (and left open). ``partitions`` (default: K, or the cluster's CPUs) is the
    number of actors. Raises :class:`ClusterUnavailable` when Ray is missing or the
    address cannot be used.
    """

    def __init__(self, address: str, partitions: int | None = None) -> None:
        remote, local_cpus = parse_address(address)  # a bad address is bad input, Ray or not
        try:
            import ray
        except ImportError:
            raise ClusterUnavailable("--cluster needs Ray: pip install 'deferral[cluster]'") from None
        self.ray, self.address, self.started = ray, address, False
        if not ray.is_initialized():
            try:
                if remote is None:
                    ray.init(num_cpus=local_cpus, include_dashboard=False, log_to_driver=False,
                             _node_ip_address="127.0.0.1", configure_logging=False)
                else:
                    ray.init(address=remote, log_to_driver=False, configure_logging=False)
            except Exception as exc:  # ConnectionError, ValueError, ...: one line, no traceback
                first = str(exc).splitlines()[0] if str(exc) else ""
                raise ClusterUnavailable(f"--cluster {address}: cannot start or reach Ray: "
                                         f"{type(exc).__name__}: {first}") from None
            self.started = True
        self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self.parts = partitions or local_cpus or self.cpus
        host = ray.remote(_Host).options(num_cpus=min(1.0, self.cpus / self.parts),
                                         scheduling_strategy="SPREAD")
        self.actors = [host.remote() for _ in range(self.parts)]
        try:  # an actor that cannot be placed (CPUs taken) would otherwise wait for ever
            ray.get([a.ready.remote() for a in self.actors], timeout=STARTUP_TIMEOUT_S)
        except ray.exceptions.GetTimeoutError:
            free = ray.available_resources().get("CPU", 0)
            self.close()
            raise ClusterUnavailable(f"--cluster {address}: {self.parts} workers could not start within "
                                     f"{STARTUP_TIMEOUT_S:.0f} s (free CPUs: {free:g})") from None

    def search(self, protocol: Protocol, bounds: Bounds, *, symmetry: bool = True,
               max_states: int | None = None, time_limit: float | None = None,
               progress: ProgressFn | None = None, fused_rows: int = FUSED_LEVEL_ROWS,
               until_all_violated: bool = False) -> SearchResult:
        """The search of :func:`~deferral.checks.explicit.vectorized.explore_vectorized`, distributed.

        ``fused_rows``: the first level of about this many states has every worker make
        the fused C loop (see :meth:`Partition.expand`). Raises :class:`ClusterError` (the cluster failed) or the
        :class:`StepError` of a misbehaving step.
        """
        start = time.monotonic()
        return _ClusterSearch(self, protocol, bounds, symmetry, max_states, time_limit, progress, start,
                              fused_rows, until_all_violated).run()

    def close(self) -> None:
        """Stop the actors, and Ray itself if this object started it."""
        for a in self.actors:
            self.ray.kill(a)
        self.actors = []
        if self.started:
            self.ray.shutdown()
            self.started = False

    def __enter__(self) -> "Cluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def explore_cluster(protocol: Protocol, bounds: Bounds, address: str, *, symmetry: bool = True,
                    max_states: int | None = None, time_limit: float | None = None,
                    progress: ProgressFn | None = None, partitions: int | None = None,
                    until_all_violated: bool = False) -> SearchResult:
    """One search on a :class:`Cluster` opened for it (see there for ``address``); with ``symmetry``,
    the protocol is first checked to treat its VCPUs alike (as :func:`~deferral.checks.explicit.search.search`
    does); ``until_all_violated``: as there, a search of invariants only stops after the level where the
    last of them is first violated."""
    start = time.monotonic()
    basis = check_symmetry(protocol, bounds) if symmetry else None
    with Cluster(address, partitions) as cluster:
        result = cluster.search(protocol, bounds, symmetry=symmetry, max_states=max_states,
                                time_limit=time_limit, progress=progress, until_all_violated=until_all_violated)
    result.elapsed_s = time.monotonic() - start  # Ray's start-up included
    result.symmetry_basis = basis
    return result


class _ClusterSearch:
    """The driver of one distributed search: rounds of actor calls, one BFS level at a time."""

    def __init__(self, cluster: Cluster, protocol: Protocol, bounds: Bounds, symmetry: bool,
                 max_states: int | None, time_limit: float | None, progress: ProgressFn | None,
                 start: float, fused_rows: int, until_all_violated: bool = False) -> None:
        self.ray = cluster.ray
        self.model = Model(protocol, bounds)
        self.symmetry = symmetry
        self.parts = parts = cluster.parts
        self.max_states = max_states
        self.time_limit = time_limit
        self.progress = progress
        self.start = start
        self.fused_rows = fused_rows
        self.until_all_violated = until_all_violated
        self.address = cluster.address
        self.packer = Packer(self.model.layout, symmetry)
        self.actors = cluster.actors
        self.get([a.setup.remote(protocol, bounds, symmetry, i, parts, fused_rows)
                  for i, a in enumerate(self.actors)])

    def get(self, refs: Any) -> Any:
        """``ray.get``, with a task's own error re-raised and a cluster failure as ClusterError."""
        ray = self.ray
        try:
            return ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, StepError):
                raise StepError(str(cause)) from None
            if isinstance(cause, NotVectorizable):
                raise ClusterError(f"the protocol's steps cannot run on arrays, which --cluster needs: "
                                   f"{cause}") from None
            raise ClusterError(f"a cluster task failed: {type(cause or exc).__name__}: "
                               f"{str(cause or exc).splitlines()[-1] if str(cause or exc) else ''}") from None
        except (ray.exceptions.RayActorError, ray.exceptions.RaySystemError,
                ray.exceptions.ObjectLostError) as exc:
            raise ClusterError(f"the cluster failed during the search: {type(exc).__name__}") from None

    def _commit_level(self, counts: list[int], n_states: int) -> tuple[list[dict[str, Any]], bool]:
        """Commit the staged candidates, within ``--max-states``; (reports, whether cut)."""
        quota = [int(c) for c in counts]
        cut = False
        if self.max_states is not None and n_states + sum(quota) > self.max_states:
            room, cut = max(0, self.max_states - n_states), True
            for p, c in enumerate(quota):
                quota[p] = min(c, room)
                room -= quota[p]
        return self.get([a.call.remote("commit", q) for a, q in zip(self.actors, quota)]), cut

    def run(self) -> SearchResult:
        parts, actors = self.parts, self.actors
        key_dtype, n_words = self.packer.key_dtype, self.packer.n_words
        init_key = self.packer.canonical_keys(self.packer.rows_of([self.model.initial]))
        home = int(owner_of(init_key, n_words, parts)[0])
        counts = self.get([a.call.remote("start", init_key if p == home else np.zeros(0, key_dtype))
                           for p, a in enumerate(actors)])
        reports, _ = self._commit_level(counts, 0)
        first_bad: dict[str, tuple[int, KeyObj]] = {}
        self._note_bad(reports, 0, first_bad)
        n_states, depth, transitions, frontier = 1, 0, 0, 1
        stopped_by: str | None = None
        levels: list[dict[str, int]] = []
        self.stopping = False
        for reports, stats, cut in self._levels(lambda: n_states):
            n_new = sum(r["new"] for r in reports)
            succ = sum(s["successors"] for s in stats)
            transitions += succ
            levels.append({"depth": depth + 1, "new_states": n_new, "successors": succ,
                           "routed_bytes": sum(s["routed_bytes"] for s in stats),
                           "remote_bytes": sum(s["remote_bytes"] for s in stats)})
            if n_new:
                depth += 1
                self._note_bad(reports, depth, first_bad)
            n_states += n_new
            frontier = n_new
            if cut:
                stopped_by = "max-states"
            elif (frontier and stopped_by is None and self.time_limit is not None
                  and time.monotonic() - self.start > self.time_limit):
                stopped_by = "time-limit"  # the level already under way is still counted
            elif frontier and stopped_by is None and every_verdict_in(
                    self.until_all_violated, self.model.invariants, self.model.liveness, first_bad):
                stopped_by = ALL_VIOLATED  # every verdict known (the levels under way are still counted)
            self.stopping = stopped_by is not None
            if self.progress:
                self.progress(Progress(n_states, transitions, depth, frontier, time.monotonic() - self.start))
            if not frontier:
                if stopped_by in ("time-limit", ALL_VIOLATED):
                    stopped_by = None  # the level under way at the limit was the last: complete
                break
        complete = stopped_by is None
        outcomes: list[Outcome] = []
        rounds = 0
        for prop in self.model.protocol.properties:
            if prop.kind == "invariant":
                if prop.name in first_bad:
                    outcomes.append(Outcome(prop.name, "invariant", "violated", self._path(*first_bad[prop.name])))
                else:
                    outcomes.append(Outcome(prop.name, "invariant", "holds" if complete else "unknown"))
            elif not complete:
                outcomes.append(Outcome(prop.name, "liveness", "unknown"))
            else:
                stuck, r = self._backward(prop.name)
                rounds += r
                outcomes.append(Outcome(prop.name, "liveness", "holds") if stuck is None
                                else Outcome(prop.name, "liveness", "violated", self._path(*stuck)))
        figures = self.get([a.call.remote("figures") for a in actors])
        held = sum(f["bytes"] for f in figures)
        stats_out: dict[str, Any] = {
            "cluster": self.address,
            "partitions": parts,
            "bytes_per_state": round(held / max(1, n_states), 1),
            "key_bytes": self.packer.bytes_per_key,
            "partition_states": [f["states"] for f in figures],
            "partition_peak_rss_bytes": [f["peak_rss_bytes"] for f in figures],
            "partition_cpu_s": [round(f["cpu_s"], 3) for f in figures],
            "partition_fused_chunks": [f["fused_chunks"] for f in figures],
            "routed_bytes": sum(lv["routed_bytes"] for lv in levels),
            "remote_bytes": sum(lv["remote_bytes"] for lv in levels),
            "levels": levels,
            "liveness_rounds": rounds,
        }
        problems = sorted({f["fused_problem"] for f in figures if f["fused_problem"]})
        if problems:  # as the single-machine search says it
            stats_out["notice"] = (f"the compiled C loop was not used ({'; '.join(problems)}): "
                                   "the numpy path ran, same results, several times slower")
        return SearchResult(self.model.protocol.name, self.model.bounds, self.symmetry, n_states, transitions,
                            depth, time.monotonic() - self.start, complete, stopped_by, outcomes,
                            engine="cluster", workers=parts, stats=stats_out, model=self.model)

    def _routed(self, refs: list[Any], p: int) -> list[Any]:
        """The buckets that the calls ``refs`` (one per partition) routed to partition ``p``."""
        return [refs[q][p] for q in range(self.parts)]

    def _levels(self, n_states: Callable[[], int]) -> Iterator[tuple[list[dict[str, Any]], list[dict[str, Any]], bool]]:
        """Each BFS level's commit reports, expansion figures and whether ``--max-states`` cut
        it, until the caller stops reading, or sets ``self.stopping`` (the levels under way
        are still given). ``n_states``: the states counted so far.

        Without a quota a level is one call per partition (:meth:`Partition.advance`), and the
        next level is submitted before this one is read: the workers go from level to level
        through the object store without waiting for the driver (a level past the last one
        expands nothing). With ``--max-states`` each level is three rounds with the driver's
        quota between receive and commit."""
        parts, actors = self.parts, self.actors
        if self.max_states is not None:
            while not self.stopping:
                refs = [a.call.options(num_returns=parts + 1).remote("expand") for a in actors]
                counts = self.get([actors[p].call.remote("receive", *self._routed(refs, p)) for p in range(parts)])
                reports, cut = self._commit_level(counts, n_states())
                yield reports, self.get([r[parts] for r in refs]), cut
            return
        refs = [a.call.options(num_returns=parts + 1).remote("expand") for a in actors]
        stats = self.get([r[parts] for r in refs])
        flight: deque[list[Any]] = deque()
        while True:
            while len(flight) < 2 and not self.stopping:  # the level to read and the next one
                refs = [actors[p].call.options(num_returns=parts + 1).remote("advance", *self._routed(refs, p))
                        for p in range(parts)]
                flight.append(refs)
            if not flight:
                return
            infos = self.get([r[parts] for r in flight.popleft()])
            yield [i["report"] for i in infos], stats, False
            stats = [i["stats"] for i in infos]

    @staticmethod
    def _note_bad(reports: list[dict[str, Any]], depth: int, first_bad: dict[str, tuple[int, KeyObj]]) -> None:
        """Record, per invariant, the least violating key of the first level that has one."""
        for r in reports:
            for name, key in r["bad"].items():
                if name not in first_bad or (first_bad[name][0] == depth and key < first_bad[name][1]):
                    first_bad[name] = (depth, key)

    def _backward(self, prop: str) -> tuple[tuple[int, KeyObj] | None, int]:
        """AG EF for ``prop``: the least (depth, key) state that cannot reach a goal state."""
        parts, actors = self.parts, self.actors
        active = sum(self.get([a.call.remote("back_start", prop) for a in actors]))
        rounds = 0
        refs = [a.call.options(num_returns=parts + 1).remote("back_expand") for a in actors]
        flight: deque[list[Any]] = deque()
        while active:  # pipelined as the levels are: a round past the last one finds nothing
            while len(flight) < 2:
                refs = [actors[p].call.options(num_returns=parts + 1).remote("back_advance", *self._routed(refs, p))
                        for p in range(parts)]
                flight.append(refs)
            rounds += 1
            active = sum(self.get([r[parts] for r in flight.popleft()]))
        stuck = [s for s in self.get([a.call.remote("back_stuck") for a in actors]) if s is not None]
        return (min(stuck) if stuck else None), rounds

    def _path(self, depth: int, key: KeyObj) -> Path:
        """A shortest path to the stored state ``key`` at ``depth``, by its BFS parents."""
        n_words = self.packer.n_words
        actions: list[int] = []
        while depth > 0:
            home = int(owner_of(_key_arr(key, self.packer.key_dtype), n_words, self.parts)[0])
            key, action = self.get(self.actors[home].call.remote("parent_of", depth, key))
            actions.append(action)
            depth -= 1
        actions.reverse()
        # the chain as a BFS record of its own: state j's parent is j-1, reached by actions[j-1]
        parent = [0, *range(len(actions))]
        return path_from_parents(self.model, parent, [0, *actions], len(actions), symmetry=self.symmetry)
