"""--graph-out: the explored state graph as DOT or JSON, refused above its size limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deferral.checks.explicit.graph import GraphTooLarge, state_graph, to_dot
from deferral.checks.explicit.search import search
from deferral.model import PUBLISHED, Bounds
from deferral.model.concrete import Model


def test_graph_has_the_searched_states_and_transitions() -> None:
    b = Bounds(1, 1, 1, 1)
    graph = state_graph(Model(PUBLISHED["reference"], b))
    result = search(PUBLISHED["reference"], b)
    assert len(graph.states) == result.states == 75
    assert len(graph.edges) == result.transitions
    dot = to_dot(graph)
    assert dot.startswith("digraph") and dot.count(" -> ") == result.transitions


def test_graph_too_large_is_refused() -> None:
    with pytest.raises(GraphTooLarge):
        state_graph(Model(PUBLISHED["reference"], Bounds(1, 1, 1, 1)), limit=10)


def test_cli_writes_json_and_refuses_unknown_extension_and_big_graphs(cli, tmp_path: Path) -> None:
    out = tmp_path / "g.json"
    assert cli("check", "--vcpus", "1", "--variant", "reload-no-drain", "--graph-out", str(out)).code == 1
    doc = json.loads(out.read_text())
    assert doc["format"] == "deferral-graph/1" and doc["nodes"][0]["initial"]
    assert any(n["violates"] == ["no_stale_translation"] for n in doc["nodes"])
    assert {e["from"] for e in doc["edges"]} <= {n["id"] for n in doc["nodes"]}
    r = cli("check", "--vcpus", "1", "--graph-out", str(tmp_path / "g.png"))
    assert r.code == 2 and ".dot, .gv or .json" in r.err
    r = cli("check", "--vcpus", "3", "--graph-out", str(tmp_path / "big.dot"))
    assert r.code == 2 and "too many for a state graph" in r.err and not (tmp_path / "big.dot").exists()
