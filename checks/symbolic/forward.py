"""Houdini's extra drops from running the protocol forward from a counterexample to induction.

A bounded Houdini query (:meth:`deferral.checks.symbolic.relevance.Relevance.houdini`) returns
one state ``s`` where every live candidate and property holds and one step breaks a candidate.
Every successor of ``s`` is then a witness against every candidate false in it, and every
successor where all the remaining candidates and properties still hold is a state of the same
kind, whose own successors are witnesses too. :class:`Forward` runs the protocol's own steps on
those states (batched, as the explicit search does) and returns every candidate false in one of
them with the state it came from. Measured (benchmarks/bench_forward.py, PROVE.md, 6 Dec, late
morning): Houdini at 3,2,2 over 1,200-1,300 enumerated families asks 49-90 queries instead of
118-127, in about the same time (the queries left are the harder ones); in a learning loop it
changes the course (which counterexamples come back), as another seed does.

Sound by Houdini's argument: a candidate false after a step from a state where every candidate
and property still holds is in no inductive subset of them. Only what is dropped early changes;
Houdini's last query (nothing more false) is still the solver's.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from deferral.checks.symbolic.truth import TruthTables
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model, State
from deferral.model.invariant import Lemma
from deferral.model.protocol import Protocol

if TYPE_CHECKING:
    from deferral.checks.explicit.expand import Expander

#: How far forward from a counterexample (steps), and at most how many states a level keeps.
DEPTH, WIDTH = 2, 256


class Forward:
    """The protocol at ``at`` run forward from Houdini's counterexamples (kernels compiled on first use)."""

    def __init__(self, protocol: Protocol, at: Bounds, signatures: Sequence[Any] = ()) -> None:
        self.protocol, self.at = protocol, at
        #: the enumeration's :class:`~deferral.checks.symbolic.clauses.Signature` objects: a family one of them
        #: made is judged from its literals' table (each literal once per state), not by its own function
        self.signatures = list(signatures)
        #: the other lemmas' truth tables, compiled once (the signatures' own, where there are signatures)
        self.tables = self.signatures[0].tables if self.signatures else TruthTables(protocol)
        self._ex: Expander | None = None
        self.broken = False  # the protocol's steps cannot run on arrays here: no drops (the solver's only)
        self.seconds = 0.0  # spent here in all
        self.dropped = 0  # candidates dropped here in all

    def _expander(self) -> "Expander":
        if self._ex is None:
            from deferral.checks.explicit.expand import Expander

            self._ex = Expander(Model(self.protocol, self.at), symmetry=False, fused=False)
        return self._ex

    def false_in(self, lemmas: Sequence[Lemma], rows: np.ndarray) -> np.ndarray:
        """Per lemma and state of ``rows``: is the lemma false there (at some parameter assignment)?
        A family a signature made from its literals' table (the literals evaluated once for all of its
        families: evaluating each family's own function was nearly all of this module's time); the
        others with one parameter list together (their reads shared)."""
        from deferral.checks.symbolic.vocabulary import truth_table

        out = np.zeros((len(lemmas), rows.shape[0]), dtype=bool)
        wide = rows.astype(np.int64, copy=False)
        left = list(range(len(lemmas)))
        for sig in self.signatures:
            mine = [k for k in left if lemmas[k].name in sig.where]
            if not mine:
                continue
            out[mine] = sig.falsity(self.at, wide, [lemmas[k].name for k in mine])
            taken = set(mine)
            left = [k for k in left if k not in taken]
        groups: dict[tuple, list[int]] = {}
        for k in left:
            groups.setdefault(tuple(lemmas[k].params), []).append(k)
        for params, ks in groups.items():
            table = truth_table(self.protocol, self.at, wide, [lemmas[k].fn for k in ks], params, self.tables)
            per = table.reshape(len(ks), -1, rows.shape[0])  # (lemmas, assignments, states)
            out[ks] = ~per.all(axis=1)
        return out

    def drops(self, state: State, alive: Sequence[Lemma]) -> dict[str, State]:
        """The candidates of ``alive`` false in a state reached from ``state`` (which every candidate and
        property must hold in) through states where every candidate not yet found false and every
        property holds, at most :data:`DEPTH` steps on; each with the state before the step that broke it."""
        if self.broken or not alive:
            return {}
        from deferral.checks.explicit.numpy_ops import NotVectorizable
        from deferral.model.context import StepError

        t0 = time.monotonic()
        try:
            got = self._drops(state, alive)
        except (NotVectorizable, StepError):
            self.broken = True
            got = {}
        self.seconds += time.monotonic() - t0
        self.dropped += len(got)
        return got

    def _drops(self, state: State, alive: Sequence[Lemma]) -> dict[str, State]:
        ex = self._expander()
        model = ex.model
        frontier = np.array([state], dtype=np.int64)
        live = list(alive)
        out: dict[str, State] = {}
        for _ in range(DEPTH):
            posts, parents = [], []
            for action in model.actions:
                idx = ex.enabled(frontier, action)
                if idx.size:
                    posts.append(ex.apply(frontier, idx, action))
                    parents.append(idx)
            if not posts:
                break
            rows = np.concatenate(posts).astype(np.int64, copy=False)
            parent = np.concatenate(parents)
            rows, first = np.unique(rows, axis=0, return_index=True)
            parent = parent[first]
            false = self.false_in(live, rows)
            kept: list[int] = []
            for k, (lem, where) in enumerate(zip(live, false)):
                hit = np.flatnonzero(where)
                if hit.size:
                    out[lem.name] = tuple(int(x) for x in frontier[parent[hit[0]]])
                else:
                    kept.append(k)
            live = [live[k] for k in kept]
            # the next level: the successors where every candidate left and every property holds
            ok = ~false[kept].any(axis=0)
            for prop in model.invariants:
                ok &= np.asarray(ex.holds(rows, prop), dtype=bool)
            frontier = rows[ok][:WIDTH]
            if not frontier.shape[0] or not live:
                break
        return out
