"""A proof by weakened shipped lemmas saved by ``--invariant-out`` (``deferral-weakened/1``) is read back by
``--lemmas``, bounded and ``--parametric``, without the weakening search; a malformed file is one line;
a bug is not proved by a safe change's saved lemmas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from deferral.checks.symbolic import weaken_files
from deferral.cli.main import main
from deferral.model import Bounds
from deferral.model.variants import load_variant_file

EXAMPLES = Path(__file__).parents[3] / "examples"
LAZY = str(EXAMPLES / "lazy_cur_clear.py")
SMALL = ("--vcpus", "2", "--pages", "1", "--frames", "1")


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["prove", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lazy_cur_clear proved by the weakened route at 2,1,1,1, its lemmas saved."""
    path = tmp_path_factory.mktemp("weakened") / "L.json"
    assert main(["prove", "--json", "--variant-file", LAZY, *SMALL, "--invariant-out", str(path)]) == 0
    return path


def test_the_weakened_route_saves_its_lemmas_by_name_and_literals(saved: Path) -> None:
    doc = json.loads(saved.read_text())
    assert doc["format"] == weaken_files.FORMAT and doc["route"] == "shipped-lemmas+weakened+houdini+induction"
    weak = [e for e in doc["lemmas"] if e.get("or")]
    assert weak == [{"lemma": "cur[k] names a VCPU exactly when pc[k] is Ipi", "or": ["pc[k] != Ipi"]}]
    assert doc["learned_at"] == [Bounds(2, 1, 1, 1).as_dict()]
    lemmas = weaken_files.load(doc, load_variant_file(LAZY), Bounds(2, 1, 1, 1))
    assert [x.name for x in lemmas] == [x.rstrip() for x in (line.split(": ", 1)[1] for line in doc["invariant"])]


def test_lemmas_reads_it_back_without_the_weakening_search(saved: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    again = tmp_path / "again.json"
    code = main(["prove", "--json", "--variant-file", LAZY, *SMALL, "--lemmas", str(saved), "--invariant-out", str(again)])
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert code == 0 and doc["route"] == "lemma-file+houdini+induction", doc.get("reason")
    assert [row["route"] for row in doc["stages"]] == ["lemma-file"]  # no weakening (nor any other route)
    assert doc["lemmas_learned_at"] == [Bounds(2, 1, 1, 1).as_dict()]
    assert json.loads(again.read_text())["lemmas"] == json.loads(saved.read_text())["lemmas"]  # it round-trips
    # a bounded proof's file says where it is known inductive (a line on stderr, the JSON on stdout untouched)
    assert f"{again}: inductive at N=2,V=1,F=1,Q=1 (what this proof checked)" in err


def test_parametric_reads_it_and_saves_its_own(saved: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "param.json"
    code, doc = _run(capsys, "--parametric", "--variant-file", LAZY, "--lemmas", str(saved),
                     "--invariant-out", str(mine), "--timeout", "120")
    assert code == 0 and doc["status"] == "proved", doc.get("reason")
    assert doc["for_every"] == ["vcpus", "pages", "frames"] and "deferral-weakened/1" in doc["lemma_source"]
    written = json.loads(mine.read_text())
    assert written["format"] == weaken_files.FORMAT and written["assumed_concrete"] == {"queue": 1, "spaces": 1}
    assert any(e.get("or") for e in written["lemmas"])
    code, doc = _run(capsys, "--parametric", "--variant-file", LAZY, "--lemmas", str(mine), "--timeout", "120")
    assert code == 0 and doc["status"] == "proved", doc.get("reason")


def test_a_bug_is_not_proved_by_a_safe_changes_saved_lemmas(saved: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "--variant", "drain-local-only", *SMALL, "--lemmas", str(saved), "--timeout", "60")
    assert code == 1 and doc["status"] == "violated"
    assert doc["stages"][0]["route"] == "lemma-file" and doc["stages"][0]["result"] != "proved"
    code, doc = _run(capsys, "--parametric", "--variant", "drain-local-only", "--lemmas", str(saved),
                     "--timeout", "60")
    assert code == 1 and doc["status"] == "violated" and doc["refuted_at"]  # refuted before any lemma is read


@pytest.mark.parametrize("edit,says", [
    (lambda d: d.update(lemmas="x"), "'lemmas' must be a non-empty list"),
    (lambda d: d["lemmas"].append({"lemma": "no such lemma"}), "has no lemma or invariant property 'no such lemma'"),
    (lambda d: d["lemmas"].append({"lemma": "waitret[k] implies pc[k] is Ipi", "or": ["pc[k] = Nowhere"]}),
     "'pc[k] = Nowhere' is not a literal"),
    (lambda d: d["lemmas"].append({"lemma": "waitret[k] implies pc[k] is Ipi", "or": "pc[k] != Ipi"}),
     "'or' must be a list of literal texts"),
    (lambda d: d["lemmas"].append(["not", "an", "object"]), "must be an object with a 'lemma' name"),
], ids=["lemmas", "name", "literal", "or", "entry"])
@pytest.mark.parametrize("parametric", [False, True], ids=["bounded", "parametric"])
def test_a_malformed_file_is_one_line_of_bad_input(saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                   edit: Any, says: str, parametric: bool) -> None:
    doc = json.loads(saved.read_text())
    edit(doc)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    code, out = _run(capsys, *(["--parametric"] if parametric else list(SMALL)), "--variant-file", LAZY,
                     "--lemmas", str(bad))
    message = out["error"]["message"]
    assert code == 2 and out["error"]["kind"] == "bad-input" and "\n" not in message
    assert message.startswith(f"--lemmas {bad}: {weaken_files.FORMAT}") and says in message, message
