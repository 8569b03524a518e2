"""Whether the explicit search uses its compiled loops (numba), and the loops themselves on demand.

The loops (:mod:`deferral.checks.explicit.jit_loops`) compute exactly what the numpy path
computes, faster and with the GIL released. numba is a dependency, but the numpy path
stays: it is used when numba cannot be imported, when ``DEFERRAL_JIT=0`` asks for it (the
tests run both and compare), for batches of fewer than :data:`MIN_ROWS` rows, and until a
search is big enough (:data:`AFTER_ROWS`, :data:`AFTER_STATES`): importing numba and loading
the cached loops costs about a second of CPU and 110 MiB, so a small or medium ``deferral
check`` never imports it.
"""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType

#: ``DEFERRAL_JIT=0`` forces the numpy path (for comparisons and for a machine without numba).
ENV = "DEFERRAL_JIT"
#: Batches (rows keyed or unpacked, keys looked up) below this size take the numpy path.
MIN_ROWS = 1 << 13
#: A packer keys this many rows, and a visited set holds this many states, on the numpy path
#: before they switch: the loops' load (about 1 s of CPU and 110 MiB resident: numba's import
#: and LLVM) pays off only in searches bigger than that. Measured: 2,1,1,1,S=2 (about 5 s of
#: CPU) took 1.19x the CPU with the loops from its first big batch; 3,1,2,2 and 2,2,1,2 (2.6M
#: and 4.5M states) 0.84-0.91x the CPU for 75-85 MiB more peak (+17 bytes a state): so the
#: switch comes only after about 67M keyed successors or 16.7M stored states, where 110 MiB is
#: a few bytes a state (2,2,2,2: 117M states, 702M transitions).
AFTER_ROWS = 1 << 26
AFTER_STATES = 1 << 24


def available() -> bool:
    """Whether numba is installed (without importing it)."""
    return importlib.util.find_spec("numba") is not None


def switched_on() -> bool:
    """Whether ``DEFERRAL_JIT`` leaves the compiled paths on (it is not 0, no, false or off)."""
    return os.environ.get(ENV, "1").strip().lower() not in ("0", "no", "false", "off")


def enabled() -> bool:
    """Whether a new packer or visited set uses the compiled loops: numba installed, and not
    switched off by ``DEFERRAL_JIT=0``."""
    return switched_on() and available()


def loops() -> ModuleType | None:
    """The compiled loops (numba imported on the first call), or None if numba fails to import."""
    try:
        from deferral.checks.explicit import jit_loops
    except ImportError:  # pragma: no cover - a broken numba installation: the numpy path
        return None
    return jit_loops
