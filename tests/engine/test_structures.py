"""Engine building blocks: the ring buffer, page tables, seeded guest programs, isolation."""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest

from deferral.engine.guest import Op, random_program
from deferral.engine.memory import Tlb
from deferral.engine.queue import QueueFull, RingBuffer
from deferral.model import Bounds

ENGINE = Path(__file__).resolve().parents[2] / "engine"


def test_ring_buffer_wraps_and_keeps_fifo_order() -> None:
    ring = RingBuffer(3)
    for p in (0, 1, 2):
        ring.push(p)
    assert ring.full()
    with pytest.raises(QueueFull):
        ring.push(0)
    assert ring.pop() == 0
    ring.push(2)  # wraps around the end of the storage
    assert ring.items() == [1, 2, 2]
    assert [ring.pop(), ring.pop(), ring.pop()] == [1, 2, 2]
    assert ring.empty()
    with pytest.raises(IndexError):
        ring.pop()


def test_page_table_copy_is_independent_and_keeps_its_kind() -> None:
    tlb = Tlb(2)
    tlb[1] = 3
    other = tlb.copy()
    other.flush_all()
    assert tlb.as_list() == [0, 3] and other.as_list() == [0, 0]


def test_random_programs_are_reproducible_from_the_seed() -> None:
    b = Bounds(3, 2, 2, 1)
    first = list(itertools.islice(random_program(7, 1, b), 200))
    again = list(itertools.islice(random_program(7, 1, b), 200))
    other = list(itertools.islice(random_program(8, 1, b), 200))
    assert first == again and first != other
    assert {op.kind for op in first} == {"write", "access", "invlpg", "reload", "shootdown"}
    assert all(0 <= op.page < 2 and 0 <= op.frame <= 2 for op in first)
    with pytest.raises(ValueError):
        Op("jump")


#: The judge's side of engine/: it runs the model along the engine's steps (user.py loads
#: a user's VARIANT with its ENGINE).
JUDGE_SIDE = {"judge.py", "tracing.py", "conform.py", "runner.py", "user.py", "__init__.py"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_the_hypervisor_does_not_use_the_model() -> None:
    """The hypervisor side (the implementation) imports nothing of the model but its bounds;
    only the judge's side (judge, tracing, conform, runner) runs the model."""
    hypervisor_side = [p for p in ENGINE.glob("*.py") if p.name not in JUDGE_SIDE]
    assert {p.name for p in hypervisor_side} >= {"hypervisor.py", "bugs.py", "guest.py", "memory.py", "vcpu.py"}
    for path in hypervisor_side:
        used = {m for m in _imports(path) if m.startswith("deferral.") and not m.startswith("deferral.engine")}
        assert used <= {"deferral.model.bounds"}, f"{path.name} imports {sorted(used)}"


def test_no_engine_module_restates_the_ghost_rules() -> None:
    """The ghost variables are the model's: no engine module assigns lw, req or covers."""
    assign = re.compile(r"\b(lw|req|covers)\b\s*(\[[^\]]*\])*\s*=[^=]")
    for path in ENGINE.glob("*.py"):
        assert not assign.search(path.read_text()), f"{path.name} restates a ghost rule"


def test_field_diff_names_leaves_and_compares_queues_whole() -> None:
    from deferral.engine.conform import field_diff

    a = {"shadow": [[0, 1], [1, 1]], "queue": [[0], []], "pc": ["Idle", "Inv"]}
    b = {"shadow": [[0, 1], [1, 0]], "queue": [[0], [1]], "pc": ["Idle", "Inv"]}
    assert field_diff(a, b) == {"shadow[1][1]": (1, 0), "queue[1]": ([], [1])}
