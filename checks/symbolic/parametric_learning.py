"""``prove --parametric``'s learning as one job: families enumerated over the declared sorts, then families
learned and proved for every N, V, F; its outcome as data (what a spawned learner sends back), and the
proof rebuilt from that data by the process that asked.

The job runs in spawned learners where the protocol can be loaded again (checks/symbolic/clauses_process.py:
two at once on two CPUs, each with its own Z3 seed, the first proof taken), else in the caller's process. A
learner's proof travels as data: its obligations as Z3 decided them there, and its lemmas by name (an enumerated
family by its variables and literal texts, a learned family as a ``deferral-lemmas/2`` entry, a shipped lemma or
an invariant property by name). The caller rebuilds the lemmas from the protocol's own vocabulary, and each must
print as the learner's did (else the proof is not taken). Proving them again here would cost more than the
learning's own proof: that one asks only what its Houdini's incremental solver had not proved (the reference at
one space: a query undecided in 10 s here, PROVE.md, 6 Dec, s23).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from deferral.model.bounds import Bounds
from deferral.model.invariant import Lemma, invariant_for
from deferral.model.protocol import Protocol

if TYPE_CHECKING:
    from deferral.checks.symbolic.clauses import Peers

#: The share of the learning's budget the enumerated families (checks/symbolic/clauses.py) may take: with
#: them, the parametric learner needs no samples and proves in 3-10 s (PROVE.md, 5 Dec, late morning; the
#: reference at two spaces: 2.9 s after 18.7 s of enumerated families, 6 Dec, s23); at two spaces they need
#: 20-30 s in a learner of their own, and every unknown at 60 s was cut there (0.5 of the budget until 5 Dec,
#: 0.75 until 6 Dec, s23).
ENUMERATED_SHARE = 0.85


@dataclass
class Learning:
    """What the learning did: ``status`` "proved" (``proof``, where it ran in this process; else the proof's
    obligations and lemma names, rebuilt by :meth:`proof_here`) or "unknown" (``reason``)."""

    status: str = "unknown"
    reason: str = ""
    elapsed_s: float = 0.0  # the parametric learner's (checks/symbolic/paramlearn.py), after the enumerated families
    seconds_by_part: dict[str, float] = field(default_factory=dict)
    #: where the proof's samples were drawn (the parametric learner's own, else the enumerated families')
    samples_at: list[Bounds] = field(default_factory=list)
    #: why the enumerated families were not used ("" where they were)
    enumerated_why: str = ""
    #: the proof's learned families (``deferral-lemmas/2`` entries, their terms those at ``families_at``)
    families: list[dict[str, Any]] = field(default_factory=list)
    families_at: Bounds | None = None
    #: the proof's fixed candidates: an enumerated family (variables and literal texts, its vocabulary that at
    #: ``clauses_at``) or a shipped lemma (``{"lemma": name}``)
    fixed: list[dict[str, Any]] = field(default_factory=list)
    clauses_at: Bounds | None = None
    #: the proof's lemmas (their names, in its order), obligations (as data) and the candidates its Houdini dropped
    lemma_names: list[str] = field(default_factory=list)
    obligations: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[tuple[str, str]] = field(default_factory=list)
    proof_s: float = 0.0
    proof: Any = None  # the parametric proof, where the learning ran in this process (it does not travel)

    def to_data(self) -> dict[str, Any]:
        """This outcome as plain data (not the proof object: :meth:`proof_here` rebuilds it from the names)."""
        doc = {k: v for k, v in vars(self).items() if k != "proof"}
        return {**doc, "samples_at": [b.as_dict() for b in self.samples_at],
                "families_at": None if self.families_at is None else self.families_at.as_dict(),
                "clauses_at": None if self.clauses_at is None else self.clauses_at.as_dict()}

    @staticmethod
    def from_data(doc: dict[str, Any], protocol: Protocol) -> "Learning":
        def at(x: Any) -> Bounds | None:
            return None if x is None else protocol.bounds(**x)

        return Learning(**{**doc, "samples_at": [protocol.bounds(**b) for b in doc["samples_at"]],
                           "families_at": at(doc["families_at"]), "clauses_at": at(doc["clauses_at"])})

    def lemmas(self, protocol: Protocol, bounds: Bounds) -> list[Lemma]:
        """The lemmas named, rebuilt from ``protocol``'s vocabulary (the shipped ones at ``bounds``), the
        invariant properties last (ValueError or InferError where a name does not fit)."""
        from deferral.checks.symbolic import clauses, infer, parametric

        must = parametric.learned_lemmas([], protocol)
        named = {lem.name: lem for lem in [*invariant_for(bounds), *must]}
        out: list[Lemma] = []
        docs = [d for d in self.fixed if "lemma" not in d]
        if (self.families and self.families_at is None) or (docs and self.clauses_at is None):
            raise ValueError("families named without the bounds they were made at")
        if self.families:
            doc = {"format": infer.FORMAT, "lemmas": self.families}
            out += [parametric.for_distinct(f.lemma()) for f in infer.load(doc, protocol, self.families_at)]
        made = iter(clauses.from_entries(docs, protocol, self.clauses_at) if docs else [])  # type: ignore[arg-type]
        for d in self.fixed:
            if "lemma" not in d:
                out.append(next(made))
            elif d["lemma"] in named:
                out.append(named[d["lemma"]])
            else:
                raise ValueError(f"{d['lemma']!r} is not a shipped lemma of {protocol.name} at {bounds.short()}")
        return list({lem.name: lem for lem in [*out, *must]}.values())

    def proof_here(self, protocol: Protocol, bounds: Bounds) -> Any:
        """The learning's parametric proof, its lemmas rebuilt here (ValueError where one does not print as
        the learner's did, or a name does not fit)."""
        from deferral.checks.symbolic import paramlearn, parametric

        if self.proof is not None:
            return self.proof
        by_name = {lem.name: lem for lem in self.lemmas(protocol, bounds)}
        if sorted(by_name) != sorted(self.lemma_names):
            odd = sorted(set(by_name) ^ set(self.lemma_names))
            raise ValueError(f"the lemmas rebuilt here are not the learner's ({odd[0]!r})")
        return parametric.ParametricResult(
            protocol, parametric.concrete_bounds(protocol, dict(bounds)), paramlearn.open_bounds(protocol),
            [by_name[n] for n in self.lemma_names], [parametric.Obligation(**o) for o in self.obligations],
            self.proof_s, dropped=[(a, b) for a, b in self.dropped])


