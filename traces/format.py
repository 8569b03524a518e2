"""The trace formats: ``deferral-trace/1`` (one JSON document) and its JSON Lines form.

A trace names the protocol variant and bounds it was taken under, optionally the
property it violates and the outcome it is expected to have, its initial state, and its
steps, each with the step's name, its arguments by parameter name, and (optionally for
engine traces) the full state after it::

    {"format": "deferral-trace/1", "variant": "reference", "variant_source": "built-in",
     "bounds": {"vcpus": 2, "pages": 1, "frames": 1, "queue": 1},   (+ other declared bounds)
     "property": "no_stale_translation",
     "expected": {"outcome": "violates", "property": "no_stale_translation"},
     "initial": {...state...},
     "steps": [{"step": "write", "args": {"i": 0, "p": 0, "f": 1}, "state": {...}}, ...]}

The JSON Lines form (``deferral-trace-jsonl/1``) has the same header fields on its first
line (without ``steps``) and one step object per following line, flushed as written, so
that a file cut short by a crash is still valid up to its last complete line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from deferral.model.bounds import Bounds, BoundsError, loose
from deferral.traces.files import write_atomic

FORMAT = "deferral-trace/1"
#: The largest trace file read (a long engine run with snapshots is tens of megabytes).
MAX_TRACE_BYTES = 256 * 2**20
FORMAT_JSONL = "deferral-trace-jsonl/1"
OUTCOMES = ("violates", "passes")


class TraceError(ValueError):
    """A trace file that is not a well-formed deferral trace."""


@dataclass
class TraceStep:
    step: str
    args: dict[str, int]
    state: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"step": self.step, "args": self.args}
        if self.state is not None:
            out["state"] = self.state
        return out


@dataclass
class Trace:
    variant: str
    bounds: Bounds
    steps: list[TraceStep]
    initial: dict[str, Any] | None = None
    prop: str | None = None  # the property the trace violates, when it is a counterexample
    expected: dict[str, Any] | None = None  # {"outcome": "violates"|"passes", "property": ...}
    variant_source: str = "built-in"
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def header(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "format": FORMAT,
            "variant": self.variant,
            "variant_source": self.variant_source,
            "bounds": self.bounds.as_dict(),
            "property": self.prop,
        }
        if self.expected is not None:
            out["expected"] = self.expected
        if self.note:
            out["note"] = self.note
        out.update(self.extra)
        if self.initial is not None:
            out["initial"] = self.initial
        return out

    def to_json(self) -> dict[str, Any]:
        out = self.header()
        out["steps"] = [s.to_json() for s in self.steps]
        return out

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=1) + "\n"

    def save(self, path: str | Path) -> None:
        """Write the trace as one JSON document, atomically."""
        write_atomic(path, self.dumps())


def read_limited(path: str | Path, max_bytes: int, what: str = "") -> str:
    """The UTF-8 text of ``path``, at most ``max_bytes`` long; any defect is a one-line TraceError.

    Reads at most ``max_bytes + 1`` bytes, so /dev/zero or a huge file cannot exhaust memory.
    """
    name = f"{what} {path}".strip()
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise TraceError(f"{name}: no such file") from None
    except IsADirectoryError:
        raise TraceError(f"{name}: is a folder, not a file") from None
    except OSError as exc:
        raise TraceError(f"{name}: cannot read it: {exc.strerror or exc}") from None
    if len(data) > max_bytes:
        raise TraceError(f"{name}: larger than {max_bytes // 2**20} MiB, not a file this tool reads")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise TraceError(f"{name}: not UTF-8 text (byte {exc.object[exc.start]:#04x} at offset {exc.start})") \
            from None


def load(path: str | Path) -> Trace:
    """Read a trace in either form; any defect is a one-line :class:`TraceError`."""
    return loads(read_limited(path, MAX_TRACE_BYTES), str(path))


def parse_json(text: str, name: str) -> Any:
    """``json.loads``, with every way it fails (nesting, huge numbers) a one-line TraceError."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceError(f"{name}: not JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); "
                         "the file may be truncated") from None
    except RecursionError:
        raise TraceError(f"{name}: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise TraceError(f"{name}: unreadable JSON value ({exc})") from None


def loads(text: str, name: str = "<trace>") -> Trace:
    stripped = text.lstrip()
    if not stripped:
        raise TraceError(f"{name}: empty file, not a deferral trace")
    try:
        doc = parse_json(text, name)
    except TraceError:
        try:
            head = json.loads(stripped.splitlines()[0])
        except (ValueError, RecursionError):
            head = None
        if isinstance(head, dict) and head.get("format") == FORMAT_JSONL:
            return _from_jsonl(text, name)
        raise
    if isinstance(doc, dict) and doc.get("format") == FORMAT_JSONL:
        return _from_jsonl(text, name)
    return _from_doc(doc, name)


def _from_doc(doc: Any, name: str) -> Trace:
    from deferral.traces.itf import ItfError, from_itf, is_itf

    if is_itf(doc):  # Apalache's Informal Trace Format
        try:
            doc = from_itf(doc, name)
        except ItfError as exc:
            raise TraceError(str(exc)) from None
        except (TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
            raise TraceError(f"{name}: malformed ITF trace ({type(exc).__name__}: {exc})") from None
    if not isinstance(doc, dict):
        raise TraceError(f"{name}: not a deferral trace (the top level is not a JSON object)")
    fmt = doc.get("format")
    if fmt is None and ("states" in doc or "vars" in doc):  # ITF, but cut
        missing = "vars" if "states" in doc else "states"
        raise TraceError(f"{name}: an ITF trace without '{missing}' (ITF needs 'vars' and 'states')")
    if fmt != FORMAT:
        raise TraceError(f"{name}: not a deferral trace (format is {fmt!r}, expected {FORMAT!r})")
    trace = _header(doc, name)
    steps = doc.get("steps")
    if not isinstance(steps, list):
        raise TraceError(f"{name}: 'steps' must be a list")
    trace.steps = [_step(s, name, n + 1) for n, s in enumerate(steps)]
    return trace


def _from_jsonl(text: str, name: str) -> Trace:
    lines = text.splitlines()
    first = next(n for n, line in enumerate(lines) if line.strip())  # blank lines may come first
    head = parse_json(lines[first], f"{name}: line {first + 1}")
    if not isinstance(head, dict):
        raise TraceError(f"{name}: line {first + 1}: the header is not a JSON object")
    trace = _header(head, name)
    complete = text.endswith("\n")
    number = 0
    for n in range(first + 1, len(lines)):
        line = lines[n]
        if not line.strip():
            continue
        try:
            obj = parse_json(line, f"{name}: line {n + 1}")
        except TraceError:
            if n == len(lines) - 1 and not complete:
                trace.extra["truncated"] = True  # the writer died mid-line: keep what is whole
                break
            raise
        number += 1
        trace.steps.append(_step(obj, name, number))
    return trace


def _header(doc: dict[str, Any], name: str) -> Trace:
    variant = doc.get("variant")
    if not isinstance(variant, str) or not variant:
        raise TraceError(f"{name}: 'variant' must be a non-empty string")
    raw = doc.get("bounds")
    if not isinstance(raw, dict) or not {"vcpus", "pages", "frames", "queue"} <= set(raw):
        raise TraceError(f"{name}: 'bounds' must be an object with vcpus, pages, frames, queue "
                         "(and any other bound its protocol declares)")
    try:
        bounds = loose(raw)  # bounds beyond the four are checked against the protocol on replay
    except BoundsError as exc:
        raise TraceError(f"{name}: bad bounds: {exc}") from None
    prop = doc.get("property")
    if prop is not None and not isinstance(prop, str):
        raise TraceError(f"{name}: 'property' must be a string or null")
    expected = doc.get("expected")
    if expected is not None:
        if not isinstance(expected, dict) or expected.get("outcome") not in OUTCOMES:
            raise TraceError(f"{name}: 'expected' must be {{\"outcome\": \"violates\"|\"passes\", ...}}")
        if expected["outcome"] == "violates" and not isinstance(expected.get("property"), str):
            raise TraceError(f"{name}: an expected violation must name its 'property'")
        if expected.get("property") is not None and not isinstance(expected["property"], str):
            raise TraceError(f"{name}: 'expected.property' must be a property name (a string)")
    initial = doc.get("initial")
    if initial is not None and not isinstance(initial, dict):
        raise TraceError(f"{name}: 'initial' must be a state object")
    source = doc.get("variant_source", "built-in")
    if not isinstance(source, str):
        raise TraceError(f"{name}: 'variant_source' must be a string")
    known = {"format", "variant", "variant_source", "bounds", "property", "expected", "initial", "steps", "note"}
    extra = {k: v for k, v in doc.items() if k not in known}
    return Trace(variant, bounds, [], initial, prop, expected, str(source), str(doc.get("note", "")), extra)


def _step(obj: Any, name: str, number: int) -> TraceStep:
    where = f"{name}: step {number}"
    if not isinstance(obj, dict):
        raise TraceError(f"{where}: must be a JSON object")
    step = obj.get("step")
    if not isinstance(step, str) or not step:
        raise TraceError(f"{where}: 'step' must be a step name")
    args = obj.get("args", {})
    if not isinstance(args, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in args.values()):
        raise TraceError(f"{where}: 'args' must map parameter names to integers")
    state = obj.get("state")
    if state is not None and not isinstance(state, dict):
        raise TraceError(f"{where}: 'state' must be a state object")
    return TraceStep(step, dict(args), state)


class JsonlWriter:
    """Writes a trace in JSON Lines form, one flushed line per step, for long runs."""

    def __init__(self, path: str | Path, header: Trace) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[str] = open(self.path, "w", encoding="utf-8")
        head = header.header()
        head["format"] = FORMAT_JSONL
        self._write(head)

    def _write(self, obj: dict[str, Any]) -> None:
        self._handle.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._handle.flush()

    def step(self, step: TraceStep) -> None:
        self._write(step.to_json())

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
