"""Carry a counterexample found at a small instance over to larger bounds, by running its steps there.

A path at N=2,V=1,F=1 names its steps by their arguments (VCPU 0 writes page 0 with frame 1,
...); every such argument is a valid one at larger bounds, where the extra VCPUs, pages and
frames start in their initial values. Running the same steps from the larger instance's
initial state usually gives a path of the same length there that ends in the same violation,
but not always (a shootdown waits for every other VCPU's ack, so a step may not be enabled
with more VCPUs): each step is applied by the model at the larger bounds, nothing is assumed,
and a step that is not enabled, or a last state that violates nothing, gives ``None``.
"""

from __future__ import annotations

from deferral.checks.results import Path
from deferral.model.concrete import Model


def lift_path(model: Model, path: Path, prop: str | None = None) -> Path | None:
    """``path``'s steps run from ``model``'s initial state: the path they make there when every step
    is enabled and its last state violates ``prop`` (any invariant when None), else None."""
    state = model.initial
    lifted: Path = [(None, state)]
    for action, _ in path[1:]:
        if action is None:
            return None
        there = model.find_action(action.name, action.args)
        if there is None:
            return None
        following = model.apply(state, there)
        if following is None:
            return None
        lifted.append((there, following))
        state = following
    names = {v.prop for v in model.violations(state)}
    return lifted if names and (prop is None or prop in names) else None
