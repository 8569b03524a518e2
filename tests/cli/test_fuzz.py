"""Fuzzing the command line: bad flags, numbers, paths, traces and variant files.

Every outcome must be a documented exit code, never a traceback, never the internal-error
code 70, and bad input is one line. Hypothesis generates flags, numbers and mutated
traces; the regression cases of issue 11 are spelled out. The CLI runs in this process
(:func:`fuzz_support.run_cli`); the budgets keep the whole module to well under a minute.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from fuzz_support import as_jsonl, assert_contract, counterexample_doc, run_cli

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- numbers and flags -------------------------------------------------------------------

NUMBERS = st.one_of(
    st.integers(min_value=-10**6, max_value=10**6).map(str),
    st.integers(min_value=10**20, max_value=10**30).map(str),
    st.sampled_from(["nan", "inf", "-inf", "NaN", "1e309", "-0", "0", "0.0", "1e-320", "", " ", "0x10",
                     "1_000", "٣", "²", "9" * 5000, "1" * 4301, "-" + "9" * 400, "1.5", "true", "None"]),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(alphabet=string.printable + "éß\u202e\x00", max_size=12),
)

#: flags that take a number, per subcommand; the others get a bad value so that nothing big runs
NUMBER_FLAGS = {
    "check": ["--vcpus", "--pages", "--frames", "--queue", "--max-states", "--time-limit", "--workers"],
    "prove": ["--vcpus", "--pages", "--frames", "--queue", "--depth", "--timeout"],
    "replay": ["--time-limit"],
    "regress": ["--time-limit"],
    "conform": ["--depth", "--random-walks", "--length", "--seed", "--max-steps", "--max-states", "--time-limit"],
    "engine run": ["--seconds", "--seed", "--grace", "--max-steps", "--vcpus"],
}


def _argv_for(command: str, flag: str, value: str) -> list[str]:
    """A command line where ``flag value`` is the only unknown: anything valid runs in milliseconds."""
    argv = command.split() + [flag, value]
    if command == "check":
        argv += ["--max-states", "40"] if flag != "--max-states" else []
        argv += ["--workers", "1"] if flag != "--workers" else []
    if command == "prove":
        argv += ["--method", "bmc"] + (["--depth", "1"] if flag != "--depth" else []) + ["--vcpus", "0"]
    if command == "replay":
        argv[1:1] = ["/nonexistent/trace.json"]
    if command == "regress":
        argv += ["--candidate", "no-such-variant"]
    if command == "conform":
        argv += ["--vcpus", "9"]
    if command == "engine run":
        argv += ["--variant", "nope"]
    return argv


@FUZZ
@given(command=st.sampled_from(sorted(NUMBER_FLAGS)), data=st.data(), value=NUMBERS)
def test_numbers_in_flags(command: str, data: Any, value: str) -> None:
    flag = data.draw(st.sampled_from(NUMBER_FLAGS[command]))
    if command == "prove" and flag == "--vcpus":
        assume(False)  # would run a real proof
    o = run_cli(*_argv_for(command, flag, value))
    assert_contract(o)
    if value.strip().lower() in ("nan", "inf", "-inf", "1e309") and flag in ("--time-limit", "--timeout"):
        assert o.code == 2, o


WORDS = st.sampled_from(["check", "prove", "replay", "engine", "conform", "regress", "variants", "run",
                         "--json", "--debug", "--help", "--variant", "--variant-file", "--trace-out",
                         "--no-symmetry", "--bounds", "--candidate", "--baseline", "--junit", "--html",
                         "--method", "--frobnicate", "-x", "--", "-", "reference", "drain-local-only",
                         "/proc/self/mem", "/dev/zero", "/", ""])


@FUZZ
@given(argv=st.lists(st.one_of(WORDS, st.text(max_size=8)), max_size=6))
def test_random_command_lines(argv: list[str]) -> None:
    # never a bare valid command that would run a long search or proof
    assume(not (argv and argv[0] in ("prove", "regress", "conform") and "--help" not in argv))
    assume(not (argv[:1] == ["check"] and "--help" not in argv))
    assume(not (argv[:2] == ["engine", "run"] and "--help" not in argv))
    o = run_cli(*argv)
    assert_contract(o)


# ---- output paths ------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/proc/nope/x.json", "/proc/self/status", "/sys/kernel/x", "/", "{dir}",
                                  "{file}/x.json", "{file}/a/b/c.json", "", "/dev/zero", "/proc"])
@pytest.mark.parametrize("argv", [["check", "--trace-out"], ["check", "--html"], ["prove", "--trace-out"],
                                  ["prove", "--invariant-out"], ["replay", "TRACE", "--html"],
                                  ["regress", "--candidate", "reference", "--junit"],
                                  ["engine", "run", "--seconds", "0.1", "--trace-out"]])
def test_bad_output_paths_exit_2_before_the_work(tmp_path: Path, argv: list[str], path: str) -> None:
    (tmp_path / "file").write_text("x")
    trace = tmp_path / "t.json"
    trace.write_text(counterexample_doc())
    target = path.format(dir=tmp_path, file=tmp_path / "file")
    o = run_cli(*[str(trace) if a == "TRACE" else a for a in argv], target)
    assert_contract(o)
    assert o.code == 2, o


# ---- traces ------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(min_value=10**30, max_value=10**40)
    | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, prefix + (i,))
    return out


def _replace(doc: Any, path: tuple[Any, ...], value: Any, delete: bool) -> Any:
    if not path:
        return value
    parent = doc
    for key in path[:-1]:
        parent = parent[key]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def _replay(tmp_path: Path, text: str | bytes, *extra: str) -> None:
    path = tmp_path / "fuzzed.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    o = run_cli("replay", str(path), *extra)
    assert_contract(o)


@FUZZ
@given(data=st.data(), value=JSON_VALUES, delete=st.booleans(), jsonl=st.booleans(), as_json=st.booleans())
def test_traces_with_a_field_replaced_or_deleted(tmp_path_factory: Any, data: Any, value: Any, delete: bool,
                                                 jsonl: bool, as_json: bool) -> None:
    doc = json.loads(counterexample_doc())
    path = data.draw(st.sampled_from(_paths(doc)))
    doc = _replace(doc, path, value, delete and bool(path))
    text = as_jsonl(doc) if jsonl and isinstance(doc, dict) else json.dumps(doc)
    _replay(tmp_path_factory.mktemp("t"), text, *(["--json"] if as_json else []))


@FUZZ
@given(data=st.data(), value=JSON_VALUES, delete=st.booleans())
def test_itf_traces_with_a_field_replaced_or_deleted(tmp_path_factory: Any, data: Any, value: Any,
                                                     delete: bool) -> None:
    from deferral.model.variants import PUBLISHED
    from deferral.traces.format import loads
    from deferral.traces.itf import to_itf

    doc = to_itf(loads(counterexample_doc()), PUBLISHED["drain-local-only"])
    doc = json.loads(json.dumps(doc))
    path = data.draw(st.sampled_from(_paths(doc)))
    doc = _replace(doc, path, value, delete and bool(path))
    _replay(tmp_path_factory.mktemp("t"), json.dumps(doc), "--variant", "drain-local-only")


@FUZZ
@given(cut=st.integers(min_value=0, max_value=10**6), jsonl=st.booleans(), junk=st.binary(max_size=8))
def test_truncated_and_corrupted_traces(tmp_path_factory: Any, cut: int, jsonl: bool, junk: bytes) -> None:
    text = counterexample_doc()
    if jsonl:
        text = as_jsonl(json.loads(text))
    raw = text.encode()
    raw = raw[: cut % (len(raw) + 1)] + junk
    _replay(tmp_path_factory.mktemp("t"), raw)


@FUZZ
@given(encoding=st.sampled_from(["utf-16", "utf-32", "latin-1", "cp1252", "utf-8-sig"]),
       noise=st.text(alphabet="éßü€\u2028", min_size=1, max_size=4))
def test_traces_in_other_encodings(tmp_path_factory: Any, encoding: str, noise: str) -> None:
    doc = json.loads(counterexample_doc())
    doc["note"] = noise
    try:
        raw = json.dumps(doc, ensure_ascii=False).encode(encoding)
    except UnicodeEncodeError:
        assume(False)
    _replay(tmp_path_factory.mktemp("t"), raw)


@pytest.mark.parametrize("name, text", [
    ("deep list", "[" * 100_000),
    ("deep object", '{"a":' * 50_000 + "1" + "}" * 50_000),
    ("deep steps", json.dumps({"format": "deferral-trace/1"})[:-1] + ', "steps": ' + "[" * 5000 + "]" * 5000 + "}"),
    ("5000-digit integer", '{"format": "deferral-trace/1", "variant": "reference", "x": ' + "7" * 5000 + "}"),
    ("4000-digit argument", None),
    ("leading blank line JSONL", None),
    ("expected.property as a list", None),
    ("state with a string", None),
    ("state out of domain", None),
    ("state with a huge integer", None),
    ("bool bounds", None),
    ("[[[[", "[[[["),
    ("empty", ""),
    ("NUL bytes", "\x00\x00"),
    ("lone surrogate", '{"format": "\ud800"}'),
    ("JSONL header only", '{"format": "deferral-trace-jsonl/1"}\n'),
    ("JSONL header not an object", '\n\n["deferral-trace-jsonl/1"]\n{"format": "deferral-trace-jsonl/1"}'),
])
def test_trace_regressions(tmp_path: Path, name: str, text: str | None) -> None:
    doc = json.loads(counterexample_doc())
    if name == "4000-digit argument":
        doc["steps"][0]["args"]["i"] = int("9" * 4000)
        text = json.dumps(doc)
    elif name == "leading blank line JSONL":
        text = "\n\n" + as_jsonl(doc)
        path = tmp_path / "t.jsonl"
        path.write_text(text)
        o = run_cli("replay", str(path))
        assert_contract(o)
        assert o.code == 0, o  # blank lines before the header are fine: it is the same trace
        return
    elif name == "expected.property as a list":
        doc["expected"]["property"] = ["no_stale_translation"]
        text = json.dumps(doc)
    elif name.startswith("state"):
        doc["steps"][1]["state"]["gpt"][0] = {"state with a string": "1", "state out of domain": 7,
                                              "state with a huge integer": 10**300}[name]
        text = json.dumps(doc)
    elif name == "bool bounds":
        doc["bounds"]["vcpus"] = True
        text = json.dumps(doc)
    path = tmp_path / "t.json"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    for extra in ([], ["--json"]):
        o = run_cli("replay", str(path), *extra)
        assert_contract(o)
        if name == "4000-digit argument":  # a well-formed step the model does not have: it diverges
            assert o.code == 4, o
            continue
        assert o.code == 2, o
        if extra:
            assert json.loads(o.out)["error"]["kind"] == "bad-input"


def test_reading_dev_zero_stops_at_the_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    from deferral.traces import format as trace_format

    monkeypatch.setattr(trace_format, "MAX_TRACE_BYTES", 2**20)  # the real limit is checked by benchmarks/
    o = run_cli("replay", "/dev/zero")
    assert_contract(o)
    assert o.code == 2 and "larger than" in o.err


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b'{"format": "deferral-lemmas/1", "lemmas": 5}',
                                     b"[" * 100_000, b'{"format": "deferral-lemmas/1", "lemmas": [{"params": 1}]}',
                                     b"9" * 5000])
def test_bad_lemma_files(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "lemmas.json"
    path.write_bytes(content)
    o = run_cli("prove", "--lemmas", str(path))
    assert_contract(o)
    assert o.code == 2, o


# ---- variant files -----------------------------------------------------------------------

HEADER = "from deferral.model import REFERENCE\nimport sys\n"
VARIANTS = {
    "syntax error": "def (:\n",
    "raises while loading": "raise ValueError('nope')\n",
    "exits 0 while loading": "import sys\nsys.exit(0)\n",
    "exits 1 while loading": "import sys\nsys.exit(1)\n",
    "SystemExit raised": "raise SystemExit('bye')\n",
    "no VARIANT": "X = 1\n",
    "VARIANT of a wrong type": "VARIANT = 'reference'\n",
    "VARIANT a class": "VARIANT = object\n",
    "derive with bad arguments": HEADER + "VARIANT = REFERENCE.derive('x', replace_steps=[42])\n",
    "step raises": HEADER + "def r(s, i, p):\n    raise KeyError('k')\nVARIANT = REFERENCE.derive('x', "
                            "procedures={'resync': r})\n",
    "step exits": HEADER + "def r(s, i, p):\n    sys.exit(0)\nVARIANT = REFERENCE.derive('x', procedures={'resync': r})\n",
    "step recurses": HEADER + "def r(s, i, p):\n    return r(s, i, p)\nVARIANT = REFERENCE.derive('x', "
                              "procedures={'resync': r})\n",
    "out-of-domain write": HEADER + "def r(s, i, p):\n    s.gpt[p] = 9\nVARIANT = REFERENCE.derive('x', "
                                    "procedures={'resync': r})\n",
    "index out of range": HEADER + "def r(s, i, p):\n    s.gpt[p + 5] = 0\nVARIANT = REFERENCE.derive('x', "
                                   "procedures={'resync': r})\n",
    "python if on a state value": HEADER + "def r(s, i, p):\n    if s.gpt[p]:\n        s.gpt[p] = 0\n"
                                           "VARIANT = REFERENCE.derive('x', procedures={'resync': r})\n",
    "guard raises": HEADER + "VARIANT = REFERENCE.derive('x', replace_steps=[REFERENCE.step('write')"
                             ".with_guard(lambda s, i, p, f: 1 / 0)])\n",
    "property exits": HEADER + "VARIANT = REFERENCE.derive('x', replace_properties=[REFERENCE.properties[0]"
                               ".__class__(**{**REFERENCE.properties[0].__dict__, 'predicate': "
                               "lambda s, *a: sys.exit(3)})])\n",
    "keyboard interrupt as error": HEADER + "def r(s, i, p):\n    raise GeneratorExit()\n"
                                            "VARIANT = REFERENCE.derive('x', procedures={'resync': r})\n",
    "not UTF-8": None,
}


@pytest.fixture(scope="module")
def trace_file(tmp_path_factory: Any) -> str:
    path = tmp_path_factory.mktemp("trace") / "cex.json"
    path.write_text(counterexample_doc())
    return str(path)


@pytest.mark.parametrize("command", ["check", "prove", "replay", "regress", "variants"])
@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_bad_variant_files_are_bad_input(tmp_path: Path, trace_file: str, command: str, name: str) -> None:
    if name == "python if on a state value" and command in ("check", "regress", "replay"):
        pytest.skip("a valid variant there (the plain explorer runs it): slow, not bad input")
    path = tmp_path / "variant.py"
    text = VARIANTS[name]
    if text is None:
        path.write_bytes(b"# \xff\xfe not utf-8\nVARIANT = 1\n")
    else:
        path.write_text(text)
    argv = {
        "check": ["check", "--variant-file", str(path), "--workers", "1", "--time-limit", "20"],
        "prove": ["prove", "--variant-file", str(path), "--method", "bmc", "--depth", "2", "--timeout", "20"],
        "replay": ["replay", trace_file, "--variant-file", str(path), "--time-limit", "20"],
        "regress": ["regress", "--candidate", str(path), "--bounds", "2,1,1,1", "--no-corpus", "--no-behaviours",
                    "--time-limit", "20"],
        "variants": ["variants", "--variant-file", str(path)],
    }[command]
    o = run_cli(*argv)
    assert_contract(o)
    loads_fine = name in ("step raises", "step exits", "step recurses", "out-of-domain write",
                          "index out of range", "python if on a state value", "guard raises", "property exits",
                          "keyboard interrupt as error")
    if command == "variants" and loads_fine:
        assert o.code == 0, o  # nothing of the variant runs: describing it is fine
    elif command == "prove" and name == "property exits":
        assert o.code in (0, 2), o  # prove covers invariants; the liveness property is never evaluated
    elif command == "prove" and name == "out-of-domain write":
        assert o.code == 2 and "outside its domain" in o.err and "drain_one" in o.err, o
    elif command == "replay" and name in ("property exits",):
        assert o.code == 2, o
    elif command == "replay" and loads_fine and name != "guard raises":
        # the trace's steps may not reach the broken procedure: judged normally, or bad input
        assert o.code in (0, 1, 2, 4), o
    else:
        assert o.code == 2, o


def test_a_variant_that_loops_in_every_command_ends_with_exit_3(tmp_path: Path, trace_file: str) -> None:
    path = tmp_path / "loops.py"
    path.write_text(HEADER + "def g(s, i, p, f):\n    while True:\n        pass\n"
                             "VARIANT = REFERENCE.derive('x', replace_steps=[REFERENCE.step('write').with_guard(g)])\n")
    for argv in (["check", "--variant-file", str(path), "--time-limit", "0.3"],
                 ["prove", "--variant-file", str(path), "--timeout", "0.3"],
                 ["replay", trace_file, "--variant-file", str(path), "--time-limit", "0.3"],
                 ["regress", "--candidate", str(path), "--time-limit", "0.3"]):
        o = run_cli(*argv)
        assert_contract(o)
        assert o.code == 3 and "loops.py" in o.err, o



OUT_OF_DOMAIN = {  # each writes a value outside its variable's domain in a reachable state: (file, step, variable)
    "frame > F": (HEADER + "def w(s, i, sp, p, f):\n    s.gpt[sp][p] = s.F + 1\n"
                           "VARIANT = REFERENCE.derive('x', replace_steps=[REFERENCE.step('write').with_effect(w)])\n",
                  "step write(0,0,0", "gpt[0]"),
    "pg = V + 3": (HEADER + "def w(s, i, sp, p, f):\n    REFERENCE.step('write').effect(s, i, sp, p, f)\n"
                            "    s.pg[i] = s.V + 3\n"
                            "VARIANT = REFERENCE.derive('x', replace_steps=[REFERENCE.step('write').with_effect(w)])\n",
                   "step write(0,0,0", "pg[0]"),
    # four steps in, where encode's cross-check of the first states does not look: found by the proof's search
    "frame > F when both wait": (HEADER + "from deferral.model.protocol import Step\n"
                                          "from deferral.model.reference import PC\n"
                                          "from deferral.model.schema import VCPU\n"
                                          "def g(s, i, k):\n"
                                          "    return (s.pc[i] == PC.SdWait) & (s.pc[k] == PC.SdWait) & (i != k)\n"
                                          "def w(s, i, k):\n    s.gpt[0][0] = s.F + 1\n"
                                          "VARIANT = REFERENCE.derive('x', add_steps=[Step('poke', (('i', VCPU), "
                                          "('k', VCPU)), g, w)])\n",
                                 "step poke(0,1)", "gpt[0]"),
}


@pytest.mark.parametrize("method", ["auto", "bmc", "induction", "pdr", "parametric"])
@pytest.mark.parametrize("name", sorted(OUT_OF_DOMAIN))
def test_prove_refuses_an_out_of_domain_write_with_every_method(tmp_path: Path, method: str, name: str) -> None:
    path = tmp_path / "variant.py"
    text, label, variable = OUT_OF_DOMAIN[name]
    path.write_text(text)
    how = ["--parametric"] if method == "parametric" else ["--method", method]
    o = run_cli("prove", "--variant-file", str(path), *how, "--timeout", "60")
    assert_contract(o)
    assert o.code == 2 and label in o.err and f"to {variable}, outside its domain" in o.err, o
    assert run_cli("check", "--variant-file", str(path)).code == 2


def test_prove_proves_a_variant_whose_out_of_domain_write_its_invariant_rules_out(tmp_path: Path) -> None:
    # the write needs req[i][s][p] with no last writer: unreachable, and a shipped lemma says so ("req[k][p]
    # implies p has a last writer"); before, an up-front bounded search for the write left it unknown
    path = tmp_path / "variant.py"
    path.write_text(HEADER + "from deferral.model.schema import VCPU\n"
                             "def w(s, i, sp, p, f):\n"
                             "    with s.when(s.req[i][sp][p] & (s.lw[sp][p] == s.none(VCPU))):\n"
                             "        s.pg[i] = s.V + 3\n"
                             "    REFERENCE.step('write').effect(s, i, sp, p, f)\n"
                             "VARIANT = REFERENCE.derive('x', replace_steps=[REFERENCE.step('write').with_effect(w)])\n")
    o = run_cli("prove", "--variant-file", str(path), "--method", "induction", "--timeout", "10", "--json")
    assert_contract(o)
    doc = json.loads(o.out)
    assert o.code == 0 and doc["status"] == "proved", o
    assert run_cli("check", "--variant-file", str(path)).code == 0  # it is unreachable: check finds none
