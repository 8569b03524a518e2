"""A numpy backend for the step context: the protocol's own step functions over a batch.

Values are numpy arrays with one entry per state of a batch (or Python constants). A
step is evaluated for all states of a frontier at once: the guard gives a mask; the
effect runs only on the enabled rows, reading the columns it needs lazily; the written
slots are checked against their domains and copied into the successor rows.

Nothing here knows the protocol: any :class:`Protocol` (a user's variant adding
variables included) runs through the same :class:`StepContext` as on concrete states.
A step that cannot run on arrays (it branches with Python ``if``/``and``/``or`` on a state
value) raises :class:`NotVectorizable`; the search then falls back to the plain explorer.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from deferral.model.context import USER_ERRORS, StepContext, StepError, describe_user_error
from deferral.model.ops import Ops
from deferral.model.protocol import Property, Step
from deferral.model.schema import Layout


class NotVectorizable(Exception):
    """A step or property uses a state value in Python control flow."""


class NumpyOps(Ops):
    """Values are numpy arrays over a batch of states."""

    concrete = False

    def ite(self, cond: Any, then: Any, other: Any) -> Any:
        if not isinstance(cond, np.ndarray):
            return then if cond else other
        return np.where(cond, then, other)

    def not_(self, x: Any) -> Any:
        if isinstance(x, np.ndarray):
            return ~x if x.dtype == np.bool_ else x == 0
        return not x

    def is_value(self, x: Any) -> bool:
        return isinstance(x, np.ndarray)

    def truth(self, x: Any) -> Any:
        return x if x.dtype == np.bool_ else x != 0

    def store(self, slot: Any, value: Any) -> Any:
        if isinstance(value, np.ndarray):
            return value.astype(np.int16) if value.dtype == np.bool_ else value
        return int(value)


NUMPY = NumpyOps()

_UNREAD = object()

#: What numpy says when an array is used where Python needs one value (if, and, int(), ...).
_NOT_VECTORIZABLE = ("truth value of an array", "only integer scalar arrays", "only length-1 arrays",
                     "only 0-dimensional arrays")


class _Columns(list):  # type: ignore[type-arg]
    """The context's per-slot values: column views of the batch, taken when first read."""

    def __init__(self, rows: np.ndarray) -> None:
        super().__init__([_UNREAD] * rows.shape[1])
        self._rows = rows

    def __getitem__(self, j: Any) -> Any:
        value = list.__getitem__(self, j)
        if value is _UNREAD:
            value = self._rows[:, j]
            list.__setitem__(self, j, value)
        return value


def _context(layout: Layout, procedures: Mapping[str, Callable[..., Any]], rows: np.ndarray) -> StepContext:
    return StepContext(layout, NUMPY, _Columns(rows), procedures, copy_values=False, track_undefined=True)


def raise_outside(where: Any, what: str) -> None:
    """Raise where the mask ``where`` (an access at an index that names no element) holds in some row:
    the concrete model raises "index out of range" there; a selection over a batch would read some
    element instead (the caller locates the state)."""
    if np.any(where):
        raise StepError(f"{what}: reads or writes at an index out of range")


def _defined(ctx: StepContext, what: str) -> None:
    """:func:`raise_outside` for every access of ``ctx`` at a symbolic index."""
    for cond in ctx.undefined or ():
        raise_outside(cond, what)


def _call(what: str, fn: Callable[..., Any], ctx: StepContext, args: Sequence[int]) -> Any:
    try:
        return fn(ctx, *args)
    except StepError as exc:
        raise StepError(f"{what}: {exc}") from None
    except (ValueError, TypeError) as exc:
        text = str(exc)
        if any(sign in text for sign in _NOT_VECTORIZABLE):
            raise NotVectorizable(f"{what} uses a state value as a Python value ({text}); "
                                  "use s.when, s.ite, &, |, s.not_") from None
        raise StepError(f"{what}: raised {type(exc).__name__}: {exc}") from None
    except USER_ERRORS as exc:
        raise StepError(f"{what}: {describe_user_error(exc)}") from None


def _mask(value: Any, n: int) -> np.ndarray:
    if isinstance(value, np.ndarray):
        mask = value if value.dtype == np.bool_ else value != 0
        return np.broadcast_to(mask, (n,))
    return np.full(n, bool(value))


def guard_mask(layout: Layout, procedures: Mapping[str, Callable[..., Any]], rows: np.ndarray,
               step: Step, args: tuple[int, ...], label: str) -> np.ndarray:
    """Where ``step(args)`` is enabled over the batch ``rows``."""
    ctx = _context(layout, procedures, rows)
    mask = _mask(_call(f"step {label}: guard", step.guard, ctx, args), rows.shape[0])
    _defined(ctx, f"step {label}: guard")
    return mask


def successors(layout: Layout, procedures: Mapping[str, Callable[..., Any]], rows: np.ndarray,
               idx: np.ndarray, step: Step, args: tuple[int, ...], label: str,
               protocol_name: str) -> np.ndarray:
    """The successor rows of ``rows[idx]`` under ``step(args)``; written values domain-checked."""
    out = rows[idx]
    ctx = _context(layout, procedures, out)
    _call(f"step {label} in {protocol_name}", step.effect, ctx, args)
    _defined(ctx, f"step {label} in {protocol_name}")
    written = {}
    for j in ctx.written:  # values may be views of ``out``'s columns: copy before writing any
        value = list.__getitem__(ctx.values, j)
        if isinstance(value, np.ndarray) and np.may_share_memory(value, out):
            value = value.copy()
        written[j] = value
    for j, value in written.items():
        size = layout.slots[j].size
        if isinstance(value, np.ndarray):
            if value.dtype == np.bool_:
                value = value.astype(np.int16)
            if value.dtype.kind == "u":
                bad = value >= size
            else:
                bad = (value < 0) | (value >= size)
            if bad.any():
                first = int(np.flatnonzero(np.broadcast_to(bad, (len(idx),)))[0])
                shown = int(np.broadcast_to(value, (len(idx),))[first])
                raise StepError(f"step {label} in {protocol_name}: wrote {shown} to "
                                f"{layout.slots[j].label()}, outside its domain 0..{size - 1}")
            out[:, j] = value
        else:
            if not 0 <= value < size:
                raise StepError(f"step {label} in {protocol_name}: wrote {value} to "
                                f"{layout.slots[j].label()}, outside its domain 0..{size - 1}")
            out[:, j] = value
    return out


def property_holds(layout: Layout, procedures: Mapping[str, Callable[..., Any]], rows: np.ndarray,
                   prop: Property) -> np.ndarray:
    """Where every instance of ``prop``'s predicate holds over the batch."""
    out = np.ones(rows.shape[0], dtype=bool)
    for args in prop.instances(layout.bounds):
        ctx = _context(layout, procedures, rows)
        out &= _mask(_call(f"property {prop.name}{args}", prop.predicate, ctx, args), rows.shape[0])
        _defined(ctx, f"property {prop.name}{args}")
    return out
