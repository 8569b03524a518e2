"""``deferral regress`` end to end: exit codes, JSON, JUnit XML, and broken variant files."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from deferral.traces.corpus import load_corpus

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "drain_zaps.py"

BROKEN = {
    "syntax": ("from deferral.model import REFERENCE\nVARIANT = REFERENCE.derive('x',\n",
               ["syntax error at line 2"]),
    "raises": ("from deferral.model import REFERENCE\n"
               "def boom(s, i, p, sp):\n    raise RuntimeError('boom in resync')\n"
               "VARIANT = REFERENCE.derive('raiser', procedures={'resync': boom})\n",
               ["step write(", "raised RuntimeError: boom in resync"]),
    "domain": ("from deferral.model import REFERENCE\n"
               "def bad(s, i, p, sp):\n    s.shadow[i][sp][p] = s.gpt[sp][p] + 5\n"
               "VARIANT = REFERENCE.derive('out-of-domain', procedures={'resync': bad})\n",
               ["step write(", "wrote 5 to shadow[", "outside its domain"]),
    "missing-var": ("from deferral.model import REFERENCE\n"
                    "def bad(s, i, p, sp):\n    s.shadow[i][sp][p] = s.nosuchvar[p]\n"
                    "VARIANT = REFERENCE.derive('missing-name', procedures={'resync': bad})\n",
                    ["step write(", "nosuchvar"]),
    "missing-name": ("from deferral.model import REFERENCE\nVARIANT = REFERENCE.derive('x', procedures={'resync': zap})\n",
                     ["line 2", "NameError", "zap"]),
    "no-variant": ("X = 1\n", ["must define VARIANT"]),
}


def write(tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(BROKEN[name][0])
    return path


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_regress_broken_candidate_is_one_line_exit_2(cli, tmp_path, name):
    path = write(tmp_path, name)
    result = cli("regress", "--candidate", str(path), "--bounds", "2,1,1,1", "--no-corpus")
    assert result.code == 2
    lines = [line for line in result.err.strip().splitlines()  # deprecation notices are not errors
             if not line.startswith("deferral: notice:")]
    assert len(lines) == 1, result.err
    assert str(path) in lines[0] or path.name in lines[0]
    for needle in BROKEN[name][1]:
        assert needle in lines[0]
    if name in ("raises", "domain", "missing-var"):  # runtime errors name the state too
        assert "state {" in lines[0] and "'gpt'" in lines[0]
    assert "Traceback" not in result.err


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_check_broken_variant_file_is_one_line_exit_2(cli, tmp_path, name):
    path = write(tmp_path, name)
    result = cli("check", "--variant-file", str(path))
    assert result.code == 2
    lines = [line for line in result.err.strip().splitlines()  # deprecation notices are not errors
             if not line.startswith("deferral: notice:")]
    assert len(lines) == 1, result.err
    for needle in BROKEN[name][1]:
        assert needle in lines[0]
    assert "Traceback" not in result.err


def test_regress_reference_against_itself(cli):
    result = cli("regress", "--candidate", "reference", "--bounds", "2,1,1,1", "--json")
    assert result.code == 0
    doc = json.loads(result.out)
    assert doc["regressed"] is False
    assert all(v["change"] == "same" for v in doc["verdicts"])
    assert all(c["change"] == "same" for c in doc["corpus"])
    [beh] = doc["behaviours"]
    assert beh["baseline_states"] == beh["candidate_states"] == 3163  # PROTOCOL.md orbit count
    assert beh["added"] == beh["lost"] == 0


def test_regress_lost_property_exit_1_with_junit(cli, tmp_path):
    junit = tmp_path / "out" / "regress.xml"
    result = cli("regress", "--baseline", "reference", "--candidate", "reload-no-drain",
                 "--bounds", "2,1,1,1", "1,1,2,1", "--junit", str(junit))
    assert result.code == 1
    assert "REGRESSION" in result.out and "no_stale_translation" in result.out
    root = ET.parse(junit).getroot()
    cases = root.findall(".//testcase")
    assert len(cases) == 2 * 2 + len(load_corpus())  # (property, bounds) pairs + corpus traces
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert "no_stale_translation at N=2,V=1,F=1,Q=1" in failed
    assert "no_stale_translation at N=1,V=1,F=2,Q=1" in failed
    assert "cex-reload-no-drain" in failed  # the corpus trace now violates under the candidate
    assert not list(tmp_path.glob("out/.*.tmp"))


def test_regress_fixed_candidate_is_not_a_regression(cli):
    result = cli("regress", "--baseline", "drain-local-only", "--candidate", "reference",
                 "--bounds", "2,1,1,1", "--json", "--no-behaviours")
    assert result.code == 0
    doc = json.loads(result.out)
    changes = {v["property"]: v["change"] for v in doc["verdicts"]}
    assert changes["no_stale_translation"] == "fixed"
    corpus = {c["trace"]: c for c in doc["corpus"]}
    assert corpus["cex-drain-local-only"]["baseline"]["outcome"] == "violates"
    assert corpus["cex-drain-local-only"]["candidate"]["outcome"] == "passes"


def test_regress_worked_example(cli):
    result = cli("regress", "--candidate", str(EXAMPLE), "--bounds", "2,1,2,1", "--json", "--no-corpus")
    assert result.code == 0
    doc = json.loads(result.out)
    assert doc["candidate"]["changes"] == ["replaced procedure resync"]
    [beh] = doc["behaviours"]
    assert beh["added"] == 0 and beh["lost"] > 0  # zapping loses behaviours, adds none at F=2
    assert beh["lost_example"]["steps"]


@pytest.mark.parametrize("argv, needle", [
    (["--candidate", "no-such-variant"], "unknown variant"),
    (["--candidate", "reference", "--bounds", "2,1,1"], "four integers"),
    (["--candidate", "reference", "--bounds", "7,1,1,1"], "--vcpus"),
    (["--candidate", "/no/such/file.py"], "no such file"),
    ([], "--candidate"),
])
def test_regress_bad_input(cli, argv, needle):
    result = cli("regress", *argv)
    assert result.code == 2
    assert needle in result.err and len(result.err.strip().splitlines()) == 1


def test_regress_corpus_folder_with_a_bad_trace(cli, tmp_path):
    (tmp_path / "bad.json").write_text("{not json")
    result = cli("regress", "--candidate", "reference", "--bounds", "1,1,1,1", "--corpus", str(tmp_path))
    assert result.code == 2 and "bad.json" in result.err


def test_a_bound_only_the_candidate_declares(cli, tmp_path):
    """A candidate that adds a bound: its positional bounds need every value up to it (S too),
    the message says so; a bound the baseline lacks is one line of bad input, not an internal
    error; the default matrix runs both (the added bound at its default)."""
    variant = tmp_path / "with_b.py"
    variant.write_text("from deferral.model import REFERENCE\nfrom deferral.model.bounds import Bound\n"
                       "VARIANT = REFERENCE.derive('with-b', add_bounds=[Bound('batch', 'B', 1, 3, 1, 'a batch')])\n")
    quick = ["--no-corpus", "--no-behaviours"]
    short = cli("regress", "--candidate", str(variant), "--bounds", "2,1,1,1", *quick)
    assert short.code == 2 and "bounds must be 6 integers N,V,F,Q,S,B, or NAME=VALUE pairs" in short.err
    lacking = cli("regress", "--candidate", str(variant), "--bounds", "N=2,B=2", *quick)
    assert lacking.code == 2 and len(lacking.err.strip().splitlines()) == 1
    assert "unknown bound(s) batch" in lacking.err and "give bounds both reference and with-b declare" in lacking.err
    assert cli("regress", "--candidate", str(variant), "--bounds", "2,1,1,1,1,1", *quick).code == 0


def test_no_corpus_is_not_claimed_kept_when_none_was_replayed(cli) -> None:
    r = cli("regress", "--candidate", "reference", "--bounds", "1,1,1,1", "--no-corpus", "--no-behaviours")
    assert r.code == 0 and "no regression" in r.out
    assert "corpus" not in r.out.split("no regression", 1)[1]


@pytest.mark.parametrize("candidate, code", [("drain-local-only", 1), ("reference", 3)])
def test_a_time_limit_reports_the_bounds_it_checked(cli, tmp_path, candidate, code) -> None:
    """--time-limit cut a regress with a bare 'time limit reached' (exit 3, nothing else), even after
    a first bound set had shown a lost property: now the bounds checked are reported (JSON, JUnit,
    terminal), a property lost there is a regression (1), and the bounds not checked are named."""
    argv = ["regress", "--candidate", candidate, "--bounds", "2,1,1,1", "2,2,2,2", "--no-corpus",
            "--no-behaviours", "--time-limit", "1"]
    junit = tmp_path / "r.xml"
    r = cli(*argv, "--json", "--junit", str(junit))
    doc = json.loads(r.out)
    assert r.code == code and doc["exit_code"] == code, r.out
    assert doc["complete"] is False and doc["stopped_by"] == "time-limit"
    assert doc["not_checked"] == [{"vcpus": 2, "pages": 2, "frames": 2, "queue": 2}]
    checked = {(v["property"], v["candidate"]) for v in doc["verdicts"] if v["bounds"]["pages"] == 1}
    assert ("no_stale_translation", "violated" if code == 1 else "holds") in checked
    assert all(v["bounds"]["pages"] == 1 for v in doc["verdicts"])
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    assert cases["time limit"].find("skipped") is not None and "N=2,V=2,F=2,Q=2" in \
        cases["time limit"].find("skipped").get("message")
    r = cli(*argv)
    assert r.code == code
    assert "not checked: at N=2,V=2,F=2,Q=2" in r.out
    assert ("REGRESSION" in r.out) == (code == 1) and "no regression" not in r.out


def test_a_candidate_that_removes_the_invariant_regresses_with_every_output(cli, tmp_path: Path) -> None:
    """A candidate without no_stale_translation (which every corpus trace names) is a regression
    (exit 1), in the text, JUnit and HTML alike. Before: exit 2 ("the trace names property
    'no_stale_translation', which no-inv does not have"), and without the corpus and HTML,
    exit 0 with "no regression: ... keeps every property"."""
    path = tmp_path / "no_inv.py"
    path.write_text("from deferral.model import REFERENCE\n"
                    "VARIANT = REFERENCE.derive('no-inv', remove_properties=['no_stale_translation'])\n")
    xml, page = tmp_path / "r.xml", tmp_path / "r.html"
    r = cli("regress", "--candidate", str(path), "--bounds", "2,1,1,1", "--junit", str(xml), "--html", str(page),
            "--time-limit", "120")
    assert r.code == 1, r
    assert "REGRESSION: no-inv loses no_stale_translation at N=2,V=1,F=1,Q=1 (it has no such property)" in r.out
    assert "no-inv has no property no_stale_translation" in xml.read_text()
    assert "no_stale_translation" in page.read_text()
