"""HTML reports: self-contained, every step shown, changes and the failing instance marked."""

from __future__ import annotations

import re
from pathlib import Path

from deferral.checks.explicit.search import search
from deferral.model import PUBLISHED, Bounds
from deferral.model.concrete import Model
from deferral.traces.html import search_page


def test_check_page_is_self_contained_and_shows_every_step(cli, tmp_path: Path) -> None:
    out = tmp_path / "check.html"
    r = cli("check", "--variant", "reload-no-drain", "--html", str(out))
    assert r.code == 1
    text = out.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing fetched at view time
    assert "<link" not in text
    assert len(re.findall(r'<tr class="step" data-n="\d+"', text)) == 6  # initial state + 5 steps
    assert "finish_reload(i=0)" in text
    assert 'class="f bad' in text  # the fields the failing instance read
    assert "no_stale_translation(0,0) fails" in text


def test_level_plot_counts_add_up_to_the_states(cli, tmp_path: Path) -> None:
    out = tmp_path / "ref.html"
    assert cli("check", "--html", str(out)).code == 0
    counts = [int(c.replace(",", "")) for c in
              re.findall(r"<title>level \d+: ([\d,]+) new states</title>", out.read_text(encoding="utf-8"))]
    result = search(PUBLISHED["reference"], Bounds())
    assert sum(counts) == result.states == 3_163
    assert len(counts) == result.depth + 1 and counts[0] == 1


def test_liveness_counterexample_is_explained() -> None:
    model = Model(PUBLISHED["wait-irqs-off"], Bounds())
    text = search_page(model, search(model.protocol, model.bounds))
    assert "shootdowns_can_complete: from this state no state where the goal holds is reachable" in text


def test_html_flag_refuses_a_folder(cli, tmp_path: Path) -> None:
    r = cli("check", "--html", str(tmp_path))
    assert r.code == 2 and "is a folder" in r.err


def test_prove_page_shows_the_bmc_counterexample(cli, tmp_path: Path) -> None:
    out = tmp_path / "prove.html"
    r = cli("prove", "--variant", "reload-no-drain", "--method", "bmc", "--depth", "6", "--html", str(out))
    assert r.code == 1
    text = out.read_text(encoding="utf-8")
    assert len(re.findall(r'<tr class="step" data-n="\d+"', text)) == 6
    assert "no_stale_translation" in text and 'class="f bad' in text
