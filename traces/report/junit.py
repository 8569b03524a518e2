"""Results as JUnit XML for CI systems: a testcase per property (and bounds, and corpus trace)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from deferral.checks.results import Path, SearchResult

if TYPE_CHECKING:  # the prover (Z3) is imported only by those who prove
    from deferral.checks.symbolic.parametric import ParametricResult
    from deferral.checks.symbolic.prove import ProveResult


def check_junit(result: SearchResult) -> str:
    """``check --junit``: one testcase per property; a violation is a failure with its
    shortest counterexample, a property a limit left unknown is skipped."""
    where = f"{result.variant} at {result.bounds.short()}"
    suites = ET.Element("testsuites", name=f"deferral check {where}")
    suite = ET.SubElement(suites, "testsuite", name="properties")
    for o in result.outcomes:
        text = f"{o.name} [{o.kind}] {o.status}: {result.states:,} states, depth {result.depth}"
        _case(suite, f"properties.{result.bounds.short()}", f"{o.name} at {result.bounds.short()}",
              {"violated": "failure", "unknown": "skipped"}.get(o.status, "passed"),
              failure=(f"{o.name} violated in {where}", "violation",
                       f"shortest counterexample ({o.length} steps):\n{steps(o.path)}"),
              skipped=f"{text} (stopped by {result.stopped_by})", out=text)
    return _document(suites, suite)


def prove_junit(res: "ProveResult") -> str:
    """``prove --junit``: one testcase for the invariant properties; violated is a failure with the
    counterexample, unknown is skipped with the reason."""
    where = f"{res.variant} at {res.bounds.short()}"
    suites = ET.Element("testsuites", name=f"deferral prove {where}")
    suite = ET.SubElement(suites, "testsuite", name="proof")
    props = ", ".join(p.name for p in res.model.invariants) if res.model is not None else "invariants"
    text = f"{res.status} (route {res.route or res.method}, {res.elapsed_s:.2f} s)"
    _case(suite, f"proof.{res.bounds.short()}", f"{props} at {res.bounds.short()} by {res.method}",
          {"violated": "failure", "unknown": "skipped"}.get(res.status, "passed"),
          failure=(f"{res.prop} violated in {where}", "violation",
                   f"{'shortest counterexample' if res.shortest else 'counterexample'} ({res.depth} steps"
                   f"{'' if res.shortest else '; ' + res.reason}):\n{steps(res.path)}"),
          skipped=f"{text}: {res.reason}", out="\n".join([text, *(res.invariant or [])]))
    return _document(suites, suite)


def parametric_junit(res: "ParametricResult") -> str:
    """``prove --parametric --junit``: one testcase per proof obligation; a counterexample to
    induction or an undecided query is skipped with its reason (unknown is never a pass); a claim
    refuted at a small instance is one failure with its shortest counterexample."""
    fixed = ",".join(f"{k}={v}" for k, v in res.concrete.items())
    suites = ET.Element("testsuites", name=f"deferral prove --parametric {res.variant} at {fixed}")
    suite = ET.SubElement(suites, "testsuite", name="obligations")
    r = res.refutation
    if r is not None:
        where = f"{res.variant} at {r.bounds.short()}"
        _case(suite, f"parametric.{fixed}", f"{r.outcome.name} for every {', '.join(res.open_bounds)}", "failure",
              failure=(f"{r.outcome.name} violated in {where}", "violation",
                       f"shortest counterexample ({r.length} steps):\n{steps(r.outcome.path)}"),
              skipped="", out=res.verdict)
    for o in res.obligations:
        why = o.reason or ("not preserved: " + "; ".join(o.broken) if o.broken else o.status)
        _case(suite, f"parametric.{fixed}", o.name, "passed" if o.status == "proved" else "skipped",
              failure=("", "", None), skipped=f"{o.status}: {why}", out=f"{o.status} ({o.elapsed_s:.2f} s)")
    return _document(suites, suite)


def regress_junit(report: Any) -> str:
    """``regress --junit``: a testcase per (property, bounds) and per corpus trace of a regress report."""
    suites = ET.Element("testsuites", name=f"deferral regress {report.baseline.name} -> {report.candidate.name}")
    verdicts = ET.SubElement(suites, "testsuite", name="properties")
    for row in report.verdicts:
        text = f"baseline {row.baseline}, candidate {row.candidate}"
        _case(verdicts, f"properties.{row.bounds.short()}", f"{row.prop} at {row.bounds.short()}",
              "failure" if row.lost else "skipped" if row.candidate in ("unknown", "absent") else "passed",
              failure=(f"{row.prop} lost at {row.bounds.short()}: {text}", "regression",
                       f"{report.candidate.name} has no property {row.prop}" if row.candidate == "absent" else
                       f"shortest counterexample ({row.candidate_length} steps) in {report.candidate.name}:\n"
                       f"{steps(row.candidate_path)}"),
              skipped=text, out=text)
    if report.stopped_by:  # the rows above are what the limit let it reach: never a silent pass
        what = f"stopped by {report.stopped_by}; not checked: {', '.join(report.not_done)}"
        _case(verdicts, "properties", "time limit" if report.stopped_by == "time-limit" else report.stopped_by,
              "skipped", failure=("", "", None), skipped=what, out=what)
    _count(verdicts)
    traces = ET.SubElement(suites, "testsuite", name="corpus")
    for crow in report.corpus:
        text = f"baseline {crow.baseline.describe()}; candidate {crow.candidate.describe()}"
        _case(traces, "corpus", crow.name,
              "failure" if crow.lost else "skipped" if crow.candidate.outcome == "cannot-replay" else "passed",
              failure=(f"{crow.name}: {text}", "regression", None), skipped=text, out=text)
    if report.proofs:  # --prove: one testcase per Q, S; a candidate proof not reached is never a pass
        _count(traces)
        proofs = ET.SubElement(suites, "testsuite", name="proofs")
        for prow in report.proofs:
            text = f"baseline {prow.baseline.verdict}; candidate {prow.candidate.verdict}"
            ref = prow.candidate.refutation
            _case(proofs, "proofs", f"for every N, V, F at {prow.where}",
                  "failure" if prow.lost else "passed" if prow.candidate.status == "proved" else "skipped",
                  failure=(f"proof lost at {prow.where}: {prow.candidate.verdict}", "regression",
                           steps(ref.outcome.path) if ref is not None else None), skipped=text, out=text)
        return _document(suites, proofs)
    return _document(suites, traces)


def _case(suite: ET.Element, classname: str, name: str, verdict: str, *, failure: tuple[str, str, str | None],
          skipped: str, out: str) -> None:
    """One testcase: ``verdict`` failure (message, type, text), skipped (message) or passed (out)."""
    case = ET.SubElement(suite, "testcase", classname=classname, name=name)
    if verdict == "failure":
        message, kind, text = failure
        ET.SubElement(case, "failure", message=message, type=kind).text = text
    elif verdict == "skipped":
        ET.SubElement(case, "skipped", message=skipped)
    else:
        ET.SubElement(case, "system-out").text = out


def steps(path: Path | None) -> str:
    """A path's steps, one numbered line each (empty without a path)."""
    if path is None:
        return ""
    return "\n".join(f"{n}. {a.label()}" for n, (a, _) in enumerate(path[1:], start=1) if a is not None)


def _document(suites: ET.Element, last: ET.Element) -> str:
    _count(last)
    ET.indent(suites)
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def _count(suite: ET.Element) -> None:
    """Set a test suite's tests/failures/skipped attributes from the cases it holds."""
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(case.find("failure") is not None for case in cases)))
    suite.set("skipped", str(sum(case.find("skipped") is not None for case in cases)))
