"""Backends: what the step context needs to compute with a kind of value.

A step function computes with whatever values the state holds: Python ints (one
concrete state), numpy arrays (one value per state of a batch) or Z3 terms. The
operations that cannot be written with Python operators alone (``if``-then-else,
negation, conjunction of many) go through an :class:`Ops` object. Comparisons, ``&``,
``|``, ``+`` and ``-`` are the values' own operators.
"""

from __future__ import annotations

from typing import Any, Iterable


class Ops:
    """The operations of one kind of value."""

    #: True when values are plain Python ints (then ``when`` conditions are known).
    concrete: bool = False
    #: True when values are never changed in place (Z3 terms): conditions built from them can be reused.
    immutable: bool = False

    def ite(self, cond: Any, then: Any, other: Any) -> Any:
        raise NotImplementedError

    def not_(self, x: Any) -> Any:
        raise NotImplementedError

    def is_value(self, x: Any) -> bool:
        """Is ``x`` a state-dependent value (as opposed to a Python constant)?"""
        raise NotImplementedError

    def term_id(self, x: Any) -> int | None:
        """A number naming the value ``x`` among those alive (equal terms share it), for
        :mod:`deferral.model.call_memo`; None where values have none (the call is evaluated)."""
        return None

    def truth(self, x: Any) -> Any:
        """A state value as a truth value (e.g. a 0/1 slot as a boolean), for ``all_``/``any_``."""
        return x

    def all_(self, xs: Iterable[Any]) -> Any:
        """Conjunction; a constant False among ``xs`` makes it False outright."""
        out: Any = True
        for x in xs:
            if self.is_value(x):
                x = self.truth(x)
                out = x if out is True else out & x
            elif not x:
                return False
        return out

    def any_(self, xs: Iterable[Any]) -> Any:
        """Disjunction; a constant True among ``xs`` makes it True outright."""
        out: Any = False
        for x in xs:
            if self.is_value(x):
                x = self.truth(x)
                out = x if out is False else out | x
            elif x:
                return True
        return out

    def outside(self, index: Any, size: int) -> Any:
        """Whether the state value ``index`` names no element of a dimension of ``size`` (below 0 or past it)."""
        return (index < 0) | (index >= size)

    def store(self, slot: Any, value: Any) -> Any:
        """Normalize a value about to be stored in a slot (e.g. bool -> int)."""
        return value


class ConcreteOps(Ops):
    """Plain Python ints: one concrete state."""

    concrete = True

    def ite(self, cond: Any, then: Any, other: Any) -> Any:
        return then if cond else other

    def not_(self, x: Any) -> Any:
        return not x

    def is_value(self, x: Any) -> bool:
        return False

    def all_(self, xs: Iterable[Any]) -> Any:
        return all(xs)

    def any_(self, xs: Iterable[Any]) -> Any:
        return any(xs)

    def store(self, slot: Any, value: Any) -> Any:
        return int(value)


CONCRETE = ConcreteOps()
