"""A counterexample to induction generalized by its diagram, minimized on sampled reachable states."""

from __future__ import annotations

import json
from functools import lru_cache
from itertools import product

from deferral.checks.symbolic import infer as inference
from deferral.checks.symbolic.diagram import diagram_families
from deferral.model import REFERENCE, Bounds
from deferral.model.concrete import Model

THREE = Bounds(3, 1, 1, 1)


@lru_cache(maxsize=None)
def samples() -> inference.Samples:
    return inference.samples(REFERENCE, ((Bounds(2, 1, 1, 1), None), (THREE, 4000)))


def unreachable() -> tuple[int, ...]:
    """VCPU 0 waits for VCPU 1's ack while VCPU 1 handles VCPU 2's IPI and 0 is idle (never reached)."""
    model = Model(REFERENCE, THREE)
    shown = model.to_json(model.initial)
    shown["waiting"][0][1] = True
    shown["pc"][1] = "Ipi"
    shown["cur"][1] = 2
    return tuple(model.from_json(shown))


def holds(fam: inference.Family, model: Model, state: tuple[int, ...]) -> bool:
    lem = fam.lemma()
    ctx = model.context(state)
    return all(lem.fn(ctx, *args) for args in product(*(range(d.size(model.bounds)) for _, d in lem.params)))


def test_a_reachable_state_has_no_diagram_family() -> None:
    data = samples()
    model = Model(REFERENCE, THREE)
    assert diagram_families(REFERENCE, data, model.initial, THREE) == []


def test_the_diagram_family_excludes_the_state_and_holds_in_every_sample() -> None:
    data = samples()
    model = Model(REFERENCE, THREE)
    state = unreachable()
    fams = diagram_families(REFERENCE, data, state, THREE, limit=2)
    assert fams, "an unreachable state has a diagram no sampled state satisfies"
    rows = [tuple(int(x) for x in r) for b, r in [(b, rr) for b, raw in data.raw if b == THREE for rr in raw]]
    for fam in fams:
        assert fam.mode == "never" and len(fam.rows) == 1 and 1 <= len(fam.terms) <= 8
        assert not holds(fam, model, state), fam.show()
        assert all(holds(fam, model, r) for r in rows[::97]), fam.show()
        # only the variables it uses, named canonically: one line in the protocol's vocabulary
        used = set().union(*(t.names() for t in fam.terms))
        assert fam.show().startswith("for all ") and " never " in fam.show()
        assert {n for n, _ in fam.sig.vars} >= used


def test_a_three_vcpu_family_saves_and_loads() -> None:
    sig = inference.Signature(tuple((n, s) for s in inference.index_sorts(REFERENCE) if s.name == "vcpu"
                                    for n in ("i", "j", "k")))
    table = REFERENCE  # terms over three VCPUs: waiting[i][j], cur[k]
    ts = {t.show(): t for t in inference.terms(table, sig, THREE)}
    fam = inference.Family(sig, (ts["cur[j]"], ts["waiting[i][j]"], ts["pc[i]"]),
                           ((inference.VAR + 2, 1, 0),), "never", (("k", "true", "Idle"),))
    doc = json.loads(json.dumps(inference.save([fam], REFERENCE, [THREE])))
    back = inference.load(doc, REFERENCE, Bounds(4, 2, 2, 2))
    assert [f.show() for f in back] == [fam.show()]
    assert [(f.terms, f.rows, f.mode) for f in back] == [(fam.terms, fam.rows, fam.mode)]
