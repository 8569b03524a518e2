"""How a fresh process loads a protocol again (checks/symbolic/recipe.py)."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deferral.checks.symbolic import recipe
from deferral.model import PUBLISHED, REFERENCE
from deferral.model.variants import load_variant_file

EXAMPLES = Path(__file__).parents[3] / "examples"


def test_a_protocol_digest_is_the_same_in_another_process_and_changes_with_what_a_step_closes_over() -> None:
    """digest: a published variant and a variant file digest alike in a fresh process (no address or hash
    seed in it); a step that closes over another value digests otherwise."""
    path = EXAMPLES / "lazy_tlb_ipi.py"
    code = ("from deferral.checks.symbolic.recipe import digest; "
            "from deferral.model.variants import PUBLISHED, load_variant_file; "
            f"print(digest(PUBLISHED['wait-irqs-off']), digest(load_variant_file({str(path)!r})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONHASHSEED": "12345"}).stdout.split()
    assert out == [recipe.digest(PUBLISHED["wait-irqs-off"]), recipe.digest(load_variant_file(path))]

    def guarded(limit: int):  # type: ignore[no-untyped-def]
        return lambda s, i: s.pc[i] != limit

    one = REFERENCE.derive("reference", replace_steps=[REFERENCE.steps[0].with_guard(guarded(1))])
    two = REFERENCE.derive("reference", replace_steps=[REFERENCE.steps[0].with_guard(guarded(2))])
    assert len({recipe.digest(p) for p in (REFERENCE, one, two)}) == 3


def test_only_a_published_variant_or_a_variant_files_protocol_has_a_recipe(tmp_path: Path) -> None:
    """recipe: a published variant (also checking some properties only) and a file's VARIANT can be loaded
    again; a protocol built in this process cannot; a published name on another definition, or a file
    changed since, is refused."""
    only = REFERENCE.checking_only([REFERENCE.properties[0].name])
    assert recipe.load(recipe.recipe(only)).properties == only.properties  # type: ignore[arg-type]
    assert recipe.recipe(REFERENCE.derive("my-change", replace_steps=[REFERENCE.steps[0]])) is None
    imposter = dataclasses.replace(PUBLISHED["wait-irqs-off"], name="reference")
    with pytest.raises(ValueError, match="does not define the protocol reference"):
        recipe.load(recipe.recipe(imposter))  # type: ignore[arg-type]
    path = tmp_path / "v.py"
    path.write_text("from deferral.model import REFERENCE\nVARIANT = REFERENCE.derive('mine')\n")
    loaded = load_variant_file(path)
    assert recipe.load(recipe.recipe(loaded)).name == "mine"  # type: ignore[arg-type]
    path.write_text("from deferral.model import REFERENCE\nVARIANT = REFERENCE.derive('mine').checking_only([])\n")
    with pytest.raises(ValueError, match="does not define the protocol mine"):
        recipe.load(recipe.recipe(loaded))  # type: ignore[arg-type]
