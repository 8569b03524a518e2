"""The protocol as Z3 terms: its steps, procedures and properties evaluated over Z3 variables.

Shared by the symbolic checks (checks/symbolic: bmc, induction, learning) and by the explicit
search's symmetry guard, which proves with Z3 that a variant's steps treat the VCPUs alike
before a search up to VCPU symmetry (checks/terms/vcpu_symmetry.py).
"""
