"""Symbolic checks with Z3: the transition relation, bmc, induction, PDR, parametric proofs."""
