"""A cheap key for a model's fused C loop: finds the cached loop without tracing steps or generating C.

Generating the fused loop's C source (:mod:`deferral.checks.explicit.fused`) traces every
step instance and property (50-100 ms at small bounds, more than the whole search of a small
model). The source is a function of what this key hashes: the protocol's identity (its name,
the layout at the bounds, its step instances, the bytecode and constants of its steps,
procedures and properties; :func:`~deferral.checks.explicit.checkpoint.protocol_identity`),
the full text of every source file their code can reach (the files defining them, and the
files of the functions, classes and modules they name through globals or closures, followed
transitively), the text of the generator's own modules, the symmetry, the properties asked
for, the action type, and the numpy and Python versions (value types follow numpy's rules).
:mod:`deferral.checks.explicit.cbuild` maps a key to the library built from the source it
stands for. A function without a source file (typed into a REPL, made by ``exec``) gives
no key: the loop is then found by its source, as before.
"""

from __future__ import annotations

import hashlib
import os
import sys
import types
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from deferral.checks.explicit.checkpoint import protocol_identity
from deferral.model.concrete import Model
from deferral.model.protocol import Property

#: the modules whose code writes the C (a change to any of them is a new key)
_GENERATOR = ("fused", "fusedcanon", "kernels", "packing", "cbuild", "fusedkey")
_HERE = Path(__file__).resolve().parent
_PACKAGE = _HERE.parents[1]
_MODEL_DIR = _PACKAGE / "model"
_SIMPLE = (int, float, str, bytes, bool, type(None))


class _NoKey(Exception):
    """Some code has no source file to hash."""


def _files_of(roots: Iterable[Any]) -> set[str]:
    """The source files the callables ``roots`` can reach (raises :class:`_NoKey`)."""
    files: set[str] = set()
    seen: set[int] = set()
    todo = list(roots)
    while todo:
        obj = todo.pop()
        if id(obj) in seen or obj is None or isinstance(obj, _SIMPLE):
            continue
        seen.add(id(obj))
        if isinstance(obj, types.ModuleType):
            name = getattr(obj, "__file__", None)
            if name and not _is_library(name):
                files.add(name)
            continue
        if isinstance(obj, (tuple, list, frozenset, set)):
            todo.extend(obj)
            continue
        fn = getattr(obj, "__func__", obj)  # a bound method: its function
        code = getattr(fn, "__code__", None)
        if code is None:  # a class, an instance, a builtin: the file of its module
            module = sys.modules.get(getattr(obj, "__module__", None) or type(obj).__module__)
            if module is not None:
                todo.append(module)
            continue
        if code.co_filename.startswith("<"):
            raise _NoKey(code.co_filename)
        files.add(code.co_filename)
        if getattr(fn, "__module__", None) in sys.modules:
            todo.append(sys.modules[fn.__module__])
        names: set[str] = set()
        stack = [code]
        while stack:
            c = stack.pop()
            names.update(c.co_names)
            stack.extend(k for k in c.co_consts if isinstance(k, types.CodeType))
        glob = getattr(fn, "__globals__", {})
        todo.extend(glob[n] for n in names if n in glob)
        for cell in getattr(fn, "__closure__", None) or ():
            try:
                todo.append(cell.cell_contents)
            except ValueError:  # an empty cell
                pass
    return files


def _is_library(path: str) -> bool:
    """A file of an installed library (numpy, the standard library): its version stands for it.

    deferral's own files never are, installed or not: its version does not change with every
    edit of its code, so their text is hashed like the model's.
    """
    package = str(_PACKAGE) + os.sep
    if path.startswith(package) and "site-packages" not in path[len(package):]:
        return False
    return "site-packages" in path or path.startswith(sys.prefix) or path.startswith(sys.base_prefix)


def fused_key(model: Model, symmetry: bool, properties: Sequence[Property], action_dtype: Any,
              compiler: str, flags: Sequence[str]) -> str | None:
    """The key of the fused loop of ``model`` (None: some code has no source file)."""
    protocol = model.protocol
    roots: list[Any] = [protocol]
    for step in protocol.steps:
        roots += [step.guard, step.effect]
    roots += [proc.fn for proc in protocol.procedures]
    roots += [prop.predicate for prop in protocol.properties]
    try:
        files = _files_of(roots)
    except _NoKey:
        return None
    files.update(str(_HERE / f"{name}.py") for name in _GENERATOR)
    files.update(os.path.join(_MODEL_DIR, n) for n in os.listdir(_MODEL_DIR) if n.endswith(".py"))
    h = hashlib.sha256()
    ident = protocol_identity(model, symmetry)
    h.update(repr((ident, [p.name for p in properties], np.dtype(action_dtype).str, np.__version__,
                   sys.version, compiler, tuple(flags))).encode())
    for name in sorted(files):
        try:
            h.update(name.encode() + b"\0" + Path(name).read_bytes() + b"\0")
        except OSError:
            return None
    return h.hexdigest()[:24]
