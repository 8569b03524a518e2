"""Carry a counterexample found at a small instance over to larger bounds, by running its steps there.

A path at N=2,V=1,F=1 names its steps by their arguments (VCPU 0 writes page 0 with frame 1,
...); every such argument is a valid one at larger bounds, where the extra VCPUs, pages and
frames start in their initial values. Running the same steps from the larger instance's
initial state usually gives a path of the same length there that ends in the same violation,
but not always: a shootdown waits for every other VCPU's ack, so with more VCPUs a step may
not be enabled yet. Where the small instance's bounds are known, such a step is preceded by
the fewest steps of the extra elements alone (steps with an argument the small instance does
not have: the third VCPU takes and acks its IPI) that enable it, found breadth-first. Each step
is applied by the model at the larger bounds, nothing is assumed, and a step that cannot be
enabled so, or a last state that violates nothing, gives ``None``. A lifted path is a
counterexample at the larger bounds, not necessarily a shortest one there.
"""

from __future__ import annotations

from deferral.checks.results import Path
from deferral.model.bounds import Bounds
from deferral.model.concrete import Action, Model, State

#: At most this many steps of the extra elements before one step of the small path, and this many
#: states searched for them.
FILL_STEPS, FILL_STATES = 8, 20_000


def lift_path(model: Model, path: Path, prop: str | None = None, small: Bounds | None = None) -> Path | None:
    """``path``'s steps run from ``model``'s initial state (with ``small``, the bounds ``path`` was found
    at, a step not enabled yet is preceded by the fewest steps of the elements ``small`` lacks that
    enable it): the path they make there when every step is enabled and its last state violates
    ``prop`` (any invariant when None), else None."""
    state = model.initial
    lifted: Path = [(None, state)]
    for action, _ in path[1:]:
        if action is None:
            return None
        there = model.find_action(action.name, action.args)
        if there is None:
            return None
        following = model.apply(state, there)
        if following is None and small is not None:
            filler = _enabling(model, state, there, small)
            if filler is None:
                return None
            lifted += filler
            state = filler[-1][1]
            following = model.apply(state, there)
        if following is None:
            return None
        lifted.append((there, following))
        state = following
    names = {v.prop for v in model.violations(state)}
    return lifted if names and (prop is None or prop in names) else None


def _enabling(model: Model, start: State, goal: Action, small: Bounds) -> Path | None:
    """The fewest steps of the elements ``small`` lacks, from ``start``, after which ``goal`` is enabled
    (breadth-first, at most :data:`FILL_STEPS` steps and :data:`FILL_STATES` states), else None."""
    extra = [a for a in model.actions if _names_extra(a, small)]
    if not extra:
        return None
    parent: dict[State, tuple[State, Action] | None] = {start: None}
    level = [start]
    for _ in range(FILL_STEPS):
        following: list[State] = []
        for state in level:
            for action in extra:
                nxt = model.apply(state, action)
                if nxt is None or nxt in parent:
                    continue
                parent[nxt] = (state, action)
                if model.enabled(nxt, goal):
                    out: Path = []
                    at: State = nxt
                    while parent[at] is not None:
                        before, step = parent[at]  # type: ignore[misc]
                        out.append((step, at))
                        at = before
                    return out[::-1]
                if len(parent) >= FILL_STATES:
                    return None
                following.append(nxt)
        level = following
    return None


def _names_extra(action: Action, small: Bounds) -> bool:
    """Does ``action`` have an argument naming an element ``small`` does not have (VCPU 2 at N=2)?"""
    return any(arg >= domain.size(small) for (_, domain), arg in zip(action.step.params, action.args))
