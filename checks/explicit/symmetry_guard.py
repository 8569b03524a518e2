"""Is a protocol's declared VCPU symmetry real? Proved with Z3 before a reduced search (sampled where Z3 cannot).

A search up to VCPU symmetry stores one state per orbit; that is exact only when the
protocol's steps treat the VCPUs alike (renaming the VCPUs of a state renames its
successors) and its properties do too (a property holds of a state iff of the state
renamed). The published protocols do (tests check every one); a user's variant may not,
e.g. a step that tests ``i == s.N - 1``, or VCPU 0's IPI handler skipping its flush. Then
the reduced search explores another system: its counts are wrong and it may answer
"holds" to a bug. So before a reduced search of a protocol that is not published:

1. the initial state must be its own renaming (on the concrete model);
2. :func:`~deferral.checks.terms.vcpu_symmetry.prove_vcpu_symmetry` proves with Z3, for every
   state of the bounds' domain, that every step instance and its renaming agree (both fail,
   or both are disabled, or the renamed next state is the renamed instance's next state)
   and that every property holds of a state iff of the state renamed; a difference Z3 finds
   is confirmed on the concrete model and reported as
   :class:`~deferral.model.variants.AsymmetricProtocol` (bad input: run without symmetry);
3. only where Z3 cannot decide (a step with a Python ``if`` on a state value, which Z3
   cannot evaluate; a query out of time), the older check runs: the first states of a
   breadth-first search without symmetry and random states, each against its renamings. That
   is a sample, not a proof: an asymmetry it misses is caught later if a reduced path cannot
   be found again on the real states (:func:`deferral.checks.results.concretize`), with the
   same error.

:func:`check_symmetry` says which of these it rests on ("published", "proved", "sampled"). Where it
is "sampled", the plain engine that runs such a variant (numpy cannot trace it either) makes the
search exact where that is cheap (:func:`exact_check`: at most :data:`EXACT_MAX_PERMS` renamings):
every state it expands is checked against every renaming (:class:`RenamingCheck`), so its basis
is "checked": every state explored, each against all N! renamings.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from deferral.checks.terms.symmetry import permute_args
from deferral.checks.terms.vcpu_symmetry import instance_disagreement, prove_vcpu_symmetry, property_disagreement
from deferral.model.bounds import Bounds
from deferral.model.concrete import Action, Model, State
from deferral.model.context import StepError
from deferral.model.protocol import Protocol
from deferral.model.variants import AsymmetricProtocol, is_published

#: How many reachable states (breadth-first, no symmetry) the check looks at, at most, and
#: how many step instances' successors it may compute in all (the sample shrinks with big bounds).
SAMPLE = 100
BUDGET = 6_000
#: The most renamings (N! - 1) every expanded state is checked against (4 VCPUs: 23); each costs
#: about one more expansion of the state (its step instances and properties on the renamed state).
EXACT_MAX_PERMS = 23


def check_symmetry(protocol: Protocol, bounds: Bounds, sample: int | None = None, enc: Any = None) -> str:
    """Raise :class:`AsymmetricProtocol` if renaming VCPUs does not commute with the steps or the
    properties; else say what that rests on: "published", "proved" (by Z3, or one VCPU) or
    "sampled" (where Z3 could not decide; ``sample`` first states, see the module docstring). ``enc``: the
    caller's Z3 encoding of ``protocol`` at ``bounds`` (not built again)."""
    if is_published(protocol):
        return "published"  # symmetric (tests/checks/explicit/test_symmetry_guard.py proves each)
    model = Model(protocol, bounds)
    layout = model.layout
    perms = layout.generators
    if not perms:
        return "proved"
    for perm in perms:
        if layout.permute(model.initial, perm) != model.initial:
            raise asymmetric(protocol, perm, "the initial state is not symmetric")
    proof = prove_vcpu_symmetry(protocol, bounds, enc=enc)
    if proof.status == "asymmetric":
        assert proof.perm is not None
        raise asymmetric(protocol, proof.perm, proof.reason)
    if proof.status == "proved":
        return "proved"
    sampled(model, protocol, sample)
    return "sampled"


