"""Lemma families learned from reachable states: vocabulary from the declared sorts, truth on samples, proofs."""

from __future__ import annotations

import json
from functools import lru_cache
from itertools import product
from pathlib import Path

import numpy as np
import pytest

from deferral.checks.explicit.vectorized import reachable_levels
from deferral.checks.symbolic import infer as inference
from deferral.checks.symbolic.induction import check_inductive
from deferral.checks.terms.encoding import encode
from deferral.cli.main import main
from deferral.model import PUBLISHED, REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.schema import BOOL, Var

SMALL = Bounds(2, 1, 1, 1)


@lru_cache(maxsize=None)
def small_samples(name: str) -> inference.Samples:
    return inference.samples(PUBLISHED[name], ((SMALL, None),))


def test_vocabulary_comes_from_the_declared_variables() -> None:
    sigs = inference.signatures(REFERENCE)
    # every declared index sort, the address-space sort included (one space: s1 is always 0)
    assert [s.show() for s in sigs] == ["s1, p, i", "s1, p, i, k"]
    shown = {t.show() for t in inference.terms(REFERENCE, sigs[1], SMALL)}
    assert {"pc[i]", "cur[k]", "req[k][s1][pg[i]]", "len(queue[i])",
            "gpt[s1][p] = shadow[k][s1][p]", "waiting[cur[i]][i]"} <= shown
    assert "cr3[i]" not in shown  # no slots at one space
    # a variable added by a variant is in the vocabulary with no other change
    extra = REFERENCE.derive("extra", add_variables=[Var("flag", BOOL, (REFERENCE.variables[4].index[0],))])
    assert "flag[k]" in {t.show() for t in inference.terms(extra, inference.signatures(extra)[1], SMALL)}


def test_a_family_holds_in_every_sampled_state_on_the_step_context() -> None:
    """The numpy abstraction of the samples and the StepContext reading of a family agree."""
    data = small_samples("reference")
    table = data.tables[1]
    layout = REFERENCE.layout(SMALL)
    model = Model(REFERENCE, SMALL)
    levels = reachable_levels(model)
    states = [tuple(int(x) for x in r) for r in levels.packer.unpack(levels.keys)]
    rng = np.random.default_rng(7)
    picks = [tuple(sorted(rng.choice(len(table.terms), size=2, replace=False))) for _ in range(6)]
    for cols in picks:
        fam = inference.family(table, cols, layout)
        lem = fam.lemma()
        for state in states[::13]:
            for args in product(*(range(d.size(SMALL)) for _, d in lem.params)):
                assert lem.fn(model.context(state), *args), (fam.show(), model.to_json(state))


def test_learns_and_proves_the_reference_without_the_shipped_lemmas() -> None:
    res = inference.infer(encode(REFERENCE, Bounds(1, 1, 1, 1)), data=small_samples("reference"), timeout=120)
    assert res.status == "proved", res.reason
    lemmas = [f.lemma() for f in res.families] + inference.property_lemmas(REFERENCE)
    assert check_inductive(encode(REFERENCE, Bounds(1, 1, 1, 1)), lemmas).status == "proved"


def test_a_buggy_variant_is_never_proved() -> None:
    # reload-no-drain is violated at one VCPU (check: 5 steps); every published bug and mutant is
    # refused in benchmarks/bench_prove.py --refuse (slower)
    one = Bounds(1, 1, 1, 1)
    data = inference.samples(PUBLISHED["reload-no-drain"], ((one, None),))
    res = inference.infer(encode(PUBLISHED["reload-no-drain"], one), data=data, timeout=60)
    assert res.status == "unknown" and "no family" in res.reason


def test_families_save_and_load(tmp_path: Path) -> None:
    data = small_samples("reference")
    layout = REFERENCE.layout(SMALL)
    fams = [inference.family(data.tables[1], cols, layout) for cols in ((0, 5), (3,), (10, 20, 30))]
    doc = json.loads(json.dumps(inference.save(fams, REFERENCE, [SMALL])))
    back = inference.load(doc, REFERENCE, Bounds(3, 2, 2, 2))
    assert [f.show() for f in back] == [f.show() for f in fams]
    assert [(f.terms, f.rows, f.mode) for f in back] == [(f.terms, f.rows, f.mode) for f in fams]
    with pytest.raises(inference.InferError, match="no term"):
        doc["lemmas"][0]["terms"][0] = "nosuch[i]"
        inference.load(doc, REFERENCE, SMALL)


