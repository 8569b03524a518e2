"""README's two-command recipe for a proof for every N, V, F works as written (qa3, 5 Dec, night).

The recipe saved the lemmas of `prove --no-shipped-lemmas` (route enumerated+houdini+induction at
2,1,1,1), which hold there and not for every N, V, F: its second command said unknown (exit 3) after
52 s for examples/lazy_cur_clear.py. With `--infer-first` (as docs/proving.md had it) it proves.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from deferral.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def recipe() -> list[list[str]]:
    """The commands of README's block after "gets a proof for every N, V, F in two commands"."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"in two commands:\n\n```sh\n(.*?)```", text, re.S)
    assert block is not None, "README's two-command recipe is gone"
    return [shlex.split(line.split("#")[0]) for line in block.group(1).splitlines() if line.strip()]


@pytest.mark.slow  # about a minute and a half: the learned route, then Houdini over uninterpreted sorts
def test_the_two_command_recipe_proves_for_every_n_v_f(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    first, second = recipe()
    swap = {"L.json": str(tmp_path / "L.json")}
    assert first[0] == second[0] == "deferral"
    assert main([swap.get(a, a) for a in first[1:]]) == 0
    assert main([swap.get(a, a) for a in second[1:]]) == 0


def test_the_recipe_learns_with_the_route_whose_lemmas_generalize() -> None:
    """The first command learns families to reuse for every N, V, F: by the learned route first
    (`--infer-first`) when without shipped lemmas, as the slow test above shows is needed."""
    first, second = recipe()
    assert "--invariant-out" in first and "--lemmas" in second and "--parametric" in second
    assert "--no-shipped-lemmas" not in first or "--infer-first" in first
