"""Choosing the explorer: the vectorized one when it is there, the plain one otherwise."""

from __future__ import annotations

from typing import Any

from deferral.checks.explicit.explore import explore
from deferral.checks.explicit.symmetry_guard import check_symmetry, exact_check
from deferral.model.variants import AsymmetricProtocol
from deferral.checks.results import ProgressFn, SearchResult
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.protocol import Protocol


def search(
    protocol: Protocol,
    bounds: Bounds,
    *,
    symmetry: bool = True,
    max_states: int | None = None,
    time_limit: float | None = None,
    progress: ProgressFn | None = None,
    workers: int | None = None,
    engine: str = "auto",
    symmetry_basis: str | None = None,
    until_all_violated: bool = False,
    **vectorized_only: Any,
) -> SearchResult:
    """Explore ``protocol`` at ``bounds`` with the fastest explorer that applies.

    ``engine`` is "auto" (vectorized, else plain), "vectorized" or "plain". Options only the
    vectorized search has (``memory_limit``, ``checkpoint_dir``, ``resume_dir``,
    ``checkpoint_every``: see :func:`~deferral.checks.explicit.vectorized.explore_vectorized`)
    are passed to it; the plain explorer ignores ``memory_limit`` and has no checkpoints. With
    ``symmetry``, a protocol that is not published is first checked to treat its VCPUs alike
    (:mod:`~deferral.checks.explicit.symmetry_guard`; AsymmetricProtocol otherwise), and the
    result's ``symmetry_basis`` says what that rests on; a caller that has checked a protocol with
    the same steps (its properties a subset) passes that basis instead. ``until_all_violated``:
    where every property is an invariant, stop once each is violated (see
    :func:`~deferral.checks.explicit.explore.explore`).
    """
    basis = (symmetry_basis or check_symmetry(protocol, bounds)) if symmetry else None
    options: dict[str, Any] = dict(symmetry=symmetry, max_states=max_states, time_limit=time_limit,
                                   progress=progress, until_all_violated=until_all_violated)
    # sampled (Z3 could not decide: such a variant runs on the plain engine): where it is cheap, every
    # state the plain engine expands is checked against every renaming, which makes the search exact
    check = exact_check(Model(protocol, bounds)) if basis == "sampled" else None
    renamings = check.check if check is not None else None
    if engine in ("auto", "vectorized"):
        try:
            from deferral.checks.explicit.vectorized import explore_vectorized
        except ImportError:
            if engine == "vectorized":
                raise
        else:
            result = explore_vectorized(protocol, bounds, workers=workers, renamings=renamings, **options,
                                        **vectorized_only)
            result.symmetry_basis = "checked" if renamings is not None and result.engine == "concrete" else basis
            return result
    result = explore(Model(protocol, bounds), renamings=renamings, **options)
    result.symmetry_basis = "checked" if renamings is not None else basis
    return result


def search_reduced_if_alike(protocol: Protocol, bounds: Bounds, **options: Any) -> SearchResult:
    """:func:`search` up to VCPU symmetry where the protocol treats its VCPUs alike, else without
    symmetry (same verdicts and shortest counterexamples, more states): for the commands that have no
    ``--no-symmetry`` to offer (regress, simulate's shrinking, prove's explicit route)."""
    try:
        return search(protocol, bounds, symmetry=True, **options)
    except AsymmetricProtocol:
        return search(protocol, bounds, symmetry=False, **options)
