"""The fused C successor loop agrees with the per-action numpy path: keys, transitions, searches."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from deferral.checks.explicit import cbuild, fused, fusedcanon, jit, packing, vectorized
from deferral.checks.explicit.expand import Expander
from deferral.checks.explicit.explore import explore
from deferral.checks.explicit.numpy_ops import successors
from deferral.checks.explicit.packing import Packer
from deferral.checks.explicit.vectorized import explore_vectorized, reachable_levels
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model
from deferral.model.context import StepError
from deferral.model.schema import BOOL, PAGE, VCPU, VCPU_OR_NONE, Layout, Queue, Range, Var
from deferral.model.variants import PUBLISHED

pytestmark = pytest.mark.skipif(cbuild.compiler() is None, reason="no C compiler")


# one key word and several (3,2,1,2), one address space and two (S=2), 2 and 6 permutations
@pytest.mark.parametrize("b", [(2, 2, 1, 2), (3, 1, 2, 2), (2, 1, 1, 1, 2), (3, 2, 1, 2)])
def test_transitions_agree(b: tuple) -> None:
    model = Model(REFERENCE, Bounds(*b))
    keys = reachable_levels(model, max_states=6000).keys
    ex = Expander(model, True)
    loop = ex.fused()
    assert loop is not None
    got = loop.successors(keys, 7)
    assert got is not None
    out_keys, parents, actions, fired, per_step = got
    want_keys, want_parents, want_actions = ex.successors(ex.packer.unpack(keys))
    assert out_keys.dtype == want_keys.dtype and (ex.packer.n_words > 1) == (b == (3, 2, 1, 2))
    assert np.array_equal(out_keys, want_keys)
    assert np.array_equal(parents, want_parents + 7) and parents.dtype == np.uint32
    assert np.array_equal(actions, want_actions)
    assert np.array_equal(fired, np.bincount(want_actions, minlength=len(model.actions)))
    rows = ex.packer.unpack(keys)
    for s, name in enumerate(ex.step_names):
        some = np.zeros(rows.shape[0], dtype=bool)
        for action in model.actions:
            if action.step.name == name:
                some[ex.enabled(rows, action)] = True
        assert per_step[s] == some.sum(), name


def _summary(r) -> tuple:
    return (r.states, r.transitions, r.depth, r.complete, r.coverage, r.stats["edge_bytes_per_state"],
            [(o.name, o.status, o.path) for o in r.outcomes])


def _always_fused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every chunk through the fused loop (built before the first chunk, not beside it)."""
    build = fused.LazyFused.get
    monkeypatch.setattr(fused.LazyFused, "get", lambda self, rows=None, poll=None: build(self, None))
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 997)  # many chunks: two threads overlap


# holding, invariant-violating, liveness-violating; two address spaces and 5 VCPUs (120
# permutations: the tables' canonical key) cut by --max-states
@pytest.mark.parametrize(("name", "b", "cut"), [("reference", (2, 1, 1, 1), None),
                                                ("drain-local-only", (2, 1, 1, 1), None),
                                                ("wait-irqs-off", (2, 1, 1, 1), None),
                                                ("reference", (2, 1, 1, 1, 2), 30_000),
                                                ("reference", (5, 1, 1, 1), 20_000)])
def test_search_agrees(name: str, b: tuple, cut: int | None, monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as m:
        _always_fused(m)
        fast = explore_vectorized(PUBLISHED[name], Bounds(*b), workers=2, max_states=cut)
    monkeypatch.setenv(jit.ENV, "0")
    # the same chunks: which AG EF edges are pruned depends on the chunk order (goal flags
    # set by earlier chunks), not the verdicts; the kept edges' bytes are compared exactly
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 997)
    slow = explore_vectorized(PUBLISHED[name], Bounds(*b), workers=1, max_states=cut)
    assert _summary(fast) == _summary(slow)


def test_untraceable_step_keeps_the_numpy_path(monkeypatch: pytest.MonkeyPatch) -> None:
    fill = REFERENCE.step("fill")

    def guard(s, i, p):  # ``*`` is not traced (numpy runs it)
        return fill.guard(s, i, p) & (s.pc[i] * 1 == s.pc[i])

    variant = replace(REFERENCE, steps=tuple(st.with_guard(guard) if st is fill else st for st in REFERENCE.steps))
    assert Expander(Model(variant, Bounds(2, 1, 1, 1)), True).fused() is None
    _always_fused(monkeypatch)
    got = explore_vectorized(variant, Bounds(2, 1, 1, 1), workers=1)
    ref = explore_vectorized(REFERENCE, Bounds(2, 1, 1, 1), workers=1)
    assert _summary(got) == _summary(ref)


