"""Loading a user's variant file, and the one-line errors for broken ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from deferral.model import Bounds, VariantError, load_variant_file
from deferral.model.concrete import Model
from deferral.model.context import StepError

GOOD = '''
from deferral.model import REFERENCE

def zap(s, i, p):
    for k in range(s.N):
        with s.when(s.shadow[k][p] != 0):
            s.shadow[k][p] = s.gpt[p] if k == i else 0

VARIANT = REFERENCE.derive("drain-zaps", procedures={"resync": zap})
'''


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "variant.py"
    path.write_text(text)
    return path


def test_good_file_loads_and_records_its_source(tmp_path: Path) -> None:
    variant = load_variant_file(write(tmp_path, GOOD))
    assert variant.name == "drain-zaps"
    assert variant.source.endswith("variant.py")
    assert [(c.kind, c.what, c.name) for c in variant.changes] == [("replaced", "procedure", "resync")]


@pytest.mark.parametrize("text, message", [
    ("VARIANT = (", "syntax error at line 1"),
    ("raise RuntimeError('boom')", "line 1: RuntimeError: boom"),
    ("x = 1", "must define VARIANT"),
    ("VARIANT = 3", "VARIANT is a int, not a Protocol"),
    ("from deferral.model import REFERENCE\nVARIANT = REFERENCE.derive('x', remove_steps=['nope'])",
     "cannot remove step 'nope'"),
])
def test_broken_files_get_one_line_errors(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(VariantError) as info:
        load_variant_file(path)
    assert message in str(info.value)
    assert str(path) in str(info.value)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VariantError, match="no such file"):
        load_variant_file(tmp_path / "absent.py")


def test_step_writing_outside_domain_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '''
from deferral.model import REFERENCE
bad = REFERENCE.step("invlpg").with_effect(lambda s, i, p: s.pg.__setitem__(i, 7))
VARIANT = REFERENCE.derive("bad", replace_steps=[bad])
''')
    model = Model(load_variant_file(path), Bounds(2, 1, 1, 1))
    with pytest.raises(StepError, match=r"step invlpg\(0,0\) in bad .*wrote 7 to pg\[0\], outside its domain"):
        model.apply(model.initial, model.find_action("invlpg", (0, 0)))


def test_step_raising_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, '''
from deferral.model import REFERENCE
def boom(s, i):
    raise ZeroDivisionError("no")
VARIANT = REFERENCE.derive("boom", replace_steps=[REFERENCE.step("reload_cr3").with_effect(boom)])
''')
    model = Model(load_variant_file(path), Bounds(1, 1, 1, 1))
    with pytest.raises(StepError, match=r"step reload_cr3\(0\) in boom .*ZeroDivisionError: no"):
        model.apply(model.initial, model.find_action("reload_cr3", (0,)))


def test_assigning_an_undeclared_variable_says_to_declare_it(tmp_path: Path) -> None:
    """A user's ``s.flush_va = s.pg[i]`` without a ``Var("flush_va", ...)`` was told "assign to its elements,
    e.g. s.flush_va[i] = ...", as if the variable existed with an index (qa5)."""
    path = write(tmp_path, '''
from deferral.model import REFERENCE
def post(s, i):
    s.flush_va = s.pg[i]
VARIANT = REFERENCE.derive("undeclared", procedures={"post_ipis": post})
''')
    model = Model(load_variant_file(path), Bounds(2, 1, 1, 1))
    state = model.apply(model.initial, model.find_action("shootdown", (0, 0)))
    with pytest.raises(StepError) as err:
        model.apply(state, model.find_action("send_ipis", (0,)))
    assert "has no variable named 'flush_va'" in str(err.value), err.value
    assert "add_variables" in str(err.value) and "assign to its elements" not in str(err.value), err.value


def test_a_folder_given_as_a_variant_file_is_named_a_folder(tmp_path) -> None:
    import pytest as _pytest

    from deferral.model.variants import VariantError, load_variant_file

    with _pytest.raises(VariantError, match="is a folder, not a Python file"):
        load_variant_file(tmp_path)


def test_a_spaces_variant_imports_every_sort_from_the_model_package() -> None:
    """README's variant files import sorts from deferral.model; SPACE (address spaces) was only in
    deferral.model.schema."""
    from deferral.model import SPACE, VCPU  # noqa: F401
    from deferral.model.schema import SPACE as SCHEMA_SPACE

    assert SPACE is SCHEMA_SPACE


def test_a_variant_file_imports_a_module_beside_it(tmp_path: Path) -> None:
    """As Python runs a script: a user's change split into a helper module and the variant file."""
    (tmp_path / "zapping.py").write_text(
        "from deferral.model import VCPU\n\n"
        "def zap(s, i, p, sp):\n"
        "    for k in s.each(VCPU):\n"
        "        with s.when(s.shadow[k][sp][p] != 0):\n"
        "            s.shadow[k][sp][p] = s.ite(k == i, s.gpt[sp][p], 0)\n")
    variant = tmp_path / "drain_zaps_split.py"
    variant.write_text("from deferral.model import REFERENCE\nfrom zapping import zap\n\n"
                       "VARIANT = REFERENCE.derive('drain-zaps-split', procedures={'resync': zap})\n")
    protocol = load_variant_file(variant)
    assert protocol.name == "drain-zaps-split"
    assert str(tmp_path) not in sys.path  # the folder is on the import path only while the file loads
