"""Open sorts: a protocol with a fifth bound and a sort of its own, defined in one file
(tests/model/data/tickets.py), runs through check, replay and prove unchanged."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import pytest

from deferral.model import REFERENCE, Bounds, BoundsError
from deferral.model.bounds import STANDARD, loose
from deferral.model.concrete import Model
from deferral.model.variants import load_variant_file

TICKETS = Path(__file__).parent / "data" / "tickets.py"


def _independent_count(n: int, t: int) -> int:
    """States of the tickets protocol by a BFS written here, without the model."""
    none_v, none_t = n, t
    start = ((none_v,) * t, (none_t,) * n, (0,) * n)
    seen, todo = {start}, [start]
    while todo:
        owner, held, served = todo.pop()
        nexts = []
        for i, k in product(range(n), range(t)):
            if owner[k] == none_v and held[i] == none_t:
                nexts.append((owner[:k] + (i,) + owner[k + 1:], held[:i] + (k,) + held[i + 1:], served))
        for i in range(n):
            if held[i] != none_t:
                k = held[i]
                nexts.append((owner[:k] + (none_v,) + owner[k + 1:], held[:i] + (none_t,) + held[i + 1:],
                              served[:i] + (1,) + served[i + 1:]))
        for nxt in nexts:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return len(seen)


def test_declared_bound_reaches_every_part() -> None:
    protocol = load_variant_file(TICKETS)
    b = protocol.bounds(3, tickets=3)
    assert b.T == 3 and b.tickets == 3 and b.vcpus == 3 and b.N == 3
    assert b.as_dict() == {"vcpus": 3, "pages": 1, "frames": 1, "queue": 1, "tickets": 3}
    assert b.short() == "N=3,V=1,F=1,Q=1,T=3"
    with pytest.raises(BoundsError, match="--tickets must be an integer from 1 to 3"):
        protocol.bounds(tickets=4)
    with pytest.raises(BoundsError, match="unknown bound"):
        REFERENCE.bind(b)  # the reference declares no tickets
    assert Bounds.parse("2,1,1,1,3", protocol.bound_decls) == protocol.bounds(2, 1, 1, 1, 3)
    assert Bounds.parse("T=3,N=3", protocol.bound_decls) == b
    assert Model(protocol, Bounds(2, 1, 1, 1)).bounds.T == 2  # the default of a bound not given


@pytest.mark.parametrize("n,t", [(2, 2), (3, 3), (2, 1)])
def test_check_counts_match_an_independent_search(cli, n: int, t: int) -> None:
    want = _independent_count(n, t)
    for engine in ("vectorized", "plain"):
        r = cli("check", "--variant-file", str(TICKETS), "--vcpus", str(n), "--tickets", str(t),
                "--no-symmetry", "--engine", engine, "--json")
        doc = json.loads(r.out)
        assert r.code == 0 and doc["states"] == want, (engine, doc["states"], want)
        assert doc["bounds"]["tickets"] == t
    sym = json.loads(cli("check", "--variant-file", str(TICKETS), "--vcpus", str(n), "--tickets", str(t),
                         "--json").out)
    assert sym["states"] < want or n == 1  # VCPUs are symmetric; tickets are not permuted


def test_help_lists_the_declared_flag(cli) -> None:
    r = cli("check", "--variant-file", str(TICKETS), "--tickets", "9")
    assert r.code == 2 and "--tickets must be an integer from 1 to 3" in r.err


def test_counterexample_trace_replays_and_prove_agrees(cli, tmp_path: Path) -> None:
    bug = tmp_path / "tickets_double.py"
    bug.write_text(TICKETS.read_text() + "\nVARIANT = VARIANT.derive('tickets-double', replace_steps=["
                   "take.with_guard(lambda s, i, t: s.held[i] == s.T)])\n")
    trace = tmp_path / "t.json"
    r = cli("check", "--variant-file", str(bug), "--tickets", "3", "--trace-out", str(trace), "--json")
    assert r.code == 1
    doc = json.loads(trace.read_text())
    assert doc["bounds"] == {"vcpus": 2, "pages": 1, "frames": 1, "queue": 1, "tickets": 3}
    assert cli("replay", str(trace)).code == 2  # a trace never loads the file it names (issue 11)
    assert cli("replay", str(trace), "--variant-file", str(bug)).code == 0  # the declared violation happens
    assert cli("replay", str(trace), "--variant-file", str(TICKETS)).code == 4  # the fixed one rejects it
    p = json.loads(cli("prove", "--variant-file", str(bug), "--tickets", "3", "--method", "bmc", "--json").out)
    assert p["status"] == "violated" and p["depth"] == 2
    ok = cli("prove", "--variant-file", str(TICKETS), "--tickets", "3", "--method", "pdr", "--json")
    assert ok.code == 0 and json.loads(ok.out)["status"] == "proved"
    shipped = cli("prove", "--variant-file", str(TICKETS), "--method", "induction")
    assert shipped.code == 3 and "do not fit" in shipped.out


def test_old_traces_and_loose_bounds() -> None:
    assert loose({"vcpus": 2, "pages": 1, "frames": 1, "queue": 1}) == Bounds(2, 1, 1, 1)
    assert REFERENCE.bind(loose({"vcpus": 2, "pages": 1, "frames": 1, "queue": 1})) == Bounds()
    with pytest.raises(BoundsError):
        REFERENCE.bind(loose({"vcpus": 2, "pages": 1, "frames": 1, "queue": 1, "widgets": 2}))
    assert [d.name for d in STANDARD] == ["vcpus", "pages", "frames", "queue"]
