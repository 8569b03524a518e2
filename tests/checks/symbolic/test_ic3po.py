"""Route ic3po: IC3 with orbit clauses proves without the shipped lemmas, never proves a bug, learns whole orbits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from deferral.checks.symbolic import ic3po
from deferral.checks.symbolic import infer as inference
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.variants import PUBLISHED, load_variant_file

EXAMPLES = Path(__file__).parents[3] / "examples"


def test_reference_at_one_vcpu_is_proved_without_shipped_lemmas() -> None:
    r = ic3po.learn_and_prove(REFERENCE, Bounds(1, 1, 1, 1), timeout=60, for_every=False)
    assert r.status == "proved" and r.route == ic3po.ROUTE_BOUNDED, r.reason
    assert r.families and r.rounds[0]["status"] == "invariant"


@pytest.mark.slow
def test_reference_at_two_vcpus_is_proved_without_shipped_lemmas() -> None:
    r = ic3po.learn_and_prove(REFERENCE, Bounds(2, 1, 1, 1), timeout=120, for_every=False)
    assert r.status == "proved", r.reason


def test_a_bug_is_refused() -> None:
    r = ic3po.learn_and_prove(PUBLISHED["ipi-before-drain"], Bounds(2, 1, 1, 1), timeout=60, for_every=False)
    assert r.status != "proved"
    assert r.rounds[0]["status"] == "violated", r.rounds  # a reachable state leaves the property


#: every published bug at bounds where the explicit search finds it violated
BUG_BOUNDS = {"drain-local-only": Bounds(2, 1, 1, 2), "ipi-before-drain": Bounds(2, 1, 1, 1),
              "remote-no-drain": Bounds(2, 1, 1, 1), "reload-no-drain": Bounds(2, 1, 1, 1),
              "overflow-drop": Bounds(2, 2, 1, 1), "defer-non-current": Bounds(2, 1, 1, 1, 2),
              "switch-no-drain": Bounds(2, 1, 1, 1, 2), "resync-running-only": Bounds(2, 1, 1, 1, 2)}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BUG_BOUNDS))
def test_no_published_bug_is_proved(name: str) -> None:
    r = ic3po.learn_and_prove(PUBLISHED[name], BUG_BOUNDS[name], timeout=120, for_every=False)
    assert r.status != "proved", [f.show() for f in r.families]


@pytest.mark.slow
@pytest.mark.parametrize("name", ["ipi_unlock_after_flush.py", "invlpg_sync_one.py", "defer_all_spaces.py"])
def test_no_held_out_mutant_is_proved(name: str) -> None:
    from tests.checks.symbolic.test_examples_safe import MUTANTS, _mutant

    r = ic3po.learn_and_prove(_mutant(name), MUTANTS[name][0], timeout=120, for_every=False)
    assert r.status != "proved", [f.show() for f in r.families]


def test_a_learned_clause_is_a_whole_orbit() -> None:
    """The family of a state's cube excludes every permutation of that state (VCPUs, pages), and the
    instances the IC3 frames assume are those of the family: learn an orbit, not a clause."""
    at = Bounds(3, 1, 1, 1)
    vocab = ic3po.Vocabulary(REFERENCE, at)
    model = Model(REFERENCE, at)
    state = model.initial
    for action, succ in model.successors(state):  # a state where the three VCPUs differ: one writes, one faults
        state = succ
        break
    for action, succ in model.successors(state):
        if succ != state and action.label().startswith("shadow_fault"):
            state = succ
            break
    row = vocab.row(state)
    cube = ic3po.Cube(tuple(range(len(row))), tuple(int(x) for x in row))
    fam = ic3po.orbit_family(vocab, cube)
    lemma = fam.lemma()
    layout = REFERENCE.layout(at)
    perms = layout.permutations
    assert len(perms) == 6
    from itertools import product

    for perm in perms:
        permuted = layout.permute(state, perm)
        ctx = model.context(permuted)
        sizes = [d.size(at) for _, d in lemma.params]
        assert not all(lemma.fn(ctx, *args) for args in product(*(range(n) for n in sizes))), perm
    other = model.initial  # a state outside the orbit is not excluded
    ctx = model.context(other)
    sizes = [d.size(at) for _, d in lemma.params]
    assert all(lemma.fn(ctx, *args) for args in product(*(range(n) for n in sizes)))


def test_a_saved_invariant_reloads(tmp_path: Path) -> None:
    b = Bounds(1, 1, 1, 1)
    r = ic3po.learn_and_prove(REFERENCE, b, timeout=60, for_every=False)
    assert r.status == "proved"
    doc = inference.save(r.families, REFERENCE, r.learned_at)
    doc["route"] = r.route
    text = json.dumps(doc)
    assert ic3po.is_ic3po_file(json.loads(text))
    back = ic3po.load(json.loads(text), REFERENCE, b)
    assert [f.show() for f in back] == [f.show() for f in r.families]
    assert [f.rows for f in back] == [f.rows for f in r.families]


def test_cli_method_ic3po_saves_and_reloads(tmp_path: Path) -> None:
    from deferral.cli.main import main

    out = tmp_path / "inv.json"
    code = main(["prove", "--method", "ic3po", "--vcpus", "1", "--json", "--invariant-out", str(out)])
    assert code == 0
    doc = json.loads(out.read_text())
    assert doc["route"] == ic3po.ROUTE_BOUNDED and doc["lemmas"]
    code = main(["prove", "--vcpus", "1", "--no-shipped-lemmas", "--lemmas", str(out), "--json"])
    assert code == 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["lazy_cur_clear.py", "lazy_waitret_clear.py", "lazy_ipi_return.py", "self_ipi.py"])
def test_examples_are_proved_at_two_vcpus(name: str) -> None:
    """(lazy_tlb_ipi, at S = 2: test_lazy_tlb_ipi_at_two_spaces_is_proved_in_exact_mode)"""
    r = ic3po.learn_and_prove(load_variant_file(EXAMPLES / name), Bounds(2, 1, 1, 1), timeout=240,
                              for_every=False)
    assert r.status == "proved", r.reason


@pytest.mark.slow
def test_families_learned_at_three_vcpus_carry_to_four() -> None:
    # 2,1,1 then 3,1,1 seeded with the 2-VCPU orbits that hold there: proved at 4,1,1,1 (26 s at load 3)
    r = ic3po.learn_and_prove(REFERENCE, Bounds(4, 1, 1, 1), timeout=150, for_every=False)
    assert r.status == "proved", r.reason
    assert r.rounds[1]["seeded"] > 0 and r.rounds[1]["status"] == "invariant"


def test_a_counterexample_is_excluded_over_the_fewest_variables() -> None:
    engine = ic3po.Ic3(REFERENCE, Bounds(2, 1, 1, 1), None)
    engine.samples, engine.exact = ic3po.reachable_samples(REFERENCE, Bounds(2, 1, 1, 1), engine.vocab, None)
    r = engine.run()
    assert r.status == "invariant"
    one_var = [f for f in r.families if len(f.sig.vars) == 1]
    assert one_var and all(c.cube.cols for c in engine.clauses)
    # every learned orbit excludes no reachable state (the samples are all of them here)
    assert not any(engine.samples.matches(c.cube) for c in engine.clauses)


def test_one_row_per_orbit_matches_as_every_image() -> None:
    """A cube's orbit matches a state iff a permutation of the cube matches the row of the state's orbit
    representative: Rows (one row a state, the cube permuted) answers as the table of every image does."""
    from deferral.checks.symbolic.infer import reachable_rows, unique_rows

    at = Bounds(2, 2, 1, 1)
    vocab = ic3po.Vocabulary(REFERENCE, at)
    states = reachable_rows(REFERENCE, at, 2000).astype("int64")
    every = unique_rows(vocab.rows(states))  # every assignment of every state
    table = ic3po.Rows.of_rows(vocab.identity_rows(states), vocab.permutations())
    assert len(vocab.permutations()) == 4 and len(table) == states.shape[0] < every.shape[0]
    rng = np.random.default_rng(1)
    seen = {True: 0, False: 0}
    for _ in range(300):
        row = every[rng.integers(every.shape[0])]
        cols = sorted(int(c) for c in rng.choice(len(vocab.terms), size=int(rng.integers(1, 5)), replace=False))
        vals = [int(row[c]) if rng.random() < 0.7 else int(rng.integers(0, 4)) for c in cols]
        cube = ic3po.Cube(tuple(cols), tuple(vals))
        want = cube.matches(every)
        assert table.matches(cube) == want, (cube, [vocab.terms[c].show() for c in cols])
        seen[want] += 1
    assert seen[True] > 20 and seen[False] > 20  # both answers were tested


def test_houdini_stops_at_its_deadline() -> None:
    import time

    from deferral.checks.terms.encoding import encode
    from deferral.checks.symbolic.induction import houdini

    enc = encode(REFERENCE, Bounds(2, 1, 1, 1), check=False)
    with pytest.raises(TimeoutError, match="time limit"):
        houdini(enc, inference.property_lemmas(REFERENCE), timeout=20, deadline=time.monotonic() - 1)


def test_the_route_stops_at_its_deadline() -> None:
    """`--method ic3po --timeout T` ends within T (it ran 88 s at --timeout 60): every stage gets the time
    left (the explicit search, Houdini's rounds, the proof at the requested bounds)."""
    import time

    from deferral.cli.main import main

    began = time.monotonic()
    code = main(["prove", "--method", "ic3po", "--vcpus", "3", "--pages", "2", "--timeout", "5", "--json"])
    took = time.monotonic() - began
    assert code == 3 and took < 5 + 4, took  # unknown, within the limit (start-up and encoding aside)


def test_seeding_by_houdini_keeps_the_deadline() -> None:
    """Without every reachable state, an instance adopts the smaller instances' families Houdini keeps:
    past the deadline it adopts none at once (it used to run Houdini's rounds a second each)."""
    import time

    small = ic3po.learn_and_prove(REFERENCE, Bounds(1, 1, 1, 1), timeout=60, for_every=False)
    assert small.families
    engine = ic3po.Ic3(REFERENCE, Bounds(2, 1, 1, 1), time.monotonic() - 1)
    began = time.monotonic()
    assert engine.seed(small.families) == 0 and not engine.exact
    assert time.monotonic() - began < 2


@pytest.mark.slow
def test_reference_at_three_vcpus_two_pages_is_proved_without_shipped_lemmas() -> None:
    """3,2,1,1: 2,1,1 and 3,1,1 exact, 2,2,1 exact (1.25M orbits, one row each), then IC3 with frames at
    3,2,1 seeded with what Houdini keeps there (260 s wall, 107 s CPU at load 8: benchmarks/PROVE.md)."""
    r = ic3po.learn_and_prove(REFERENCE, Bounds(3, 2, 1, 1), timeout=600, for_every=False)
    assert r.status == "proved", r.reason
    assert r.rounds[-1]["bounds"] == Bounds(3, 2, 1, 1).as_dict() and r.rounds[-1]["status"] == "invariant"


@pytest.mark.slow
def test_lazy_cur_clear_at_three_vcpus_is_proved_in_exact_mode() -> None:
    """1,070,431 orbits at 3,1,1,1: above the former 150k cap, within the one-row-per-orbit table."""
    r = ic3po.learn_and_prove(load_variant_file(EXAMPLES / "lazy_cur_clear.py"), Bounds(3, 1, 1, 1), timeout=400,
                              for_every=False)
    assert r.status == "proved", r.reason
    assert r.rounds[-1]["exact"] and r.rounds[-1]["samples"] > 1_000_000


@pytest.mark.slow
def test_lazy_tlb_ipi_at_two_spaces_is_proved_in_exact_mode() -> None:
    """1,192,803 orbits at 2,1,1,1,S=2, used exactly (57 s wall, 24 s CPU at load 7: benchmarks/PROVE.md)."""
    r = ic3po.learn_and_prove(load_variant_file(EXAMPLES / "lazy_tlb_ipi.py"), Bounds(2, 1, 1, 1, 2), timeout=240,
                              for_every=False)
    assert r.status == "proved", r.reason
    assert r.rounds[0]["exact"]


def test_the_parametric_proof_running_out_of_time_is_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    """prove_parametric (learn_and_prove's for_every) gives an unknown result when Houdini over
    uninterpreted sorts runs out of time (it raised TimeoutError out of the route)."""
    from types import SimpleNamespace

    from deferral.checks.symbolic import parametric

    unproved = SimpleNamespace(status="unknown", obligations=[], reason="consecution: not inductive")
    monkeypatch.setattr(parametric, "prove", lambda *a, **kw: unproved)

    def late(*a: object, **kw: object) -> None:
        raise TimeoutError("parametric houdini: time limit (88 lemmas live, round 1)")

    monkeypatch.setattr(parametric, "houdini", late)
    monkeypatch.setattr(parametric, "learned_lemmas", lambda fams, protocol: [])
    got = ic3po.prove_parametric(REFERENCE, Bounds(2, 1, 1, 1), [], timeout=1.0)
    assert got.status == "unknown" and "time limit" in got.obligations[-1].reason


def test_method_ic3po_refutes_a_bug_with_the_shortest_counterexample(cli, tmp_path: Path) -> None:
    """IC3 that reaches a violating state is a refutation, as prove's other methods say it: exit 1
    with the shortest counterexample (the explicit search's length), replayable, not "unknown"."""
    trace = tmp_path / "cex.json"
    r = cli("prove", "--variant", "ipi-before-drain", "--method", "ic3po", "--timeout", "60", "--json",
            "--trace-out", str(trace))
    doc = json.loads(r.out)
    assert r.code == 1 and doc["status"] == "violated", doc.get("reason")
    assert doc["depth"] == 6 and doc["route"].startswith("ic3po")
    assert cli("replay", str(trace)).code == 0
