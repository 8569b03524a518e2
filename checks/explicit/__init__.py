"""Explicit-state search: plain and vectorized breadth-first search, symmetry, liveness."""