def sampled(model: Model, protocol: Protocol, sample: int | None = None) -> None:
    """The sampled check (module docstring, 3): raise :class:`AsymmetricProtocol` where a first or
    random state's successors, or a property's verdict, differ from its renamings'."""
    layout = model.layout
    perms = layout.generators
    if sample is None:
        sample = max(10, min(SAMPLE, BUDGET // max(1, len(model.actions) * (1 + len(perms)))))
    checked: set[State] = set()

    def commutes(state: State, depth: int) -> list[State]:
        """Check ``state``'s successors against its images' (raise if one has no counterpart); its successors."""
        successors = list(model.successors(state))
        if state not in checked:
            checked.add(state)
            for perm in perms:
                for prop in protocol.properties:
                    what = property_disagreement(model, prop, state, perm)
                    if what:
                        raise asymmetric(protocol, perm, what)
                images = {t for _, t in model.successors(layout.permute(state, perm))}
                for action, succ in successors:
                    if layout.permute(succ, perm) not in images:
                        where = f"a state at depth {depth}" if depth >= 0 else "a random state"
                        raise asymmetric(protocol, perm, f"{action.label()} from {where} "
                                         "has no counterpart after renaming")
        return [succ for _, succ in successors]

    # the first states, breadth-first
    seen = {model.initial}
    queue: deque[tuple[State, int]] = deque([(model.initial, 0)])
    while queue and len(checked) < sample:
        state, depth = queue.popleft()
        for succ in commutes(state, depth):
            if succ not in seen:
                seen.add(succ)
                queue.append((succ, depth + 1))
    # as many again in random states (every variable a random value of its domain, reachable or
    # not): an asymmetry that shows only in deeper states (a VCPU's IPI handler with a TLB entry,
    # a full queue) is seldom among the first states, and steps that treat the VCPUs alike commute
    # with renaming in every state. A state a step cannot run in (it raises) is skipped.
    rng = random.Random(0)
    goal, tries = 3 * sample, 0
    while len(checked) < goal and tries < 6 * sample:
        tries += 1
        state = random_state(layout, rng)
        try:
            commutes(state, -1)
        except AsymmetricProtocol:
            raise
        except Exception:  # noqa: BLE001 - a user's step may fail in an unreachable state: not evidence
            checked.add(state)



class RenamingCheck:
    """Each state a reduced search expands against every renaming of its VCPUs (:meth:`check`)."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.perms = list(model.layout.permutations[1:])
        index = {(a.step.name, a.args): a.index for a in model.actions}
        #: per renaming, the index of each step instance's renamed instance
        self.images = [[index[(a.step.name, permute_args(a.args, a.step, perm))] for a in model.actions]
                       for perm in self.perms]

    def check(self, state: State, depth: int) -> None:
        """Raise :class:`AsymmetricProtocol` where, at ``state`` (reached at ``depth``) and under some
        renaming, a property's verdict or a step instance's outcome (an error, disabled, its next
        state) differs from the renamed instance's at the renamed state. Checked in every state a
        reduced search expands, this makes the search exact: the states it stores are then, with
        their renamings, exactly the reachable states, and each property holds of a state iff of
        each of its renamings."""
        model, layout, protocol = self.model, self.model.layout, self.model.protocol
        here = [_outcome(model, action, state) for action in model.actions]
        for perm, images in zip(self.perms, self.images):
            for prop in protocol.properties:
                what = property_disagreement(model, prop, state, perm)
                if what:
                    raise asymmetric(protocol, perm, f"{what} (a reachable state, depth {depth})")
            image = layout.permute(state, perm)
            for action, out, j in zip(model.actions, here, images):
                mine = layout.permute(out, perm) if isinstance(out, tuple) else out
                if mine != _outcome(model, model.actions[j], image):
                    what = instance_disagreement(model, action, state, perm)
                    raise asymmetric(protocol, perm, f"{what} (a reachable state, depth {depth})")


def exact_check(model: Model) -> RenamingCheck | None:
    """The check of every expanded state against every renaming, where that is cheap: at most
    :data:`EXACT_MAX_PERMS` renamings (to 4 VCPUs); None beyond (the sampled check stands alone)."""
    return RenamingCheck(model) if len(model.layout.permutations) - 1 <= EXACT_MAX_PERMS else None


def _outcome(model: Model, action: Action, state: State) -> State | str | None:
    """The next state, None where not enabled, or the error's text."""
    try:
        return model.apply(state, action)
    except StepError as exc:
        return str(exc) or "an error"


def treats_vcpus_alike(protocol: Protocol, bounds: Bounds) -> bool:
    """Whether :func:`check_symmetry` finds no step that treats a VCPU differently, so that a
    symmetry-reduced enumeration of ``protocol`` at ``bounds`` is exact (for an enumeration that has
    no error to give, e.g. regress's behaviours: it goes without symmetry instead)."""
    try:
        check_symmetry(protocol, bounds)
    except AsymmetricProtocol:
        return False
    return True

def random_state(layout: Any, rng: random.Random) -> State:
    """A state with every slot a random value of its domain (queue entries past the length 0)."""
    values = [rng.randrange(slot.size) for slot in layout.slots]
    for n, slot in enumerate(layout.slots):
        if isinstance(slot.part, int) and slot.part >= values[layout.where[(slot.var.name, slot.index, "len")]]:
            values[n] = 0
    return tuple(values)


def asymmetric(protocol: Protocol, perm: tuple[int, ...], what: str) -> AsymmetricProtocol:
    """The error for a protocol whose VCPUs are not interchangeable under ``perm``."""
    renaming = ", ".join(f"{i}->{j}" for i, j in enumerate(perm) if i != j)
    return AsymmetricProtocol(protocol.name, f"renaming {renaming}: {what}")
