"""Behaviours: the reachable states of a protocol, projected onto the variables two sides share.

``deferral regress`` compares what a candidate protocol can *do* with what its baseline
can do. A behaviour is a reachable state seen only through the protocol (non-ghost)
variables both protocols have, with the same domain: ghost bookkeeping (``lw``, ``req``,
``covers``) and variables one side lacks are left out. Counts are exact orbit counts
under VCPU symmetry (projection commutes with renaming VCPUs, because the only
VCPU-valued variables dropped are dropped whole).

The reachable states come from :mod:`deferral.checks.explicit.reachable` (the fast
search's own BFS, with parents, so a shortest path to any behaviour can be given).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from deferral.checks.explicit.packing import Packer
from deferral.checks.explicit.reachable import reachable
from deferral.checks.explicit.symmetry_guard import treats_vcpus_alike
from deferral.checks.results import Path
from deferral.model.bounds import Bounds
from deferral.model.protocol import Protocol
from deferral.model.schema import Layout, Var

# ---- projection ------------------------------------------------------------------------
def shared_variables(a: Protocol, b: Protocol) -> tuple[Var, ...]:
    """The non-ghost variables both protocols have with the same shape and domain (a's order)."""
    theirs = {v.name: v for v in b.variables}
    out = []
    for var in a.variables:
        other = theirs.get(var.name)
        if var.ghost or other is None or other.ghost:
            continue
        if (type(var) is type(other) and var.domain == other.domain and var.index == other.index
                and getattr(var, "capacity", None) == getattr(other, "capacity", None)):
            out.append(var)
    return tuple(out)


@dataclass
class Projection:
    """Projects a layout's rows onto some of its variables, with canonical keys."""

    source: Layout
    target: Layout
    columns: np.ndarray
    packer: Packer

    @classmethod
    def of(cls, source: Layout, variables: Sequence[Var]) -> "Projection":
        target = Layout(source.bounds, tuple(variables))
        columns = np.array([source.where[(s.var.name, s.index, s.part)] for s in target.slots], dtype=np.int64)
        return cls(source, target, columns, Packer(target, True))

    def keys(self, rows: np.ndarray) -> np.ndarray:
        """Canonical keys (up to VCPU symmetry) of the projected rows."""
        projected = np.ascontiguousarray(rows[:, self.columns]).astype(self.packer.dtype_rows)
        return self.packer.canonical_keys(projected)

    def show(self, key: np.ndarray) -> dict[str, Any]:
        row = self.packer.unpack(key.reshape(1))[0]
        return self.target.to_json(tuple(int(v) for v in row))


@dataclass
class BehaviourDiff:
    """What the candidate can reach that the baseline cannot, and the other way round."""

    bounds: Bounds
    variables: tuple[str, ...]
    baseline_states: int
    candidate_states: int
    baseline_behaviours: int
    candidate_behaviours: int
    added: int
    lost: int
    added_example: Path | None = None  # in the candidate: a shortest path to a new behaviour
    lost_example: Path | None = None  # in the baseline: a shortest path to a lost behaviour
    added_shown: dict[str, Any] | None = None
    lost_shown: dict[str, Any] | None = None
    #: each side's states counted up to VCPU symmetry (False: a side whose steps treat the VCPUs
    #: differently, enumerated without it: its count is of states, not orbits; behaviours are orbits on both)
    baseline_symmetric: bool = True
    candidate_symmetric: bool = True


def compare(baseline: Protocol, candidate: Protocol, bounds: Bounds, *,
            max_states: int | None = None) -> BehaviourDiff:
    """Reachable behaviours of both sides at ``bounds``, and shortest paths to a difference."""
    shared = shared_variables(baseline, candidate)
    base_alike, cand_alike = treats_vcpus_alike(baseline, bounds), treats_vcpus_alike(candidate, bounds)
    base = reachable(baseline, bounds, max_states=max_states, symmetry=base_alike)
    cand = reachable(candidate, bounds, max_states=max_states, symmetry=cand_alike)
    pb = Projection.of(base.model.layout, shared)
    pc = Projection.of(cand.model.layout, shared)
    kb, kc = pb.keys(base.rows), pc.keys(cand.rows)
    ub, uc = np.unique(kb), np.unique(kc)
    added_keys = np.setdiff1d(uc, ub, assume_unique=True)
    lost_keys = np.setdiff1d(ub, uc, assume_unique=True)
    diff = BehaviourDiff(bounds, tuple(v.name for v in shared), len(base), len(cand), int(ub.size),
                         int(uc.size), int(added_keys.size), int(lost_keys.size),
                         baseline_symmetric=base_alike, candidate_symmetric=cand_alike)
    if added_keys.size:
        n = _first_in(kc, added_keys)
        diff.added_example = cand.path_to(n)
        diff.added_shown = pc.show(kc[n])
    if lost_keys.size:
        n = _first_in(kb, lost_keys)
        diff.lost_example = base.path_to(n)
        diff.lost_shown = pb.show(kb[n])
    return diff


def _first_in(keys: np.ndarray, wanted: np.ndarray) -> int:
    """The least state number (= shallowest, BFS order) whose key is in ``wanted``."""
    return int(np.flatnonzero(np.isin(keys, wanted))[0])
