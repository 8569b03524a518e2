"""The package's import graph has no cycles, between modules and between subpackages.

The graph is read from the import statements of every module (parsed with ``ast``,
function-local imports included), not from a regex, so a cycle hidden in a lazy import
inside a function is found too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[2]
#: Top-level folders and the import name each is installed under.
PACKAGES = {"model": "deferral.model", "checks": "deferral.checks", "traces": "deferral.traces",
            "engine": "deferral.engine", "cli": "deferral.cli"}


def module_names() -> dict[str, Path]:
    """Every module of the project: dotted name -> file."""
    found: dict[str, Path] = {}
    for folder, package in PACKAGES.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([package, *parts])] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules ``name`` imports (``from x import y`` counts y when y is a module)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def import_graph() -> nx.DiGraph:
    modules = module_names()
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for name, path in modules.items():
        graph.add_edges_from((name, target) for target in imports_of(name, path, set(modules)))
    return graph


def room(module: str) -> str:
    """The room a module lives in: a subpackage of checks, or a top-level folder."""
    parts = module.split(".")
    if parts[1] == "checks" and len(parts) > 2:
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def test_the_graph_is_read_from_real_imports() -> None:
    graph = import_graph()
    assert ("deferral.cli.check", "deferral.checks.explicit.search") in graph.edges
    assert graph.number_of_nodes() > 50


def test_no_module_import_cycle() -> None:
    graph = import_graph()
    package_edges = [(a, b) for a, b in graph.edges if b == a.rpartition(".")[0]]
    graph.remove_edges_from(package_edges)  # a module importing its own package's __init__
    cycles = list(nx.simple_cycles(graph))
    assert not cycles, f"import cycles: {cycles[:3]}"


def test_no_cycle_between_rooms() -> None:
    graph = import_graph()
    rooms = nx.DiGraph()
    rooms.add_edges_from((room(a), room(b)) for a, b in graph.edges if room(a) != room(b))
    cycles = list(nx.simple_cycles(rooms))
    witnesses = [[(a, b) for a, b in graph.edges if (room(a), room(b)) in zip(c, c[1:] + c[:1])][:4]
                 for c in cycles[:2]]
    assert not cycles, f"cycles between rooms: {cycles[:2]}; imports behind them: {witnesses}"


def test_model_imports_nothing_above_it() -> None:
    graph = import_graph()
    upward = [(a, b) for a, b in graph.edges if room(a) == "deferral.model" and room(b) != "deferral.model"]
    assert not upward, f"model/ must not import the tools that read it: {upward}"
