"""The published variants of PROTOCOL.md, and loading a user's own variant from a file.

Each published variant is a change to the reference made with :meth:`Protocol.derive`;
none is a copy. A user's variant file is a Python file that defines ``VARIANT``, a
protocol derived the same way (see README, "Your own variant")::

    from deferral.model import REFERENCE

    def zap(s, i, p):                      # drain zaps other VCPUs' entries
        for k in range(s.N):
            with s.when(s.shadow[k][p] != 0):
                s.shadow[k][p] = s.gpt[p] if k == i else 0

    VARIANT = REFERENCE.derive("drain-zaps", procedures={"resync": zap})
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
import traceback
from pathlib import Path
from typing import Any

from deferral.model.context import USER_ERRORS, StepContext, describe_user_error
from deferral.model.deprecated import notices
from deferral.model.protocol import Protocol
from deferral.model.reference import NOTICE, PC, REFERENCE, write_effect
from deferral.model.schema import VCPU


class VariantError(ValueError):
    """An unknown variant name, or a variant file that cannot be loaded."""


class AsymmetricProtocol(VariantError):
    """The protocol's steps do not treat its symmetric sort's elements alike: no reduction by it."""

    def __init__(self, protocol_name: str, what: str) -> None:
        super().__init__(f"{protocol_name} does not treat its VCPUs alike ({what}), so a search up to VCPU "
                         "symmetry would explore another system; run it with --no-symmetry")


def _drain_own_only(s: StepContext, i: Any) -> None:
    """Bug: draining resyncs only the draining VCPU's own shadow entry."""
    notice = s.queue[i].pop()
    p, sp = NOTICE.second_of(s, notice), NOTICE.first_of(s, notice)
    with s.when(s.shadow[i][sp][p] != 0):
        s.shadow[i][sp][p] = s.gpt[sp][p]


def _enqueue_or_drop(s: StepContext, i: Any, p: Any, sp: Any = 0) -> None:
    """Bug: a notice written into a full queue is dropped instead of draining."""
    s.queue[i].push(NOTICE.make(s, sp, p))  # push leaves a full queue as it is


def _shootdown_posting_ipis(s: StepContext, i: int, sp: int, p: int) -> None:
    """Bug: the IPIs go out when the shootdown starts, before the queue is drained."""
    REFERENCE.step("shootdown").effect(s, i, sp, p)
    s.proc.post_ipis(i)


def _send_ipis_local_only(s: StepContext, i: int) -> None:
    """With ipi-before-drain, send_ipis only flushes the local entry."""
    s.proc.initiator_flush(i)
    s.pc[i] = PC.SdWait


def _write_always_deferred(s: StepContext, i: int, sp: int, p: int, f: int) -> None:
    """Bug: a write to a space the writer does not run is queued like one to its own space."""
    write_effect(s, i, sp, p, f, True)


def _drain_running_only(s: StepContext, i: Any) -> None:
    """Bug: draining (s, p) resyncs only the shadows of VCPUs that run s now."""
    notice = s.queue[i].pop()
    p, sp = NOTICE.second_of(s, notice), NOTICE.first_of(s, notice)
    for k in s.each(VCPU):
        with s.when((s.shadow[k][sp][p] != 0) & (s.cr3[k] == sp)):
            s.shadow[k][sp][p] = s.gpt[sp][p]


_ref = REFERENCE.step

DRAIN_LOCAL_ONLY = REFERENCE.derive(
    "drain-local-only",
    doc="Drain one resyncs only the draining VCPU's own shadow.",
    procedures={"drain_one": _drain_own_only},
)

IPI_BEFORE_DRAIN = REFERENCE.derive(
    "ipi-before-drain",
    doc="shootdown sends the IPIs at once; send_ipis then only flushes the local entry.",
    replace_steps=[
        _ref("shootdown").with_effect(_shootdown_posting_ipis),
        _ref("send_ipis").with_effect(_send_ipis_local_only),
    ],
)

REMOTE_NO_DRAIN = REFERENCE.derive(
    "remote-no-drain",
    doc="ack_ipi does not wait for the acknowledging VCPU's queue to be empty.",
    replace_steps=[_ref("ack_ipi").with_guard(lambda s, k: s.pc[k] == PC.Ipi)],
)

RELOAD_NO_DRAIN = REFERENCE.derive(
    "reload-no-drain",
    doc="finish_reload does not wait for the queue to be empty.",
    replace_steps=[_ref("finish_reload").with_guard(lambda s, i: s.pc[i] == PC.Reload)],
)

WAIT_IRQS_OFF = REFERENCE.derive(
    "wait-irqs-off",
    doc="take_ipi only from Idle: the waiting initiator has interrupts off.",
    replace_steps=[_ref("take_ipi").with_guard(lambda s, k, i: s.ipi[k][i] & (s.pc[k] == PC.Idle))],
)

