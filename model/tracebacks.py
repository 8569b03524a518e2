"""Which frame of a traceback is a user's (a variant file's, an ENGINE's), not deferral's nor a library's."""

from __future__ import annotations

import sys
import sysconfig
import traceback
from pathlib import Path

#: deferral's packages: a frame in one of their folders is the tool's own.
OWN_PACKAGES = ("deferral.model", "deferral.checks", "deferral.traces", "deferral.engine", "deferral.cli")


def own_roots() -> tuple[Path, ...]:
    """The folders of deferral's packages loaded (a frame can only be in a loaded one) and of Python's
    libraries (the standard library, site-packages)."""
    modules = [sys.modules.get(name) for name in OWN_PACKAGES]
    ours = [Path(m.__file__).resolve().parent for m in modules if m is not None and getattr(m, "__file__", None)]
    paths = sysconfig.get_paths()
    libs = {Path(paths[k]).resolve() for k in ("stdlib", "platstdlib", "purelib", "platlib") if k in paths}
    return tuple(ours) + tuple(libs)


def user_frame(exc: BaseException) -> str:
    """``FILE line N (in FUNCTION)`` of the deepest frame of ``exc`` in a user's file, or ''."""
    try:
        roots = own_roots()
    except Exception:  # noqa: BLE001 - e.g. no descriptor left to resolve a path with: no user frame known
        return ""
    found = ""
    for frame in traceback.extract_tb(exc.__traceback__):
        name = frame.filename
        if name.startswith("<"):
            continue
        path = Path(name).resolve()
        if any(path == root or root in path.parents for root in roots):
            continue
        found = f"{name} line {frame.lineno} (in {frame.name})"
    return found