def test_out_of_domain_write_raises_the_steps_error(monkeypatch: pytest.MonkeyPatch) -> None:
    fill = REFERENCE.step("fill")

    def bad_effect(s, i, p):
        fill.effect(s, i, p)
        s.tlb[i][p] = s.shadow[i][p] + 5

    variant = replace(REFERENCE, name="bad", steps=tuple(st.with_effect(bad_effect) if st is fill else st
                                                         for st in REFERENCE.steps))
    assert Expander(Model(variant, Bounds(2, 1, 1, 1)), True).fused() is not None
    messages = []
    for env in ("1", "0"):  # the fused loop, then the numpy path: the same error
        with monkeypatch.context() as m:
            _always_fused(m)
            m.setenv(jit.ENV, env)
            with pytest.raises(StepError, match=r"step fill\(.*\) in bad.*: wrote \d+ to .*outside its domain.*; state") as err:
                explore_vectorized(variant, Bounds(2, 1, 1, 1), workers=1)
            messages.append(str(err.value))
    assert messages[0] == messages[1]


def test_a_read_at_an_index_out_of_range_raises_the_concrete_models_error_on_every_path(monkeypatch, lost_cur) -> None:
    """The fused loop, the compiled kernels and numpy select among a variable's elements: a read at an
    index naming none (``none`` as a VCPU) read some element instead, so check answered on a system
    the concrete model refuses ("holds", liveness violated in 3 steps); plain raised. Now every path
    raises the plain engine's error, located at the same state."""
    variant = lost_cur  # take_ipi forgets its initiator from Idle (conftest.py)
    bounds = Bounds(2, 1, 1, 1)
    with pytest.raises(StepError) as plain:
        explore(Model(variant, bounds))
    assert "index out of range: pg[2]" in str(plain.value)
    for env in ("1", "0"):  # the fused loop, then the kernels and numpy path
        with monkeypatch.context() as m:
            _always_fused(m)
            m.setenv(jit.ENV, env)
            with pytest.raises(StepError) as err:
                explore_vectorized(variant, bounds, workers=1)
        assert str(err.value) == str(plain.value)
    # the numpy path alone (where the kernels cannot trace a step): VCPU 1 handling an IPI with no initiator
    model = Model(variant, bounds)
    shown = model.to_json(model.initial)
    shown["pc"] = ["SdWait", "Ipi"]
    rows = np.array([model.layout.from_json(shown)], dtype=np.int16)
    ack = next(a for a in model.actions if a.step.name == "ack_ipi" and a.args == (1,))
    with pytest.raises(StepError, match="index out of range"):
        successors(model.layout, variant.procedure_table, rows, np.array([0]), ack.step, ack.args, "ack_ipi(1)",
                   variant.name)


@pytest.mark.parametrize("name", ["reference", "drain-local-only", "wait-irqs-off"])
def test_properties_agree(name: str) -> None:
    model = Model(PUBLISHED[name], Bounds(2, 2, 1, 2))
    ex = Expander(model, True)
    loop = ex.fused()
    assert loop is not None and {p.name for p in loop.properties} == {p.name for p in model.protocol.properties}
    keys = reachable_levels(model, max_states=5000).keys
    rows = ex.packer.unpack(keys)
    masks = loop.holds(keys)
    for prop in model.protocol.properties:
        assert np.array_equal(masks[prop.name], ex.holds(rows, prop)), prop.name


@pytest.mark.parametrize("spread", [50, 1 << 40])  # many duplicates and few; keys sharing high digits
def test_dedup_agrees_with_a_stable_sort(spread: int) -> None:
    model = Model(REFERENCE, Bounds(2, 2, 1, 2))
    loop = Expander(model, True).fused()
    assert loop is not None and loop.dedup is not None
    rng = np.random.default_rng(spread)
    keys = rng.integers(0, spread, size=20_000, dtype=np.uint64) + np.uint64(1 << 50)
    known_keys = np.unique(rng.choice(keys, size=3000))
    runs = [(known_keys[i::2].copy(), np.arange(i, known_keys.shape[0], 2, dtype=np.uint32)) for i in range(2)]
    cand, first, codes, uidx = loop.dedup(keys.copy(), runs, True)
    distinct, first_want, uidx_want = np.unique(keys, return_index=True, return_inverse=True)
    state = dict(zip(known_keys.tolist(), range(known_keys.shape[0])))
    new = ~np.isin(distinct, known_keys)
    assert np.array_equal(cand, distinct[new]) and np.array_equal(first, first_want[new])
    assert np.array_equal(uidx, uidx_want.ravel())
    want_codes = [state[k] if k in state else 0 for k in distinct.tolist()]
    want_codes = np.where(new, -1 - np.cumsum(new) + 1, want_codes)
    assert np.array_equal(codes, want_codes)


