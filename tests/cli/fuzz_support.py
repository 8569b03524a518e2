"""Helpers of the fuzz suite: run the CLI in-process and judge an outcome against the exit-code contract."""

from __future__ import annotations

import contextlib
import io
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from deferral.cli.main import main
from deferral.model import Bounds
from deferral.model.concrete import Model
from deferral.model.variants import PUBLISHED
from deferral.checks.explicit.search import search
from deferral.traces.replay import path_to_trace

#: Every exit code the README documents (70 is documented too, but it is always a bug).
DOCUMENTED = {0, 1, 2, 3, 4, 130}


@dataclass
class Outcome:
    argv: list[str]
    code: int
    out: str
    err: str


def run_cli(*argv: str) -> Outcome:
    """``deferral ARGV`` in this process, with stdout and stderr captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return Outcome(list(argv), code, out.getvalue(), err.getvalue())


def assert_contract(o: Outcome, allowed: set[int] = DOCUMENTED) -> None:
    """A documented exit code, never a traceback, and bad input or a limit in exactly one line."""
    shown = f"deferral {' '.join(o.argv)[:300]} -> {o.code}\nstderr: {o.err[-1500:]}"
    assert o.code in allowed, shown
    assert "Traceback" not in o.err and "Traceback" not in o.out, shown
    errors = [line for line in o.err.splitlines()  # a deprecation notice is not an error
              if line.startswith("deferral: ") and not line.startswith("deferral: notice:")]
    assert len(errors) <= 1, shown
    if o.code == 2:  # bad input: one line saying why (a limit, 3, may be a verdict "unknown" on stdout)
        assert errors and o.err.splitlines()[-1] == errors[0], shown
    if o.code in (2, 3) and "--json" in o.argv:
        doc = json.loads(o.out)
        assert "error" not in doc or doc["exit_code"] == o.code, shown


@lru_cache(maxsize=None)
def counterexample_doc(variant: str = "drain-local-only") -> str:
    """A real counterexample of ``variant`` at N=2,V=1,F=1,Q=1 as deferral-trace/1 text."""
    model = Model(PUBLISHED[variant], Bounds(2, 1, 1, 1))
    result = search(model.protocol, model.bounds)
    outcome = next(o for o in result.outcomes if o.path is not None)
    trace = path_to_trace(model, outcome.path, outcome.name,
                          expected={"outcome": "violates", "property": outcome.name})
    return trace.dumps()


def as_jsonl(doc: dict[str, Any]) -> str:
    """The JSON Lines form of a trace document."""
    head = {k: v for k, v in doc.items() if k != "steps"}
    head["format"] = "deferral-trace-jsonl/1"
    return "".join(json.dumps(x) + "\n" for x in [head, *doc.get("steps", [])])
