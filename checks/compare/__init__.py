"""Comparison of two protocols: verdicts side by side, behaviours added or lost."""
