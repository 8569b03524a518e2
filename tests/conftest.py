"""Shared fixtures: small models and a CLI runner that captures exit code and output."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Callable

import pytest

from deferral.checks.results import SearchResult
from deferral.checks.explicit.search import search
from deferral.cli.main import main
from deferral.model import Bounds
from deferral.model.concrete import Model
from deferral.model.variants import PUBLISHED

SMALL = Bounds(2, 1, 1, 1)

# The suite runs many searches of 16,384 states or more (2,1,2,2, 3,1,1,1, ...) of many variants:
# with the background build of the compiled loop each would compile its own (1-2 s of a core,
# once per variant, bounds and code version: minutes in a fresh clone). Off here (the tests
# of test_fused.py set it), inherited by the CLI's subprocesses; results are identical either way.
os.environ.setdefault("DEFERRAL_BUILD_FROM", str(10**12))


@dataclass
class CliResult:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    def run(*argv: str) -> CliResult:
        code = main(list(argv))
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run


@pytest.fixture(scope="session")
def small_reference() -> Model:
    return Model(PUBLISHED["reference"], SMALL)


@lru_cache(maxsize=None)
def _cached_search(name: str, bounds: tuple[int, ...], symmetry: bool) -> SearchResult:
    return search(PUBLISHED[name], Bounds(*bounds), symmetry=symmetry)


def _searched(name: str, bounds: tuple[int, ...], symmetry: bool = True) -> SearchResult:
    return _cached_search(name, tuple(bounds), bool(symmetry))


@pytest.fixture(scope="session")
def searched() -> Callable[..., SearchResult]:
    """``searched(name, (N,V,F,Q), symmetry)``: a published variant explored once per session."""
    return _searched


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` (minutes each) run only with DEFERRAL_SLOW=1, so that the suite
    stays under ten minutes on two cores; benchmarks/README.md says how to run them."""
    if os.environ.get("DEFERRAL_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow: set DEFERRAL_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
