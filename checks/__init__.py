"""Checks of a protocol: one subpackage per technique, one result and path type.

- :mod:`deferral.checks.explicit`: exhaustive breadth-first search (plain and vectorized),
  symmetry, liveness on the explored graph.
- :mod:`deferral.checks.symbolic`: Z3 encodings of the same step functions; bmc,
  induction, PDR, generalization of lemmas, the parametric proof, ``prove``'s routes.
- :mod:`deferral.checks.compare`: comparison of two protocols (regress, behaviours).
- :mod:`deferral.checks.results`: the result and path types every search returns (a result
  carries the model it was computed on); they are rendered by :mod:`deferral.traces.report`.
"""
