"""The explored state graph of a small model, for export as DOT or JSON (``--graph-out``).

States are numbered breadth-first from the initial state (0). With symmetry on, a node is
an orbit (its canonical state) and an edge ``a -> b`` says that some state of orbit ``a``
steps to some state of orbit ``b``: the quotient graph the search explores. Only small
graphs are built: past ``limit`` states :class:`GraphTooLarge` is raised.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from deferral.model.concrete import Model, State

#: The largest graph ``--graph-out`` writes (states); a viewer cannot show more anyway.
GRAPH_LIMIT = 5_000


class GraphTooLarge(Exception):
    """The model has more states than the limit for a state graph."""


@dataclass
class StateGraph:
    model: Model
    symmetry: bool
    states: list[State] = field(default_factory=list)
    edges: list[tuple[int, int, str]] = field(default_factory=list)  # (from, to, step label)


def state_graph(model: Model, *, symmetry: bool = True, limit: int = GRAPH_LIMIT) -> StateGraph:
    """Every reachable state (orbit) and every transition between them, breadth-first."""
    key = model.canonical if symmetry else (lambda s: s)
    graph = StateGraph(model, symmetry, [key(model.initial)])
    index = {graph.states[0]: 0}
    n = 0
    while n < len(graph.states):
        for action, succ in model.successors(graph.states[n]):
            k = key(succ)
            m = index.get(k)
            if m is None:
                if len(graph.states) >= limit:
                    raise GraphTooLarge(f"more than {limit:,} states")
                m = index[k] = len(graph.states)
                graph.states.append(k)
            graph.edges.append((n, m, action.label()))
        n += 1
    return graph


def _violations(graph: StateGraph, state: State) -> list[str]:
    return sorted({v.prop for v in graph.model.violations(state)})


def to_json(graph: StateGraph) -> dict[str, Any]:
    model = graph.model
    return {
        "format": "deferral-graph/1",
        "variant": model.protocol.name,
        "bounds": model.bounds.as_dict(),
        "symmetry": graph.symmetry,
        "nodes": [{"id": n, "initial": n == 0, "violates": _violations(graph, s), "state": model.to_json(s)}
                  for n, s in enumerate(graph.states)],
        "edges": [{"from": a, "to": b, "step": label} for a, b, label in graph.edges],
    }


def _dot_label(model: Model, state: State) -> str:
    doc = model.to_json(state)
    text = "\\n".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in doc.items())
    return text.replace('"', '\\"')


def to_dot(graph: StateGraph) -> str:
    """Graphviz DOT: one node a state (its variables in the label), one edge a transition."""
    model = graph.model
    lines = [f'digraph "{model.protocol.name} {model.bounds.short()}" {{',
             "  node [shape=box, fontname=monospace, fontsize=9];", "  edge [fontsize=8];"]
    for n, s in enumerate(graph.states):
        bad = _violations(graph, s)
        style = ", style=filled, fillcolor=\"#ffd0d0\"" if bad else (", penwidth=2" if n == 0 else "")
        lines.append(f'  s{n} [label="#{n}\\n{_dot_label(model, s)}"{style}];')
    for a, b, label in graph.edges:
        lines.append(f'  s{a} -> s{b} [label="{label}"];')
    lines.append("}")
    return "\n".join(lines) + "\n"
