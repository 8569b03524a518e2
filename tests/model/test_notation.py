"""The step notation (docs/notation.md): sorts, none, enum names, when, queues, procedures,
the same on every backend; old notation keeps giving the same results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deferral.checks.explicit.search import search
from deferral.checks.symbolic.bmc import bmc
from deferral.checks.terms.encoding import encode
from deferral.model import BOOL, PAGE, REFERENCE, VCPU, Bounds, Enum, Property, Protocol, Queue, Var, step
from deferral.model.concrete import Model
from deferral.model.reference import PC, IDLE, SDWAIT
from deferral.model.variants import load_variant_file

MODE = Enum(("Off", "On"), name="mode")

STACK_VARS = (
    Queue("stack", PAGE, (VCPU,), "a LIFO per VCPU", capacity="queue"),
    Var("last", PAGE, (VCPU,), "the newest entry i saw"),
    Var("mode", MODE, (VCPU,), "on or off"),
    Var("owner", VCPU.or_none(), (PAGE,), "who pushed p last"),
    Var("seen", BOOL, (VCPU,), "i popped an entry it pushed itself"),
)


@step(("i", VCPU), ("p", PAGE), guard=lambda s, i, p: s.mode[i] == MODE.On)
def push(s, i, p):
    s.stack[i].push(p)
    s.owner[p] = i


@step(("i", VCPU))
def toggle(s, i):
    s.mode[i] = s.ite(s.mode[i] == MODE.On, MODE.Off, MODE.On)


@step(("i", VCPU))
def peek(s, i):
    q = s.stack[i]

    @s.when(q.length > 0)
    def _():  # on a concrete empty stack this is not run at all
        s.last[i] = q[q.length - 1]
    with s.when(q.length > 0):  # block form: the read below is 0 (not an error) when empty
        s.last[i] = q[q.length - 1]


@step(("i", VCPU), guard=lambda s, i: s.not_(s.stack[i].empty()))
def popb(s, i):
    p = s.stack[i].pop_back()
    with s.when(s.owner[p] == i):
        s.seen[i] = True
    s.owner[p] = s.none(VCPU)


def never_seen(s, i):
    return s.not_(s.seen[i]) | s.stack[i].contains(0)


STACKS = Protocol("stacks", STACK_VARS, (), (push, toggle, peek, popb),
                  (Property("never_seen", "invariant", (("i", VCPU),), never_seen),))


def test_lifo_end_and_lenient_reads_on_concrete_states() -> None:
    m = Model(STACKS, Bounds(1, 2, 1, 2))
    act = {a.label(): a for a in m.actions}
    s = m.apply(m.initial, act["peek(0)"])  # empty stack: no error, nothing changes
    assert s == m.initial
    for label in ("toggle(0)", "push(0,0)", "push(0,1)", "peek(0)"):
        s = m.apply(s, act[label])
    j = m.to_json(s)
    assert j["stack"] == [[0, 1]] and j["last"] == [1] and j["owner"] == [0, 0]
    s = m.apply(s, act["popb(0)"])  # LIFO: takes 1, the newest
    j = m.to_json(s)
    assert j["stack"] == [[0]] and j["owner"] == [0, None] and j["seen"] == [True]


@pytest.mark.parametrize("bounds", [Bounds(2, 1, 1, 2), Bounds(1, 2, 1, 3)])
def test_backends_agree(bounds: Bounds) -> None:
    """numpy (vectorized), concrete (plain) and Z3 (bmc) give the same counts and lengths."""
    vec = search(STACKS, bounds, symmetry=False, engine="vectorized")
    plain = search(STACKS, bounds, symmetry=False, engine="plain")
    assert vec.states == plain.states and vec.transitions == plain.transitions
    length = vec.outcomes[0].length
    assert vec.outcomes[0].status == "violated" and length == plain.outcomes[0].length
    found = bmc(encode(STACKS, bounds), length)
    assert found.status == "violated" and found.depth == length


def test_enum_names_and_old_constants() -> None:
    assert (PC.Idle, PC.SdWait) == (IDLE, SDWAIT) == (PC["Idle"], PC["SdWait"])
    with pytest.raises(AttributeError):
        PC.Nope  # noqa: B018


def test_named_procedures_make_one_line_variants(cli, tmp_path: Path) -> None:
    names = {p.name for p in REFERENCE.procedures}
    assert {"local_flush", "initiator_flush", "remote_flush", "ack"} <= names
    f = tmp_path / "v.py"
    f.write_text("from deferral.model import REFERENCE\n"
                 "VARIANT = REFERENCE.derive('ack-without-flush', procedures={'remote_flush': lambda s, k, i: None})\n")
    doc = json.loads(cli("check", "--variant-file", str(f), "--json", "--no-symmetry").out)
    assert doc["properties"][0]["status"] == "violated"


def test_old_notation_file_gives_the_same_results() -> None:
    """The one-space drain_zaps (tests/model/data) uses range(s.N): same counts as the same change in the new notation."""
    old = load_variant_file(Path(__file__).resolve().parents[2] / "tests" / "model" / "data" / "drain_zaps_one_space.py")

    def zap(s, i, p):
        for k in s.each(VCPU):
            with s.when(s.shadow[k][p] != 0):
                s.shadow[k][p] = s.gpt[p] if k == i else 0

    new = REFERENCE.derive("drain-zaps-new", procedures={"resync": zap})
    b = Bounds(2, 1, 2, 1)
    a, c = search(old, b), search(new, b)
    assert (a.states, a.transitions) == (c.states, c.transitions)
    assert [o.status for o in a.outcomes] == [o.status for o in c.outcomes]