@pytest.mark.parametrize("spread", [50, 1 << 40])
def test_two_word_dedup_agrees_with_a_stable_sort(spread: int) -> None:
    model = Model(REFERENCE, Bounds(3, 2, 1, 2))  # keys of two words
    packer = Expander(model, True).packer
    loop = Expander(model, True).fused()
    assert packer.n_words == 2 and loop is not None and loop.dedup is not None
    rng = np.random.default_rng(spread)
    words = np.stack([rng.integers(0, 3, size=20_000, dtype=np.uint64) << np.uint64(40),
                      rng.integers(0, spread, size=20_000, dtype=np.uint64) << np.uint64(20)], axis=1)
    keys = packer.to_sortable(words)  # big-endian void keys: sort and compare in key order
    distinct, first_want, uidx_want = np.unique(keys, return_index=True, return_inverse=True)
    known_keys = distinct[rng.random(distinct.shape[0]) < 0.3]
    runs = [(known_keys[i::2].copy(), np.arange(i, known_keys.shape[0], 2, dtype=np.uint32)) for i in range(2)]
    cand, first, codes, uidx = loop.dedup(words.copy(), runs, True)
    new = ~np.isin(distinct, known_keys)
    assert cand.dtype == keys.dtype and np.array_equal(cand, distinct[new])
    assert np.array_equal(first, first_want[new]) and np.array_equal(uidx, uidx_want.ravel())
    state = {k.tobytes(): n for n, k in enumerate(known_keys)}
    want_codes = np.where(new, -1 - np.cumsum(new) + 1, [state.get(k.tobytes(), 0) for k in distinct])
    assert np.array_equal(codes, want_codes)


# holding, invariant-violating, liveness-violating, with keys forced to two words
@pytest.mark.parametrize("name", ["reference", "drain-local-only", "wait-irqs-off"])
def test_two_word_search_agrees(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(packing, "_WORD_LIMIT", 1 << 24)  # 2,1,1,1 keys then take two words
    monkeypatch.setattr(Expander, "_fused_key", lambda self, symmetry: None)  # found by its source
    assert Packer(REFERENCE.layout(Bounds(2, 1, 1, 1)), True).n_words == 2
    with monkeypatch.context() as m:
        _always_fused(m)
        fast = explore_vectorized(PUBLISHED[name], Bounds(2, 1, 1, 1), workers=2)
    monkeypatch.setenv(jit.ENV, "0")
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 997)
    slow = explore_vectorized(PUBLISHED[name], Bounds(2, 1, 1, 1), workers=1)
    assert fast.stats["key_bytes"] == 16 and _summary(fast) == _summary(slow)


# holding, invariant-violating, liveness-violating: the loop comes in the middle of the search
@pytest.mark.parametrize("name", ["reference", "drain-local-only", "wait-irqs-off"])
def test_a_background_build_is_used_then_cached(name: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """A search past ``BUILD_FROM`` states builds the loop beside its numpy path and switches to it
    when it is ready; the next search of the same model finds it cached and uses it from its
    first level. Counts, verdicts, coverage and counterexamples are those of the numpy path."""
    monkeypatch.setenv("DEFERRAL_CACHE", str(tmp_path))
    monkeypatch.setenv(fused.ENV_BUILD_FROM, "400")
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 97)  # many small chunks: the switch comes mid-level
    first = explore_vectorized(PUBLISHED[name], Bounds(2, 1, 1, 1), workers=2)
    assert first.stats["c_loop"] == "built" and len(list(tmp_path.glob("key-*.json"))) == 1
    again = explore_vectorized(PUBLISHED[name], Bounds(2, 1, 1, 1), workers=2)
    assert again.stats["c_loop"] == "cached"
    monkeypatch.setenv(jit.ENV, "0")
    slow = explore_vectorized(PUBLISHED[name], Bounds(2, 1, 1, 1), workers=1)
    assert slow.stats["c_loop"] == "none"
    assert _summary(first) == _summary(slow) == _summary(again)


