"""The trace corpus: every file states its outcome, and has it under the variant it names."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from deferral.model import REFERENCE
from deferral.model.concrete import Model
from deferral.model.variants import PUBLISHED
from deferral.traces.corpus import (CORPUS_DIR, EVENTS, PUBLISHED_CEX, interleaving, judge, load_corpus,
                                    observer)
from deferral.traces.format import TraceError
from deferral.traces.replay import replay

CORPUS = {c.name: c for c in load_corpus()}
ROOT = Path(__file__).resolve().parents[2]


def test_corpus_covers_every_published_variant_and_the_reference_events():
    assert set(CORPUS) == {f"cex-{v}" for v in PUBLISHED if v != "reference"} | {f"ref-{e}" for e in EVENTS}


@pytest.mark.parametrize("name", sorted(CORPUS))
def test_trace_has_its_expected_outcome_under_its_own_variant(name):
    trace = CORPUS[name].trace
    verdict = judge(trace, PUBLISHED[trace.variant], strict=True)  # recorded states must match too
    assert verdict.matches(trace.expected), verdict.describe()


@pytest.mark.parametrize("variant", sorted(PUBLISHED_CEX))
def test_counterexamples_have_protocol_md_bounds_and_lengths(variant):
    trace = CORPUS[f"cex-{variant}"].trace
    bounds, prop, length = PUBLISHED_CEX[variant]
    assert trace.bounds == bounds and trace.expected == {"outcome": "violates", "property": prop}
    if length is not None:
        assert len(trace.steps) == length


def test_reference_interleavings_pass_on_the_reference_but_counterexamples_do_not_all():
    outcomes = {name: judge(c.trace, REFERENCE).outcome for name, c in CORPUS.items()}
    assert all(outcomes[f"ref-{e}"] == "passes" for e in EVENTS)
    assert outcomes["cex-reload-no-drain"] == "cannot-replay"  # finish_reload waits for the drain
    assert "violates" not in outcomes.values()


@pytest.mark.parametrize("event", sorted(EVENTS))
def test_reference_interleaving_really_has_its_event_and_is_regenerated_identically(event):
    trace = CORPUS[f"ref-{event}"].trace
    watch = observer(event)
    report = replay(trace.__class__(trace.variant, trace.bounds,
                                    [s.__class__(s.step, s.args) for s in trace.steps]), watch)
    model = Model(watch, trace.bounds)
    assert report.ok
    assert report.final_state[model.layout.slot("seen")] == 1
    assert interleaving(event).dumps() == (CORPUS_DIR / f"ref-{event}.json").read_text(encoding="utf-8")


def test_load_corpus_rejects_a_trace_without_expected_outcome(tmp_path):
    trace = CORPUS["ref-ipi-during-sdwait"].trace
    doc = trace.__class__(**{**trace.__dict__, "expected": None})
    doc.save(tmp_path / "x.json")
    with pytest.raises(TraceError, match="expected outcome"):
        load_corpus(tmp_path)


def test_corpus_is_package_data():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    setuptools = config["tool"]["setuptools"]
    assert "deferral.traces.corpus" in setuptools["packages"]
    assert setuptools["package-dir"]["deferral.traces.corpus"] == "traces/corpus"
    assert "*.json" in setuptools["package-data"]["deferral.traces.corpus"]
    # the installed package (editable or not) carries exactly the repository's corpus files
    shipped = sorted(p.name for p in CORPUS_DIR.glob("*.json"))
    assert shipped and shipped == sorted(p.name for p in (ROOT / "traces" / "corpus").glob("*.json"))
