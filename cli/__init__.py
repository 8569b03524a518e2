"""Command line: `deferral check | prove | replay | engine | conform | regress`."""

import os

# One BLAS thread, set before numpy loads OpenBLAS: its thread pool costs about 30 ms of
# CPU at every start, and the search runs BLAS on one thread per worker anyway
# (threadpoolctl). A value the user set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