OVERFLOW_DROP = REFERENCE.derive(
    "overflow-drop",
    doc="A write into a full queue drops its notice instead of draining.",
    procedures={"enqueue_notice": _enqueue_or_drop},
)

DEFER_NON_CURRENT = REFERENCE.derive(
    "defer-non-current",
    doc="A write to a space the writer does not run is queued like one to its own space.",
    replace_steps=[_ref("write").with_effect(_write_always_deferred)],
)

SWITCH_NO_DRAIN = REFERENCE.derive(
    "switch-no-drain",
    doc="finish_reload does not wait for the queue to be empty when it switches to another space.",
    replace_steps=[_ref("finish_reload").with_guard(
        lambda s, i: (s.pc[i] == PC.Reload) & s.any((s.queue[i].empty(), s.sp[i] != s.cr3[i])))],
)

RESYNC_RUNNING_ONLY = REFERENCE.derive(
    "resync-running-only",
    doc="Drain one resyncs (s, p) only in the shadows of VCPUs that run s at that moment.",
    procedures={"drain_one": _drain_running_only},
)

#: Every published variant by name, the reference first.
PUBLISHED: dict[str, Protocol] = {
    p.name: p
    for p in (REFERENCE, DRAIN_LOCAL_ONLY, IPI_BEFORE_DRAIN, REMOTE_NO_DRAIN, RELOAD_NO_DRAIN,
              WAIT_IRQS_OFF, OVERFLOW_DROP, DEFER_NON_CURRENT, SWITCH_NO_DRAIN, RESYNC_RUNNING_ONLY)
}


def is_published(protocol: Protocol) -> bool:
    """Is ``protocol`` one of :data:`PUBLISHED` itself (not a copy or a derivation of one)?"""
    return any(protocol is p for p in PUBLISHED.values())


def get_variant(name: str) -> Protocol:
    """A published variant by name; a clear error naming the choices otherwise."""
    try:
        return PUBLISHED[name]
    except KeyError:
        raise VariantError(f"unknown variant {name!r}; choose one of: {', '.join(PUBLISHED)} "
                           "(or give a file with --variant-file)") from None


def load_variant_file(path: str | Path) -> Protocol:
    """Load ``VARIANT`` from a user's Python file; any failure is a one-line VariantError."""
    return load_variant_namespace(path)[0]


def load_variant_namespace(path: str | Path) -> tuple[Protocol, dict[str, Any]]:
    """``VARIANT`` and every other name a user's variant file defines (such as ``ENGINE``,
    which the engine's commands read); any failure is a one-line VariantError."""
    path = Path(path)
    if path.is_dir():
        raise VariantError(f"variant file {path}: is a folder, not a Python file")
    if not path.is_file():
        raise VariantError(f"variant file {path}: no such file")
    module_name = f"deferral_user_variant_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise VariantError(f"variant file {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        source = path.read_text(encoding="utf-8")
        compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise VariantError(f"variant file {path}: syntax error at line {exc.lineno}: {exc.msg}") from None
    except (UnicodeDecodeError, ValueError) as exc:
        raise VariantError(f"variant file {path}: cannot read it: {exc}") from None
    sys.modules[module_name] = module
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)  # as Python runs a script: the file may import the modules beside it
    try:
        spec.loader.exec_module(module)
    except USER_ERRORS as exc:  # a user's file may raise anything, or exit; report it in one line
        line = _line_in(path, exc)
        what = describe_user_error(exc) if isinstance(exc, SystemExit) else f"{type(exc).__name__}: {exc}"
        raise VariantError(f"variant file {path}{line}: {what}") from None
    finally:
        sys.modules.pop(module_name, None)
        if folder in sys.path:
            sys.path.remove(folder)
    variant = getattr(module, "VARIANT", None)
    if variant is None:
        raise VariantError(f"variant file {path}: it must define VARIANT = <protocol>.derive(...)")
    if not isinstance(variant, Protocol):
        raise VariantError(f"variant file {path}: VARIANT is a {type(variant).__name__}, not a Protocol "
                           "(make it with REFERENCE.derive(...))")
    protocol = _with_source(variant, str(path))
    for line in notices(protocol, path, REFERENCE):  # the older notation works, with a notice
        print(f"deferral: notice: {line}", file=sys.stderr)
    return protocol, dict(vars(module))


def _with_source(protocol: Protocol, source: str) -> Protocol:
    """``protocol`` marked as defined in ``source``; a published one (``VARIANT = REFERENCE``) is
    copied first, so that loading a file never changes the shared published protocol."""
    if protocol.source != "built-in" or is_published(protocol):
        protocol = dataclasses.replace(protocol)
    object.__setattr__(protocol, "source", source)
    return protocol


def _line_in(path: Path, exc: BaseException) -> str:
    """`` line N`` of the deepest frame of ``exc`` that is in ``path``, if any."""
    line = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename) == path:
            line = f" line {frame.lineno}"
    return line
