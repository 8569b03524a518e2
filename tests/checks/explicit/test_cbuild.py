"""When the fused C loop is built or loaded, and why it is missing is said, not swallowed (no
compiler, an unwritable cache; switched off with DEFERRAL_CC=0 is no problem to report)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from deferral.checks.explicit import cbuild, fused, fusedkey
from deferral.checks.explicit.expand import Expander
from deferral.checks.explicit.fusedkey import fused_key
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.variants import PUBLISHED


def _expander() -> Expander:
    return Expander(Model(REFERENCE, Bounds(2, 1, 1, 1)), True)


def test_a_missing_compiler_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cbuild.ENV_CC, "no-such-cc-here")
    ex = _expander()
    assert ex.fused(None) is None
    assert ex.fused_problem is not None and "no C compiler" in ex.fused_problem
    assert "no-such-cc-here" in ex.fused_problem


def test_switched_off_is_not_a_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(cbuild.ENV_CC, "0")
    ex = _expander()
    assert ex.fused(None) is None and ex.fused_problem is None


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_an_unwritable_cache_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("DEFERRAL_CACHE", str(blocker / "cache"))  # under a file: cannot be made
    ex = _expander()
    assert ex.fused(None) is None
    assert ex.fused_problem is not None and "cache folder" in ex.fused_problem


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_built_loop_has_no_problem() -> None:
    ex = _expander()
    assert ex.fused(None) is not None and ex.fused_problem is None


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_small_chunk_uses_the_loop_only_from_the_cache(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DEFERRAL_CACHE", str(tmp_path))
    assert _expander().fused(fused.MIN_ROWS - 1) is None  # not cached: a small chunk never compiles
    assert not list(tmp_path.glob("*.so"))
    assert _expander().fused(None) is not None  # built (what a big chunk does)
    assert len(list(tmp_path.glob("*.so"))) == 1
    assert _expander().fused(1) is not None  # remembered under its key: any chunk loads it, no C generated
    for entry in tmp_path.glob("key-*.json"):  # without the key's entry: found by its source, when built
        entry.unlink()
    ex = _expander()
    assert ex.fused(fused.MIN_ROWS - 1) is None  # a small chunk does not look
    ex.start_fused()
    ex.finish_fused()
    assert ex.fused(1) is not None and not ex.fused_compiled  # found in the cache, not compiled again
    assert _expander().fused(1) is not None  # and that remembered the key again


@pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")
def test_a_background_build_can_be_cancelled(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DEFERRAL_CACHE", str(tmp_path))
    ex = _expander()
    ex.start_fused()
    ex.finish_fused(wait=False)  # cancelled (or done already): no compiler left running, nothing half-made
    assert not list(tmp_path.glob("tmp*")) and ex.fused_problem is None
    assert len(list(tmp_path.glob("*.so"))) == (1 if ex.fused(1) is not None else 0)


def _key(model: Model, symmetry: bool = True) -> str | None:
    return fused_key(model, symmetry, model.protocol.properties, "uint16", "cc", cbuild.FLAGS)


def test_the_key_follows_what_the_c_is_made_of() -> None:
    base = _key(Model(REFERENCE, Bounds(2, 1, 1, 1)))
    assert base is not None and base == _key(Model(REFERENCE, Bounds(2, 1, 1, 1)))
    assert base != _key(Model(REFERENCE, Bounds(2, 1, 1, 1)), symmetry=False)
    assert base != _key(Model(REFERENCE, Bounds(2, 1, 2, 1)))
    others = {_key(Model(p, Bounds(2, 1, 1, 1))) for p in PUBLISHED.values()}
    assert len(others) == len(PUBLISHED) and base in others
    namespace: dict[str, Any] = {}
    exec("def guard(s, *args):\n    return False\n", namespace)  # typed in: no source file, no key
    typed = REFERENCE.derive("typed", replace_steps=[dataclasses.replace(REFERENCE.step("write"),
                                                                         guard=namespace["guard"])])
    assert _key(Model(typed, Bounds(2, 1, 1, 1))) is None


def test_deferrals_own_files_count_in_the_key_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Installed (not editable), deferral lives in site-packages: its files are still hashed, numpy's are not."""
    root = "/opt/venv/lib/python3.11/site-packages"
    monkeypatch.setattr(fusedkey, "_PACKAGE", fusedkey.Path(f"{root}/deferral"))
    assert not fusedkey._is_library(f"{root}/deferral/checks/explicit/numpy_ops.py")
    assert fusedkey._is_library(f"{root}/numpy/core/numeric.py")
    monkeypatch.setattr(fusedkey, "_PACKAGE", fusedkey.Path("/home/me/deferral"))  # editable: a venv inside the clone
    assert not fusedkey._is_library("/home/me/deferral/checks/explicit/numpy_ops.py")
    assert fusedkey._is_library("/home/me/deferral/.venv/lib/python3.11/site-packages/numpy/core/numeric.py")