@pytest.mark.parametrize("name", ["reference", "drain-local-only", "wait-irqs-off"])
def test_a_search_that_switches_to_the_loop_midway_agrees(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The numpy path for the first levels, the loop from the level after BUILD_FROM states (the
    build made synchronous here, so the switch comes at a known level): the numpy path's results."""
    monkeypatch.setenv(fused.ENV_BUILD_FROM, "400")
    monkeypatch.setattr(fused.LazyFused, "start", lambda self: self.get(None))
    monkeypatch.setattr(vectorized, "CHUNK_ROWS", 97)
    monkeypatch.setattr(Expander, "_fused_key", lambda self, symmetry: None)  # not found before start()
    used = []
    expand, numpy_path = fused.FusedLoop.expand, vectorized._Search.transitions
    monkeypatch.setattr(fused.FusedLoop, "expand", lambda self, *a: used.append("c") or expand(self, *a))
    monkeypatch.setattr(vectorized._Search, "transitions", lambda self, *a: used.append("np") or numpy_path(self, *a))
    mixed = explore_vectorized(PUBLISHED[name], Bounds(2, 1, 1, 1), workers=2)
    assert used[0] == "np" and used[-1] == "c" and mixed.stats["c_loop"] in ("built", "cached")
    monkeypatch.setenv(jit.ENV, "0")
    slow = explore_vectorized(PUBLISHED[name], Bounds(2, 1, 1, 1), workers=1)
    assert _summary(mixed) == _summary(slow)


def test_the_loop_is_built_from_the_first_level_at_five_or_six_vcpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(fused.ENV_BUILD_FROM, raising=False)
    assert fused.build_from() == fused.BUILD_FROM and fused.build_from(many_orders=True) == 0
    monkeypatch.setenv(fused.ENV_BUILD_FROM, "77")  # the override holds for both
    assert fused.build_from() == fused.build_from(many_orders=True) == 77


def test_a_small_search_builds_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("DEFERRAL_CACHE", str(tmp_path))
    monkeypatch.setenv(fused.ENV_BUILD_FROM, "4000")  # 2,1,1,1 has 3,163 states
    result = explore_vectorized(REFERENCE, Bounds(2, 1, 1, 1), workers=2)
    assert result.stats["c_loop"] == "none" and not list(tmp_path.glob("key-*.json"))


# the staged canonical key (one stage a word, several, many; 24 permutations at 4 VCPUs) and
# the tables' version it falls back to (visiting the orders of equal signatures, or, without a
# signature, every permutation), against numpy's keys (the start state and others are
# symmetric: their images tie on every stage)
@pytest.mark.parametrize("b,stage,max_perms,signature", [
    ((3, 2, 1, 2), 16, 24, True), ((3, 2, 1, 2), 3, 24, True), ((3, 2, 1, 2), 16, 0, True),
    ((3, 2, 1, 2), 16, 0, False), ((4, 1, 1, 1), 5, 24, True), ((4, 1, 1, 1), 16, 0, True),
    ((4, 1, 1, 1), 16, 0, False), ((2, 2, 1, 2), 1000, 24, True), ((5, 1, 1, 1), 16, 24, True)])
def test_canonical_keys_agree(b: tuple, stage: int, max_perms: int, signature: bool,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fused, "STAGE_SLOTS", stage)
    monkeypatch.setattr(fused, "MAX_STAGED_PERMS", max_perms)
    model = Model(REFERENCE, Bounds(*b))
    keys = reachable_levels(model, max_states=4000).keys
    ex = Expander(model, True)
    if not signature:
        ex.packer.sig_slots = None  # numpy then takes every image too
    code, names = ex._fused_source()
    staged = len(model.layout.permutations) <= max_perms
    assert ("acc[" in code) == staged  # the staged version, or the tables'
    assert ("#define NSIG 0" in code) == (not staged and not signature)
    lib, problem = cbuild.load(code)
    assert lib is not None, problem
    loop = fused.make(lib, ex.packer, len(model.actions), len(ex.step_names), ex.action_dtype, [])
    got = loop.successors(keys, 0)
    assert got is not None
    want_keys, _, _ = ex.successors(ex.packer.unpack(keys))
    assert np.array_equal(got[0], want_keys)


def _sparse_rows(layout: Layout, m: int, density: float, seed: int) -> np.ndarray:
    """``m`` rows of any values in the slots' domains, most slots 0 and VCPU values the last
    (none where there is one): many VCPUs alike in every variable (a swap of them fixes the
    row), others alike in some."""
    rng = np.random.default_rng(seed)
    sizes = np.array(layout.sizes)
    rows = (rng.random((m, sizes.size)) < density) * rng.integers(0, 1 << 30, (m, sizes.size)) % sizes
    named = [j for j, slot in enumerate(layout.slots) if slot.vcpu_valued]
    rows[:, named] = np.where(rng.random((m, len(named))) < density, rows[:, named], sizes[named] - 1)
    return rows.astype(np.uint8)


# the tables' version with 120 and 720 permutations: the orders of equal signature, of them one
# per arrangement of the VCPUs whose swaps fix the row (with no signature: every permutation)
@pytest.mark.parametrize("n,signature,m", [(5, True, 6000), (5, False, 1500), (6, True, 1500)])
def test_canonical_keys_of_any_rows_are_the_least_images(n: int, signature: bool, m: int) -> None:
    model = Model(REFERENCE, Bounds(n, 1, 1, 1))
    ex = Expander(model, True)
    if not signature:
        ex.packer.sig_slots = None
    lib, problem = cbuild.load(ex._fused_source()[0])
    assert lib is not None, problem
    loop = fused.make(lib, ex.packer, len(model.actions), len(ex.step_names), ex.action_dtype, [])
    rows = np.concatenate([_sparse_rows(model.layout, m // 3, density, n) for density in (0.02, 0.06, 0.2)])
    got = loop.canonical_keys(rows)
    assert np.array_equal(got, ex.packer.canonical_keys_all(rows))  # the least of every image
    perms = model.layout.permutations
    rng = np.random.default_rng(n)
    moved = np.array([model.layout.permute(row, perms[rng.integers(len(perms))]) for row in rows.tolist()],
                     dtype=np.uint8)
    assert np.array_equal(loop.canonical_keys(moved), got)  # the same key for the whole orbit
    swaps = [perm for perm in perms if sum(i != v for i, v in enumerate(perm)) == 2]
    fixed = sum(any(model.layout.permute(row, swap) == tuple(row) for swap in swaps) for row in rows.tolist())
    assert fixed > rows.shape[0] // 3  # rows whose VCPUs a swap exchanges without changing them


# layouts of no protocol: a signature of two variables then a VCPU pointer per VCPU, a
# VCPU-to-VCPU relation, a queue of VCPUs, a pointer per page; a signature cut at its first
# slots (a wide variable); none (a pointer first, or a relation first)
_LAYOUTS = {
    "signature": (Var("busy", BOOL, (VCPU,)), Var("level", Range(0, 2), (VCPU,)), Var("to", VCPU_OR_NONE, (VCPU,)),
                  Var("edge", BOOL, (VCPU, VCPU)), Queue("q", VCPU, (VCPU,), capacity=2),
                  Var("holder", VCPU_OR_NONE, (PAGE,))),
    "cut": (Var("wide", Range(0, 250), (VCPU, PAGE)), Var("more", Range(0, 250), (VCPU, PAGE)),
            Var("edge", BOOL, (VCPU, VCPU)), Var("to", VCPU_OR_NONE, (VCPU,))),
    "pointer-first": (Var("leader", VCPU_OR_NONE), Var("x", BOOL, (VCPU,)), Var("edge", BOOL, (VCPU, VCPU))),
    "relation-first": (Var("edge", BOOL, (VCPU, VCPU)), Var("x", BOOL, (VCPU,)), Var("to", VCPU_OR_NONE, (VCPU,))),
}


@pytest.mark.parametrize("n", [5, 6])
@pytest.mark.parametrize("name", sorted(_LAYOUTS))
def test_canonical_keys_of_any_layout_are_the_least_images(name: str, n: int) -> None:
    layout = Layout(Bounds(n, 2, 1, 2), _LAYOUTS[name])
    packer = Packer(layout, True, jit=False)
    assert (packer.sig_slots is not None) == (name in ("signature", "cut"))
    assert name != "cut" or packer.sig_slots.shape[1] == 3  # of 4 slots a VCPU: 251**4 > 2**24
    lib, problem = cbuild.load(fused.canonical_source(packer))
    assert lib is not None, problem
    m = 900 if n == 5 else 300
    rows = np.concatenate([_sparse_rows(layout, m, density, n) for density in (0.03, 0.1, 0.3)])
    got = fused.canonical_keys(lib, packer, rows)
    assert np.array_equal(got, packer.canonical_keys_all(rows))
    rng = np.random.default_rng(n)
    perms = layout.permutations
    moved = np.array([layout.permute(row, perms[rng.integers(len(perms))]) for row in rows.tolist()], dtype=np.uint8)
    assert np.array_equal(fused.canonical_keys(lib, packer, moved), got)


def _loop_of(ex: Expander, model: Model, form: str) -> "fused.FusedLoop":
    props = ex._traced_props()
    code = fused.generate(ex.layout, ex.procs, model.actions, ex.step_of, len(ex.step_names), ex.packer,
                          ex.action_dtype, props, form=form)
    lib, problem = cbuild.load(code)
    assert lib is not None, problem
    return fused.make(lib, ex.packer, len(model.actions), len(ex.step_names), ex.action_dtype, props)


# the loop over instances of one text (tables of their slots and constants) against a block per
# instance: reachable states, and rows of any values (some steps then write outside a domain);
# a variant that writes outside one, one with two spaces, one with 5 VCPUs (the tables' key)
@pytest.mark.parametrize("name,b", [("reference", (2, 2, 1, 2)), ("drain-local-only", (3, 1, 1, 2, 2)),
                                    ("reference", (5, 1, 1, 1)), ("switch-no-drain", (2, 2, 2, 2, 2))])
def test_the_shared_form_gives_the_straight_forms_transitions(name: str, b: tuple) -> None:
    model = Model(PUBLISHED[name], Bounds(*b))
    ex = Expander(model, True)
    straight, shared = _loop_of(ex, model, "straight"), _loop_of(ex, model, "shared")
    keys = reachable_levels(model, max_states=3000).keys
    rng = np.random.default_rng(len(b))
    sizes = np.array(model.layout.sizes)
    rows = (rng.integers(0, 1 << 30, (400, sizes.size)) % sizes).astype(ex.packer.dtype_rows)
    sparse = (rng.random((400, sizes.size)) < 0.1) * rows
    batches = [keys, ex.packer.canonical_keys(rows), ex.packer.canonical_keys(sparse.astype(rows.dtype))]
    batches += [np.ascontiguousarray(k[i::40]) for k in batches[1:] for i in range(40)]  # some have no bad write
    outcomes = set()
    for batch in batches:
        a, c = straight.successors(batch, 3), shared.successors(batch, 3)
        outcomes.add(a is None)
        assert (a is None) == (c is None)
        if a is not None:
            assert all(np.array_equal(x, y) for x, y in zip(a, c))
            assert a[0].shape[0] > 0
        assert all(np.array_equal(x, y) for x, y in zip(straight.holds(batch).values(), shared.holds(batch).values()))
    assert False in outcomes


def test_the_shared_form_shares_blocks() -> None:
    model = Model(REFERENCE, Bounds(4, 2, 2, 2, 2))
    ex = Expander(model, True)
    code = fused.generate(ex.layout, ex.procs, model.actions, ex.step_of, len(ex.step_names), ex.packer,
                          ex.action_dtype, form="shared")
    loops = code.count("const int32_t *P = PAR")
    blocks = code.count("\n    { /* ")
    assert 0 < loops < blocks < len(model.actions) // 3
    assert fused.generate(ex.layout, ex.procs, model.actions, ex.step_of, len(ex.step_names), ex.packer,
                          ex.action_dtype, form="straight").count("\n    { /* ") == len(model.actions)


def test_the_compiled_keys_longer_signature_gives_the_least_images() -> None:
    """At 6,3,3,3 with three spaces numpy's signature (float32) holds 11 of a VCPU's 20 slots and
    the compiled key's (uint64) all 20: the same keys, the least of every image."""
    layout = REFERENCE.layout(Bounds(6, 3, 3, 3, 3))
    packer = Packer(layout, True, jit=False)
    assert fusedcanon.c_signature(packer)[0].shape[1] > packer.sig_slots.shape[1]
    lib, problem = cbuild.load(fused.canonical_source(packer))
    assert lib is not None, problem
    rows = np.concatenate([_sparse_rows(layout, 150, density, 7) for density in (0.01, 0.03, 0.1)])
    rows[:50] = rows[50]  # one row many times; and rows alike in every signature slot
    got = fused.canonical_keys(lib, packer, rows)
    assert np.array_equal(got, packer.canonical_keys_all(rows))
