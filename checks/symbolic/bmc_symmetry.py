"""VCPU symmetry breaking for the bmc: a VCPU is named in a step only after the VCPU numbered one below it.

Where the protocol treats its VCPUs alike (its steps, properties and initial state commute with
renaming them: :func:`~deferral.checks.explicit.symmetry_guard.check_symmetry` proved it, or the
protocol is published), every path renamed is a path of the same length, and a state violates an
invariant iff its renaming does. Rename the VCPUs of any path in the order they are first named by
its steps' arguments (scanning the steps in order, each step's arguments in order; VCPUs never
named keep the numbers left): VCPU ``j`` is then named only at or after the first step that names
``j - 1``. So a bmc that allows only such paths finds a violation at a depth iff the unreduced one
does, the same shortest length, with N! fewer labellings of each path to rule out (at 6 VCPUs, 720).

The constraint per step ``d``, for each ``j >= 1``: "step ``d`` names ``j``" implies "a step before ``d``
named ``j - 1``, or step ``d`` names ``j - 1`` at an earlier argument than ``j``". A step's VCPU
arguments are those of the protocol's symmetric sort.
"""

from __future__ import annotations

from typing import Any

import z3

from deferral.checks.terms.encoding import Encoding
from deferral.model.schema import Sort


def known(basis: str | None) -> bool:
    """Does what renaming VCPUs rests on (:func:`check_symmetry`'s answer; None: not alike) allow the reduction:
    published or proved, not a sample?"""
    return basis in ("published", "proved")


def applies(enc: Encoding) -> bool:
    """Is renaming VCPUs known to commute with ``enc``'s protocol (published, or proved by Z3; not a
    sample) and are there two VCPUs or more to rename? (Decided once per encoding.)"""
    from deferral.checks.explicit.symmetry_guard import check_symmetry
    from deferral.model.variants import AsymmetricProtocol

    if "bmc_symmetry" not in enc.derived:
        try:
            alike = len(_named(enc)) >= 2 and known(check_symmetry(enc.protocol, enc.bounds, enc=enc))
        except AsymmetricProtocol:
            alike = False
        enc.derived["bmc_symmetry"] = alike
    return bool(enc.derived["bmc_symmetry"])


def _named(enc: Encoding) -> dict[int, list[int]]:
    """Each VCPU: its first position among each step instance's VCPU arguments (the symmetric sort's), by
    instance index."""
    named: dict[int, dict[int, int]] = {}
    for action in enc.model.actions:
        position = 0
        for (_, domain), value in zip(action.step.params, action.args):
            if isinstance(domain, Sort) and domain.symmetric:
                named.setdefault(value, {}).setdefault(action.index, position)
                position += 1
    return named


class FirstNamed:
    """The constraints of the module docstring, one step at a time (:meth:`step`: for the selector of step
    ``d``, called for d = 0, 1, ... in order)."""

    def __init__(self, enc: Encoding) -> None:
        named = _named(enc)
        self.vcpus = sorted(named)
        width = enc.selector_sort.size()

        def any_of(indices: Any) -> Any:
            return lambda act: z3.Or([act == z3.BitVecVal(i, width) for i in sorted(indices)])

        self.names = {j: any_of(named[j]) for j in self.vcpus}
        # the instances naming ``lower`` at an earlier argument than ``j`` (both named): j may be named first there
        self.lower_first = {j: any_of([i for i, at in named[j].items() if named[lower].get(i, at) < at])
                            for lower, j in zip(self.vcpus, self.vcpus[1:])}
        self.seen: dict[int, Any] = {j: z3.BoolVal(False) for j in self.vcpus}  # named by a step before
        self.steps = 0

    def step(self, act: Any) -> list[Any]:
        """The constraints on the next step's selector ``act``; afterwards what it names counts as seen."""
        names = {j: self.names[j](act) for j in self.vcpus}
        out = [z3.Implies(names[j], z3.Or(self.seen[lower], self.lower_first[j](act)))
               for lower, j in zip(self.vcpus, self.vcpus[1:])]
        for j in self.vcpus:
            flag = z3.Bool(f"named.{j}@{self.steps}")
            out.append(flag == z3.Or(self.seen[j], names[j]))
            self.seen[j] = flag
        self.steps += 1
        return out
