"""A pytest plugin (entry point ``deferral``): tests that read like the claim they make.

Loaded automatically once ``deferral`` is installed. Use the plain functions::

    from deferral.checks.pytest_plugin import assert_holds, assert_violates

    def test_my_change_is_safe():
        assert_holds("my_variant.py", bounds=(2, 1, 1, 1))

    def test_it_reintroduces_the_bug():
        assert_violates("drain-local-only", "no_stale_translation", within=8, bounds=(2, 1, 1, 1))

    def test_my_change_is_safe_for_any_number_of_vcpus():
        assert_proved("my_variant.py", queue=1, spaces=2)

or the ``deferral`` fixture, which has the same methods. A variant is a published
name, a :class:`~deferral.model.Protocol`, or the path of a variant file (a relative one
is read from pytest's working folder, else from the calling test file's folder). A failing
claim raises ``AssertionError`` whose message shows the counterexample step by step.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import pytest

from deferral.checks.results import Outcome, SearchResult
from deferral.checks.explicit.search import search
from deferral.model.bounds import Bounds
from deferral.model.concrete import Model
from deferral.model.protocol import Protocol
from deferral.model.variants import PUBLISHED, get_variant, load_variant_file
from deferral.traces.report.terminal import path_text

BoundsLike = Bounds | Sequence[int] | str


def as_protocol(variant: Protocol | str | Path, near: Path | None = None) -> Protocol:
    """A Protocol, a published variant's name, or a variant file's path: a relative one is read from
    pytest's working folder, else (not there) from ``near`` (the calling test file's folder)."""
    if isinstance(variant, Protocol):
        return variant
    text = str(variant)
    path = Path(text)
    if not path.is_absolute() and not path.exists() and near is not None and (near / path).is_file():
        return load_variant_file(str(near / path))
    if isinstance(variant, Path) or text.endswith(".py") or (text not in PUBLISHED and path.is_file()):
        return load_variant_file(text)
    return get_variant(text)


def _caller_folder() -> Path | None:
    """The folder of the first caller outside this module (the test file that makes the claim)."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename == __file__:
        frame = frame.f_back  # type: ignore[assignment]
    return None if frame is None else Path(frame.f_code.co_filename).resolve().parent


def as_bounds(bounds: BoundsLike) -> Bounds:
    if isinstance(bounds, Bounds):
        return bounds
    if isinstance(bounds, str):
        return Bounds.parse(bounds)
    return Bounds(*bounds)


def check(variant: Protocol | str | Path, bounds: BoundsLike = (2, 1, 1, 1)) -> tuple[Model, SearchResult]:
    """The search's result and the model it ran on."""
    result = search(as_protocol(variant, _caller_folder()), as_bounds(bounds), symmetry=True)
    assert result.model is not None
    return result.model, result


def assert_holds(variant: Protocol | str | Path, bounds: BoundsLike = (2, 1, 1, 1),
                 properties: Sequence[str] | None = None) -> SearchResult:
    """Every property (or the ones named) holds at ``bounds``; else show the counterexample."""
    model, result = check(variant, bounds)
    wanted = [o for o in result.outcomes if properties is None or o.name in properties]
    missing = set(properties or ()) - {o.name for o in result.outcomes}
    if missing:
        raise AssertionError(f"{model.protocol.name} has no property {', '.join(sorted(missing))}")
    broken = [o for o in wanted if o.status != "holds"]
    if broken:
        parts = [path_text(model, o) if o.status == "violated" else
                 f"{o.name} is {o.status} in {model.protocol.name} at {model.bounds.short()}" for o in broken]
        raise AssertionError("\n".join(parts))
    return result


def assert_violates(variant: Protocol | str | Path, prop: str, within: int | None = None,
                    bounds: BoundsLike = (2, 1, 1, 1)) -> Outcome:
    """``prop`` is violated at ``bounds``, by a shortest counterexample of at most ``within`` steps."""
    model, result = check(variant, bounds)
    try:
        outcome = result.outcome(prop)
    except KeyError:
        raise AssertionError(f"{model.protocol.name} has no property {prop!r}") from None
    if outcome.status != "violated":
        raise AssertionError(f"{prop} {outcome.status} in {model.protocol.name} at {model.bounds.short()} "
                             f"({result.states:,} states explored): expected a violation")
    if within is not None and outcome.length is not None and outcome.length > within:
        raise AssertionError(f"expected a counterexample within {within} steps; the shortest has "
                             f"{outcome.length}:\n{path_text(model, outcome)}")
    return outcome


def assert_proved(variant: Protocol | str | Path, queue: int = 1, spaces: int = 1, timeout: float = 120.0) -> Any:
    """The invariants hold for every number of VCPUs, pages and frames at ``queue`` and ``spaces``
    (``prove --parametric``'s routes, at most ``timeout`` seconds): a counterexample at a small
    instance fails with its steps, and so does unknown, with its reason (a claim no solver decided
    is not a pass). Returns the proof (its lemmas, obligations, where they came from)."""
    from deferral.checks.symbolic.parametric_routes import prove_for_every

    protocol = as_protocol(variant, _caller_folder())
    if protocol.without_invariants() is not None:
        raise AssertionError(protocol.without_invariants())
    bounds = Bounds.parse(f"Q={queue}" + (f",S={spaces}" if spaces != 1 else ""), protocol.bound_decls)
    res, also = prove_for_every(protocol, bounds, limit=timeout)
    if res.refutation is not None:
        r = res.refutation
        raise AssertionError(f"{protocol.name} is not safe for every N, V, F: {res.reason}\n"
                             + path_text(r.model, r.outcome))
    if res.status != "proved":
        raise AssertionError(f"{protocol.name} not proved for every N, V, F at Q={queue}, S={spaces}: "
                             + "; ".join(x for x in (res.verdict, also) if x))
    return res


class Deferral:
    """The ``deferral`` fixture: the claims as methods."""

    assert_holds = staticmethod(assert_holds)
    assert_violates = staticmethod(assert_violates)
    assert_proved = staticmethod(assert_proved)
    protocol = staticmethod(as_protocol)


@pytest.fixture
def deferral() -> Deferral:
    """Claims about protocol variants: ``deferral.assert_holds(...)``, ``deferral.assert_violates(...)``,
    ``deferral.assert_proved(...)``."""
    return Deferral()
