"""The protocol model: bounds, state schema, steps, properties and variants.

The protocol of PROTOCOL.md is defined exactly once, in :mod:`deferral.model.reference`,
as pure step functions written against a backend-neutral step context
(:mod:`deferral.model.context`). The same functions run on

* plain Python integers (:mod:`deferral.model.concrete`: replay, conformance, traces),
* numpy arrays holding a whole BFS frontier (:mod:`deferral.checks.explicit.vectorized`),
* Z3 terms (:mod:`deferral.checks.terms.encoding`).

Variants, published or a user's own, are changes to a protocol made with
:meth:`Protocol.derive` (replace, add or remove steps, procedures and variables).
"""

from deferral.model.bounds import Bound, Bounds, BoundsError
from deferral.model.schema import (
    BOOL,
    FRAME,
    PAGE,
    SPACE,
    VCPU,
    VCPU_OR_NONE,
    Enum,
    Layout,
    OrNone,
    Queue,
    Range,
    Sort,
    Var,
)
from deferral.model.protocol import Procedure, Property, Protocol, Step, step
from deferral.model.reference import PC, REFERENCE
from deferral.model.variants import PUBLISHED, VariantError, get_variant, load_variant_file

__all__ = [
    "BOOL", "FRAME", "PAGE", "SPACE", "VCPU", "VCPU_OR_NONE", "Bound", "Bounds", "BoundsError", "Enum",
    "Layout", "OrNone", "PC", "PUBLISHED", "Procedure", "Property", "Protocol", "Queue", "Range",
    "REFERENCE", "Sort", "Step", "Var", "VariantError", "get_variant", "load_variant_file", "step",
]