def test_cli_learned_route_invariant_out_and_lemmas(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    saved = tmp_path / "learned.json"
    assert main(["prove", "--json", "--vcpus", "1", "--no-shipped-lemmas", "--infer-first", "--timeout", "200",
                 "--invariant-out", str(saved)]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["route"] == "inferred+houdini+induction" and first["lemmas_learned_at"]
    doc = json.loads(saved.read_text())
    assert doc["format"] == "deferral-lemmas/2" and [x["shown"] for x in doc["lemmas"]] == first["invariant"]
    # every other family Houdini kept is saved too (candidates for other bounds), and loaded
    extra = doc.get("inductive", [])
    assert not {x["shown"] for x in extra} & set(first["invariant"])
    assert len(inference.load(doc, REFERENCE, Bounds(1, 1, 1, 1))) == len(doc["lemmas"]) + len(extra)
    assert main(["prove", "--json", "--vcpus", "1", "--lemmas", str(saved)]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["status"] == "proved" and second["route"] == "lemma-file+houdini+induction"


def test_a_canceled_solver_reason_is_text() -> None:
    import z3

    from deferral.checks.symbolic.pdr import z3_text
    assert z3_text(z3.Z3Exception(b"canceled")) == "canceled"


def test_lazy_ipi_return_example_is_safe_and_breaks_shipped_lemmas() -> None:
    from deferral.checks.explicit.search import search
    from deferral.model.invariant import INVARIANT
    from deferral.model.variants import load_variant_file
    protocol = load_variant_file(Path(__file__).parents[3] / "examples" / "lazy_ipi_return.py")
    found = search(protocol, SMALL)
    assert found.states > 3163 and all(o.status == "holds" for o in found.outcomes), found
    r = check_inductive(encode(protocol, SMALL), INVARIANT)
    assert r.status == "not-inductive" and any("cur[k]" in f or "waitret" in f for f in r.failed), r.failed


def test_auto_unknown_says_why_in_text(capsys: pytest.CaptureFixture[str]) -> None:
    # the shipped lemmas left out and almost no time: every route gives up, and says why as text
    # (the CLI's hard deadline may stop a loaded machine before the JSON: allow that one outcome)
    code = main(["prove", "--json", "--vcpus", "2", "--no-shipped-lemmas", "--timeout", "2"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 3
    if "error" in doc:
        assert doc["error"]["kind"] == "limit" and "verdict unknown" in doc["error"]["message"]
        return
    assert doc["status"] == "unknown"
    assert "no route settled it" in doc["reason"] and "b'canceled'" not in doc["reason"] and isinstance(doc["log"], list)


def _excluding_reference(rows: np.ndarray, terms: list, row: np.ndarray, size: int, banned: set, limit: int) -> list:
    """The exclusion search as it was written first (Python loops over the zero pairs), kept to
    check the vectorized one against: the same column sets in the same order."""
    match = rows == row[None, :]
    if size > 1:
        width = match.shape[1]
        match = np.unpackbits(inference.unique_rows(np.packbits(match, axis=1)), axis=1)[:, :width].astype(bool)
        match = match[match.sum(axis=1) >= size]
    counts = match.sum(axis=0)
    cost = [inference._cost(t) for t in terms]
    found: list = []
    if size == 1:
        found = [(cost[c], (c,)) for c in np.flatnonzero(counts == 0)]
    elif size == 2:
        m = match.astype(np.float32)
        both = m.T @ m
        found = [(cost[a] + cost[c], (int(a), int(c))) for a, c in zip(*np.nonzero(both == 0))
                 if a < c and counts[a] and counts[c]]
    elif size == 3:
        for a in [int(c) for c in np.argsort(counts) if counts[c]][:16]:
            sub = match[match[:, a]].astype(np.float32)
            both = sub.T @ sub
            found += [(cost[a] + cost[b] + cost[c], tuple(sorted((a, int(b), int(c)))))
                      for b, c in zip(*np.nonzero(both == 0)) if b < c and a not in (b, c)]
    else:
        for a in [int(c) for c in np.argsort(counts) if counts[c]][:8]:
            sub = match[match[:, a]]
            inner = sub.sum(axis=0)
            for b in [int(c) for c in np.argsort(inner) if inner[c] and c != a][:8]:
                rest = sub[sub[:, b]].astype(np.float32)
                both = rest.T @ rest
                found += [(cost[a] + cost[b] + cost[c] + cost[d], tuple(sorted((a, b, int(c), int(d)))))
                          for c, d in zip(*np.nonzero(both == 0)) if c < d and not {a, b} & {int(c), int(d)}]
    found.sort()
    out: list = []
    for _, key in found:
        if key not in banned and key not in out:
            out.append(key)
        if len(out) >= limit:
            break
    return out


def test_the_exclusion_search_finds_the_cheapest_column_sets_no_sample_has() -> None:
    """``infer.excluding`` (vectorized, its match patterns memoized across sizes) returns the same
    column sets in the same order as the loops it replaced, on random tables with real terms
    (their costs differ: nested reads cost more), each set excluding the state from every row."""
    sig = inference.signatures(REFERENCE)[1]
    terms = inference.terms(REFERENCE, sig, SMALL)[:40]
    rng = np.random.default_rng(7)
    sizes_found: set = set()
    for trial in range(12):
        rows = inference.unique_rows(rng.integers(0, 3, size=(25 + 10 * trial, len(terms))).astype(np.uint8))
        row = rng.integers(0, 3, size=len(terms)).astype(np.uint8)
        if trial % 3 == 0:
            row[trial] = 3  # a value no row has: a one-term set
        table = inference.Table(sig, terms, rows)
        memo: dict = {}
        for size in (1, 2, 3, 4):
            banned = {(0, 1), (2, 5, 9)} if trial % 2 else set()
            got = inference.excluding(table, row, size, banned, 5, memo)
            assert got == _excluding_reference(rows, terms, row, size, banned, 5), (trial, size)
            for key in got:
                assert len(key) == size and key not in banned
                assert not (rows[:, list(key)] == row[list(key)]).all(axis=1).any()
            sizes_found |= {size} if got else set()
    assert sizes_found == {1, 2, 3, 4}  # every size was exercised with results


def test_sampling_ends_by_its_deadline_even_for_its_first_sample() -> None:
    """``prove --vcpus 2 --spaces 2 --no-shipped-lemmas --timeout 5`` (a cold cache): the learned route's
    first sample at 2,1,1,1,S=2 ran to its 40,000 states (and waited for its compiled loop) past the
    route's deadline, and the CLI's alarm ended the command without figures. Now it stops at the
    deadline with the states reached so far (at least the initial one)."""
    import time

    bounds = REFERENCE.bounds(vcpus=2, pages=1, frames=1, queue=1, spaces=2)
    whole = inference.reachable_rows(REFERENCE, bounds, 40_000)
    start = time.monotonic()
    got = inference.samples(REFERENCE, inference.sample_bounds(bounds), deadline=start + 0.05)
    took = time.monotonic() - start
    assert took < 0.5 + 0.25 * took_whole(bounds), took
    assert got.bounds == [inference.sample_bounds(bounds)[0][0]] and 1 <= got.states < whole.shape[0]


def took_whole(bounds: Bounds) -> float:
    """Seconds a whole first sample takes here (the test's yardstick under the machine's load)."""
    import time

    start = time.monotonic()
    inference.reachable_rows(REFERENCE, bounds, 40_000)
    return time.monotonic() - start


def test_a_sample_no_caller_bounds_ends_by_the_commands_deadline() -> None:
    """paramlearn's samples give reachable_rows no deadline: under ``prove --timeout`` the command's bounds it."""
    import time

    from deferral.checks.explicit.limits import command_ends_by

    bounds = REFERENCE.bounds(vcpus=2, pages=1, frames=1, queue=1, spaces=2)
    whole = inference.reachable_rows(REFERENCE, bounds, 40_000)
    # a deadline already past (a short one is met by a fast machine: 40,000 states took 0.02-0.12 s)
    with command_ends_by(time.monotonic() - 1.0):
        cut = inference.reachable_rows(REFERENCE, bounds, 40_000)
    assert whole.shape[0] == 40_000 and 1 <= cut.shape[0] < whole.shape[0]
