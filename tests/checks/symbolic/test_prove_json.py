"""``prove --json`` says which route settled it, where its lemmas come from and were learned, and
why an unknown is unknown, as text."""

from __future__ import annotations

import json
from typing import Any

import pytest

from deferral.checks.symbolic.prove import ProveResult
from deferral.cli.main import main
from deferral.model import Bounds
from deferral.traces.report.document import prove_json


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, Any]]:
    code = main(["prove", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def _text(doc: dict[str, Any]) -> None:
    """Every reason and log line is plain text (never a bytes repr)."""
    for line in [doc["reason"] or "", *doc["log"]]:
        assert isinstance(line, str) and "b'" not in line and 'b"' not in line, line


def test_shipped_route_says_its_lemmas_are_hand_written(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "--vcpus", "2", "--timeout", "120")
    assert code == 0 and doc["route"] == "shipped-lemmas+houdini+induction"
    assert doc["lemma_source"] == "hand-written (model/invariant.py)" and doc["lemmas_learned_at"] is None
    _text(doc)


def test_refutation_has_no_lemmas_and_the_shortest_length(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "--variant", "reload-no-drain", "--vcpus", "2", "--timeout", "120")
    assert code == 1 and doc["route"] in ("bmc", "explicit-search") and doc["depth"] == 5  # model/expected.py
    assert doc["lemma_source"] is None and doc["lemmas_learned_at"] is None and doc["trace"]
    _text(doc)


def test_unknown_says_why(capsys: pytest.CaptureFixture[str]) -> None:
    code, doc = _run(capsys, "--vcpus", "2", "--method", "bmc", "--depth", "2")
    assert code == 3 and doc["status"] == "unknown" and doc["reason"] == "no violation and no failing step up to depth 2"
    _text(doc)


@pytest.mark.parametrize("route, learned, inferred, source", [
    ("inferred+houdini+induction", [Bounds(2, 1, 1, 1), Bounds(3, 1, 1, 1)], None, "learned from reachable"),
    ("pdr-generalized+houdini+induction", None, Bounds(2, 1, 1, 1), "Spacer's clauses"),
    ("lemma-file+houdini+induction", [Bounds(1, 1, 1, 1)], None, "a lemmas file"),
    ("pdr", None, None, "Spacer at the requested bounds"),
])
def test_every_learning_route_says_where_it_learned(route: str, learned: Any, inferred: Any, source: str) -> None:
    res = ProveResult("reference", Bounds(3, 1, 1, 1), "auto", "proved", 1.0, route=route, invariant=["x"],
                      learned_at=learned, inferred_at=inferred)
    doc = prove_json(res, None)
    assert doc["route"] == route and doc["lemma_source"].startswith(source)
    want = [b.as_dict() for b in learned] if learned else [inferred.as_dict()] if inferred else None
    assert doc["lemmas_learned_at"] == want


def test_auto_starts_no_route_after_its_timeout() -> None:
    """A safe change auto cannot prove in time: every route after the limit still got half a second
    from left(), and the bmc slices and Spacer started after it (lazy_cur_clear at 6,3,3,3 with 1 s:
    5.8 s), past the command's hard limit (timeout + 2 s + 5%), which ends it with a bare 'time
    limit reached' instead of the routes' reasons. Checked by when routes start, not by the total
    (the encoding before the routes takes seconds on a loaded machine)."""
    import time as _time
    from pathlib import Path

    from deferral.checks.symbolic.prove import prove
    from deferral.model import load_variant_file

    variant = load_variant_file(Path(__file__).parents[3] / "examples" / "lazy_cur_clear.py")
    notes: list[tuple[float, str]] = []
    began = _time.monotonic()
    r = prove(variant, Bounds(6, 3, 3, 3), "auto", timeout=1,
              note=lambda text: notes.append((_time.monotonic(), text)))
    assert r.status == "unknown" and r.reason
    late = [text for t, text in notes if t > began + 1 + 0.5
            and text.startswith(("auto: bounded model checking", "auto: Spacer"))]
    assert not late, late


def test_a_proof_names_the_properties_it_proves(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    """The terminal said "proved no_stale_translation, no_tag_of_running" for a user's variant with an
    invariant of its own (qa3), and the JSON named none (``property`` null): a CI job reading it could
    not tell what was proved. Now ``properties`` lists them, as ``prove --parametric --json`` does."""
    variant = tmp_path / "own.py"
    variant.write_text(
        "from deferral.model import REFERENCE, VCPU, PC, Property\n"
        "def waitret_in_ipi(s, k):\n"
        "    return s.not_(s.waitret[k]) | (s.pc[k] == PC.Ipi)\n"
        "VARIANT = REFERENCE.derive('own-prop', add_properties=[\n"
        "    Property('waitret_in_ipi', 'invariant', (('k', VCPU),), waitret_in_ipi)])\n")
    code, doc = _run(capsys, "--variant-file", str(variant), "--timeout", "120")
    assert code == 0 and doc["status"] == "proved"
    assert doc["properties"] == ["no_stale_translation", "waitret_in_ipi"]
    code, doc = _run(capsys, "--variant", "reload-no-drain", "--timeout", "120")
    assert code == 1 and doc["properties"] == ["no_stale_translation"] and doc["property"] == "no_stale_translation"