def learn(protocol: Protocol, *, bounds: Bounds, shipped: bool, deadline: float,
          note: Callable[[str], None] | None = None, peers: "Peers | None" = None) -> Learning:
    """Families enumerated at the smallest and the largest sampled instance (:func:`enumerated`, in
    :data:`ENUMERATED_SHARE` of the time), offered with the shipped lemmas (``shipped``) to the parametric
    learner (checks/symbolic/paramlearn.py), which proves for every N, V, F at ``bounds``' Q and S by
    ``deadline``."""
    from deferral.checks.symbolic import clauses, paramlearn

    t0 = time.monotonic()
    offered: list[Lemma] = list(invariant_for(bounds)) if shipped else []
    found, why, sampled_at, clauses_at = enumerated(protocol, bounds, ENUMERATED_SHARE * (deadline - t0), note, peers)
    offered += found
    res = paramlearn.learn(protocol, dict(bounds), timeout=max(0.0, deadline - time.monotonic()),
                           lemmas=offered, note=note)
    out = Learning(res.status if res.proof is not None else "unknown", res.reason, res.elapsed_s,
                   dict(res.seconds_by_part), [b for b, _, _ in res.sampled] or sampled_at, why)
    if out.status == "proved":
        out.proof = res.proof
        out.families = [f.to_json() for f in res.families]
        out.families_at = res.sampled[-1][0] if res.sampled else None
        out.fixed = [clauses.entry(x) if isinstance(x, clauses.Clause) else {"lemma": x.name} for x in res.lemmas]
        out.clauses_at = clauses_at
        out.lemma_names = [lem.name for lem in res.proof.lemmas]
        out.obligations = [dict(vars(o)) for o in res.proof.obligations]
        out.dropped, out.proof_s = list(res.proof.dropped), res.proof.elapsed_s
    return out


def enumerated(protocol: Protocol, bounds: Bounds, budget: float, note: Callable[[str], None] | None = None,
               peers: "Peers | None" = None) -> tuple[list[Any], str, list[Bounds], Bounds | None]:
    """Families enumerated over the declared sorts (checks/symbolic/clauses.py), chosen at the smallest
    and the largest instance the parametric learner samples (2,1,1 and 3,2,2 at these Q and S): what
    the properties need there, to offer the parametric Houdini; why not ("" where they were found), where
    they were sampled, and where their vocabulary was built (the first sample's bounds)."""
    from deferral.checks.symbolic import clauses, parametric
    from deferral.checks.terms.encoding import EncodingError

    conc = parametric.concrete_bounds(protocol, {d.name: bounds[d.name] for d in bounds.decls})
    at = clauses.plan(protocol, conc)
    stages = [at[0][0], at[-1][0]] if at[0][0] != at[-1][0] else [at[0][0]]
    try:
        got = clauses.learn(protocol, at, stages, deadline=time.monotonic() + budget, trim_last=True,
                            walks=clauses.PARAMETRIC_WALKS, note=note, peers=peers)
    except (EncodingError, TimeoutError) as exc:
        return [], f"not used ({exc})", [], None
    sampled = [b for b, _, _ in got.sampled]
    if not got.ok:
        return [], f"not used ({got.why[:200]})", sampled, None
    return list(got.lemmas), "", sampled, sampled[0]


def describe(out: "Learning") -> str:
    """One line: a learner's outcome (for the log)."""
    return out.status + (f" ({out.reason})" if out.reason else "")
