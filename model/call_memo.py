"""Procedure calls evaluated once over symbolic terms: a call on the same state, arguments and conditions replays its effect.

Over Z3 terms a step instance is evaluated once per encoding, and many instances make the same
procedure call on the same values: every ``write(i, sp, p, f)`` whose queue overflows drains the
same notices of VCPU i under the same conditions (the 9 pages and frames of each (i, sp) at
6,3,3,3,S=3), and each drain resyncs every VCPU's shadows, so building the steps' terms spent
most of its time there. A call is a pure function of the procedure, its arguments, the enclosing
``when`` conditions and the state values it starts from (and whether undefined accesses are
tracked): where all of these are the ones of an earlier call, the earlier call's effect is
replayed: the slots it changed get the same terms, it counts the same slots written and read,
adds the same undefined-access conditions and returns the same value.

Terms are compared by identity: a state value by its Python object (a replayed call stores the
very objects the first one made, so the next call on them matches too), an argument or condition
by its Z3 term (Z3 shares equal terms). The memo keeps every object its keys name, so no id is
reused while it lives. Only the Z3 encoding uses it (``Encoding``); concrete and batch backends
evaluate each call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass(frozen=True)
class _Effect:
    """What one call did: the slots it changed (to these terms), wrote and read, the undefined-access
    conditions it added, what it returned; ``pinned``: the objects the key names (kept alive)."""

    changed: tuple[tuple[int, Any], ...]
    written: frozenset[int]
    reads: frozenset[int]
    undefined: tuple[Any, ...]
    returned: Any
    pinned: tuple[Any, ...]


class CallMemo:
    """The calls of one encoding's step evaluations (:meth:`run`), keyed as the module docstring says
    (``ctx``: the :class:`~deferral.model.context.StepContext` that calls, which imports this module)."""

    def __init__(self) -> None:
        self._effects: dict[tuple[Any, ...], _Effect] = {}
        self.hits = 0
        self.calls = 0

    def _key(self, ctx: Any, x: Any) -> Any:
        """An argument or condition as a key part: a Python constant by its type and value, a term by its
        Z3 id (tagged apart: the constant 7 is not the term numbered 7); None where it is neither (the call
        is then evaluated)."""
        if isinstance(x, (bool, int)):
            return (type(x).__name__, x)
        found = ctx.ops.term_id(x)
        return None if found is None else ("term", found)

    def run(self, ctx: Any, name: str, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """``fn(ctx, *args)``, or the replay of an earlier call with the same key."""
        self.calls += 1
        parts = [self._key(ctx, a) for a in args] + [self._key(ctx, c) for c in ctx._conds]
        if any(p is None for p in parts):
            return fn(ctx, *args)
        values = ctx.values
        key = (name, tuple(parts), len(args), tuple(map(id, values)), ctx.undefined is None)
        done = self._effects.get(key)
        if done is not None:
            self.hits += 1
            for slot, term in done.changed:
                values[slot] = term
            ctx.written.update(done.written)
            ctx.reads.update(done.reads)
            if ctx.undefined is not None:
                ctx.undefined.extend(done.undefined)
            return done.returned
        before = list(values)
        outer_written, outer_reads = ctx.written, ctx.reads
        undefined_at = len(ctx.undefined) if ctx.undefined is not None else 0
        object.__setattr__(ctx, "written", set())
        object.__setattr__(ctx, "reads", set())
        try:
            returned = fn(ctx, *args)
        finally:
            written, reads = ctx.written, ctx.reads
            outer_written |= written
            outer_reads |= reads
            object.__setattr__(ctx, "written", outer_written)
            object.__setattr__(ctx, "reads", outer_reads)
        changed = tuple((j, v) for j, (v, b) in enumerate(zip(values, before)) if v is not b)
        undefined = tuple(ctx.undefined[undefined_at:]) if ctx.undefined is not None else ()
        self._effects[key] = _Effect(changed, frozenset(written), frozenset(reads), undefined, returned,
                                     (tuple(before), tuple(args), tuple(ctx._conds)))
        return returned
