"""docs/protocol.md is exactly what the model says (regenerate it when the model changes)."""

from __future__ import annotations

from pathlib import Path

from deferral.model import PUBLISHED, REFERENCE
from deferral.cli.describe import main, render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"


def test_committed_page_is_the_generated_one() -> None:
    assert PAGE.read_text(encoding="utf-8") == render(), (
        "docs/protocol.md differs from the model: run python -m deferral.cli.describe --write docs/protocol.md")


def test_page_names_every_variable_step_property_and_variant() -> None:
    text = render()
    for item in (*REFERENCE.variables, *REFERENCE.steps, *REFERENCE.properties):
        assert f"`{item.name}" in text
    for name in PUBLISHED:
        assert f"| `{name}` |" in text
    assert "| 2 | 1 | 1 | 1 | 6,319 | 3,163 |" in text


def test_check_flag_reports_a_stale_page(tmp_path: Path) -> None:
    stale = tmp_path / "protocol.md"
    stale.write_text(render().replace("3,163", "3,164"), encoding="utf-8")
    assert main(["--check", str(stale)]) == 1
    assert main(["--check", str(PAGE)]) == 0
