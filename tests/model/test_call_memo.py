"""Procedure calls evaluated once over Z3 terms (model/call_memo.py): the same terms as evaluating every call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import z3

from deferral.checks.terms.encoding import Encoding, Sym, encode
from deferral.model import Bounds
from deferral.model.call_memo import CallMemo
from deferral.model.context import StepContext
from deferral.model.variants import get_variant, load_variant_file

ROOT = Path(__file__).resolve().parents[2]


def _terms(enc: Encoding, calls: CallMemo | None) -> list[Any]:
    """Every step instance's guard, where it runs and fails, and updates, over the encoding's own variables."""
    out = []
    for a in enc.model.actions:
        t = enc._evaluate(a.index, a.step, a.args, enc._base_vars, track_undefined=True, calls=calls)
        out.append((t.guard, t.defined, t.fails_at_guard, t.fails_in_effect, t.updates))
    return out


@pytest.mark.parametrize("name", ["reference", "overflow-drop", "resync-running-only", "examples/defer_all_spaces.py",
                                  "examples/lazy_cur_clear.py"])
def test_same_terms_as_every_call_evaluated(name: str) -> None:
    protocol = load_variant_file(ROOT / name) if name.endswith(".py") else get_variant(name)
    enc = Encoding(protocol, Bounds.from_dict(dict(vcpus=3, pages=2, frames=2, queue=2, spaces=2), protocol.bound_decls))
    calls = CallMemo()
    memo, plain = _terms(enc, calls), _terms(enc, None)
    assert calls.hits > 0  # the writes of a VCPU's space share its overflow's drains
    for (*xs, ux), (*ys, uy) in zip(memo, plain):
        assert all(x.eq(y) for x, y in zip(xs, ys))
        assert ux.keys() == uy.keys() and all(ux[j].eq(uy[j]) for j in ux)


def test_encode_with_shared_calls_passes_its_crosscheck() -> None:
    """encode (its crosscheck against the concrete model on the first states included) at bounds whose overflow
    drains three notices."""
    enc = encode(get_variant("reference"), Bounds(3, 2, 2, 3))
    assert enc.share_calls and len(enc._base_terms) == len(enc.model.actions)


def test_a_constant_argument_is_not_the_term_of_that_number() -> None:
    enc = Encoding(get_variant("reference"), Bounds(2, 1, 1, 1))
    ctx, calls = _context(enc, CallMemo()), CallMemo()
    term = enc._base_vars[0]
    assert calls._key(ctx, term.get_id()) != calls._key(ctx, Sym(term))
    assert calls._key(ctx, True) != calls._key(ctx, 1)
    assert calls._key(ctx, [1]) is None  # neither: that call is evaluated, not looked up


def _context(enc: Encoding, calls: CallMemo) -> StepContext:
    return enc.context(enc._base_vars, track_undefined=True, calls=calls)


def test_a_replayed_call_returns_and_records_what_the_first_did() -> None:
    """A procedure that returns a term, writes and reads at a symbolic index (an undefined access noted):
    the second call on the same state, arguments and conditions replays the first's effect exactly."""
    enc = Encoding(get_variant("reference"), Bounds(2, 2, 1, 2))

    def oldest_dropped(s: StepContext, i: int) -> Any:
        page = s.queue[i].head()
        s.tlb[i][page] = 0  # a symbolic index: every candidate written under its condition
        return s.shadow[i][page]

    calls = CallMemo()
    first, second = _context(enc, calls), _context(enc, calls)
    cond = Sym(enc._base_vars[0] == 0) if not z3.is_bool(enc._base_vars[0]) else Sym(enc._base_vars[0])
    got = []
    for ctx in (first, second):
        with ctx.when(cond):
            got.append(calls.run(ctx, "oldest_dropped", oldest_dropped, (1,)))
    assert calls.hits == 1 and calls.calls == 2
    assert got[0] is got[1]
    assert first.written == second.written and first.written
    assert all(a is b for a, b in zip(first.values, second.values))
    assert len(first.undefined) == len(second.undefined) >= 1
    # another argument, another condition or another state is evaluated again
    calls.run(_context(enc, calls), "oldest_dropped", oldest_dropped, (0,))
    other = _context(enc, calls)
    with other.when(Sym(z3.Bool("other"))):
        calls.run(other, "oldest_dropped", oldest_dropped, (1,))
    written = _context(enc, calls)
    written.pc[0] = 1
    calls.run(written, "oldest_dropped", oldest_dropped, (1,))
    assert calls.hits == 1 and calls.calls == 5
