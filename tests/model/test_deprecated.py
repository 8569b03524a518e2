"""The older notation still loads, with one notice per construct on stderr; the shipped model uses none."""

from __future__ import annotations

from pathlib import Path

import pytest

from deferral.model import REFERENCE
from deferral.model.deprecated import notices
from deferral.model.variants import PUBLISHED, load_variant_file

ROOT = Path(__file__).resolve().parents[2]


def test_old_loops_and_one_space_procedure_give_one_notice_each(capsys: pytest.CaptureFixture[str]) -> None:
    load_variant_file(ROOT / "tests" / "model" / "data" / "drain_zaps_one_space.py")
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err
    assert all(line.startswith("deferral: notice: ") and "deprecated notation" in line for line in err)
    assert any("range(s.N)" in line and "s.each(VCPU)" in line for line in err)
    assert any("one-space notation: procedure resync" in line for line in err)


def test_bound_as_none_and_integer_pc_constants_and_one_space_reads(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    load_variant_file(ROOT / "tests" / "model" / "data" / "tickets.py")
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "s.N as none; write s.none(VCPU)" in err
    old = tmp_path / "old.py"
    old.write_text("from deferral.model import REFERENCE\n"
                   "from deferral.model.reference import IDLE, SDWAIT\n"
                   "def guard(s, i, p):\n"
                   "    return (s.pc[i] == IDLE) & (s.shadow[i][p] == s.gpt[p])\n"
                   "VARIANT = REFERENCE.derive('old')\n")
    load_variant_file(old)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2, err  # IDLE and SDWAIT: one construct; shadow and gpt: one construct
    assert "line 2" in err[0] and "integer PC constant IDLE" in err[0] and "PC.Idle" in err[0]
    assert "line 4" in err[1] and "one-space notation shadow[.][.]" in err[1]


def test_the_new_notation_and_the_shipped_model_give_no_notice(capsys: pytest.CaptureFixture[str]) -> None:
    for example in sorted((ROOT / "examples").glob("*.py")):
        load_variant_file(example)
        assert capsys.readouterr().err == "", example
    assert notices(REFERENCE, ROOT / "model" / "reference.py", REFERENCE) == []
    for protocol in PUBLISHED.values():
        assert notices(protocol, ROOT / "model" / "variants.py", REFERENCE) == []
