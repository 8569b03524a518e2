"""A user's change made in both places: ``VARIANT`` (the model) and ``ENGINE`` (the engine).

A variant file may define, beside ``VARIANT``, ``ENGINE = <a subclass of Hypervisor>``: the
same change written in the engine, by overriding the hypervisor's steps or its hooks
(``resync``, ``post_ipis``, ``defers``, ``handler_drains``, ``reload_drains``,
``flushes_locally``). ``deferral engine run``
and ``deferral conform`` need it with ``--variant-file``; the model's commands ignore it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from deferral.engine.hypervisor import Hypervisor
from deferral.model.protocol import Protocol
from deferral.model.variants import VariantError, load_variant_namespace


def load_engine_file(path: str | Path) -> tuple[Protocol, type[Hypervisor]]:
    """``VARIANT`` and ``ENGINE`` from a user's variant file; a one-line VariantError otherwise."""
    protocol, names = load_variant_namespace(path)
    return protocol, engine_of(path, names)


def engine_of(path: str | Path, names: dict[str, Any]) -> type[Hypervisor]:
    """The ``ENGINE`` a loaded variant file defines; a one-line VariantError otherwise."""
    engine = names.get("ENGINE")
    if engine is None:
        raise VariantError(f"variant file {path}: it defines VARIANT but no ENGINE; the engine's commands "
                           "need ENGINE = a subclass of deferral.engine.Hypervisor making the same change "
                           "(see README, \"Your own variant\")")
    if not (isinstance(engine, type) and issubclass(engine, Hypervisor)):
        raise VariantError(f"variant file {path}: ENGINE is {type(engine).__name__} {engine!r}, "
                           "not a subclass of deferral.engine.Hypervisor")
    return engine
