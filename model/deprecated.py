"""Which replaced notations a variant file still uses: one notice per construct, read from its source.

The older notation keeps working (docs/notation.md, "Older notation"); a file that uses it
gets one line on stderr per construct, at its first use, when it is loaded:

* ``range(s.N)`` loops over a sort: now ``s.each(VCPU)``;
* ``s.N`` as the "none" of a sort (assigned to, or compared with, a variable): now
  ``s.none(VCPU)``;
* the integer PC constants ``IDLE``, ``SDWAIT``, ... of ``deferral.model.reference``: now
  ``PC.Idle``, ``PC.SdWait``, ...;
* the one-space notation (``s.gpt[p]``, ``s.shadow[k][p]``, a procedure without its space
  argument): now ``s.gpt[sp][p]``, ``def resync(s, i, p, sp)``.

The source is read with ``ast``, so nothing here runs the file again, and the search
itself pays nothing for the notices.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any, Iterator

from deferral.model.context import max_positional
from deferral.model.protocol import Protocol
from deferral.model.schema import Sort

#: The integer PC constants of model/reference.py the Enum ``PC`` replaced.
PC_CONSTANTS = {"IDLE": "PC.Idle", "INV": "PC.Inv", "RELOAD": "PC.Reload", "SD": "PC.Sd",
                "SDWAIT": "PC.SdWait", "IPI": "PC.Ipi"}


def notices(protocol: Protocol, path: str | Path, reference: Protocol | None = None) -> list[str]:
    """One line per replaced notation the file at ``path`` uses (first use), for ``protocol``
    loaded from it; ``reference``: the protocol whose procedures give the full arities."""
    source = Path(path).read_text(encoding="utf-8")
    tree = ast.parse(source, str(path))
    found: dict[str, tuple[int, str]] = {}
    for what, line, text in _uses(tree, protocol, reference, path):
        if what not in found or line < found[what][0]:
            found[what] = (line, text)
    return [f"{path} line {line}: deprecated notation: {text} (docs/notation.md)"
            for _, (line, text) in sorted(found.items(), key=lambda kv: kv[1][0])]


def _uses(tree: ast.AST, protocol: Protocol, reference: Protocol | None, path: str | Path) -> Iterator[tuple[str, int, str]]:
    """(construct, line, notice text) for every use of a replaced notation."""
    sorts = {s.bound: s for v in protocol.variables for s in _index_sorts(v)}
    letters = {d.letter: sorts[d.name] for d in protocol.bound_decls if d.name in sorts}
    arity = {v.name: (len(v.index), sum(1 for s in v.index if isinstance(s, Sort) and s.elided))
             for v in protocol.variables}
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    for node in ast.walk(tree):
        letter = _bound_letter(node, letters)
        if letter is not None:
            sort = letters[letter].name.upper()
            up = parents.get(node)
            if isinstance(up, ast.Call) and isinstance(up.func, ast.Name) and up.func.id == "range":
                yield "range", node.lineno, f"range(s.{letter}) loops over a sort; write s.each({sort})"
            elif _as_none(node, up):
                yield "none", node.lineno, f"s.{letter} as none; write s.none({sort})"
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("model.reference"):
            for alias in node.names:
                if alias.name in PC_CONSTANTS:
                    yield "pc", node.lineno, (f"the integer PC constant {alias.name}; write "
                                              f"{PC_CONSTANTS[alias.name]} (PC from deferral.model.reference)")
        if isinstance(node, ast.Attribute) and node.attr in PC_CONSTANTS and isinstance(node.ctx, ast.Load) \
                and isinstance(node.value, ast.Name) and node.value.id == "reference":
            yield "pc", node.lineno, f"the integer PC constant {node.attr}; write {PC_CONSTANTS[node.attr]}"
        if isinstance(node, ast.Subscript) and not isinstance(parents.get(node), ast.Subscript):
            name, depth = _chain(node)
            if name in arity:
                full, elided = arity[name]
                if elided and depth == full - elided:
                    yield "one-space", node.lineno, (f"the one-space notation {name}{'[.]' * depth}; index "
                                                     f"every sort ({name}{'[.]' * full}, e.g. s.gpt[sp][p])")
    if reference is not None:
        yield from _short_procedures(protocol, reference, path)


def _index_sorts(var: Any) -> list[Sort]:
    return [s for s in var.index if isinstance(s, Sort)]


def _bound_letter(node: ast.AST, letters: dict[str, Sort]) -> str | None:
    """``X`` for ``s.X`` (``s`` any name) where X is the letter of an index sort's bound."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.attr in letters \
            and isinstance(node.ctx, ast.Load):
        return node.attr
    return None


def _as_none(node: ast.AST, up: ast.AST | None) -> bool:
    """``s.N`` assigned to a variable's element, or compared (==, !=) with one."""
    if isinstance(up, ast.Assign) and up.value is node:
        return any(isinstance(t, ast.Subscript) for t in up.targets)
    if isinstance(up, ast.Compare) and all(isinstance(op, (ast.Eq, ast.NotEq)) for op in up.ops):
        return any(isinstance(x, ast.Subscript) for x in [up.left, *up.comparators])
    return False


def _chain(node: ast.Subscript) -> tuple[str | None, int]:
    """(variable name, number of subscripts) of ``s.name[a][b]...``."""
    depth = 0
    cur: ast.AST = node
    while isinstance(cur, ast.Subscript):
        depth += 1
        cur = cur.value
    if isinstance(cur, ast.Attribute) and isinstance(cur.value, ast.Name):
        return cur.attr, depth
    return None, depth


def _short_procedures(protocol: Protocol, reference: Protocol, path: str | Path) -> Iterator[tuple[str, int, str]]:
    """Procedures replaced by the file that take fewer arguments than the reference passes."""
    full = {p.name: max_positional(p.fn) for p in reference.procedures}
    for proc in protocol.procedures:
        n = max_positional(proc.fn)
        if proc.name not in full or n >= full[proc.name]:
            continue
        try:
            if Path(inspect.getsourcefile(proc.fn) or "").resolve() != Path(path).resolve():
                continue  # not written in this file
            line = inspect.getsourcelines(proc.fn)[1]
        except (OSError, TypeError):
            continue
        yield "one-space", line, (f"the one-space notation: procedure {proc.name} takes {n - 1} argument(s) "
                                  f"after s, the reference passes {full[proc.name] - 1} (the last a space)")
