"""Command line: `deferral check | prove | replay | engine | conform | regress`."""

import gc
import os
import sys

# One BLAS thread, set before numpy loads OpenBLAS: its thread pool costs about 30 ms of
# CPU at every start, and the search runs BLAS on one thread per worker anyway
# (threadpoolctl). A value the user set is kept.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
#: OpenBLAS is loaded (by numpy, not yet imported here) with one thread: a search need not set
#: it again (:func:`deferral.checks.explicit.packing.blas_threads`; threadpoolctl takes about
#: 6 ms to find the libraries, a few per cent of a small search's whole process)
ONE_BLAS_THREAD = "numpy" not in sys.modules and os.environ.get("OPENBLAS_NUM_THREADS") == "1"

#: The collector's thresholds, raised while the command line imports its modules (classes,
#: dataclasses and numpy's tables: tens of thousands of objects, none of them garbage) and put
#: back by :func:`deferral.cli.main.main` once they are loaded; about 4% of a small search's
#: whole-process CPU
GC_THRESHOLDS = gc.get_threshold()
RAISED_GC_THRESHOLD = 100_000
gc.set_threshold(RAISED_GC_THRESHOLD, GC_THRESHOLDS[1], GC_THRESHOLDS[2])
