"""A user's change made in both places: ``VARIANT`` (the model) and ``ENGINE`` (the engine).

A variant file may define, beside ``VARIANT``, ``ENGINE = <a subclass of Hypervisor>``: the
same change written in the engine, by overriding the hypervisor's steps or its hooks
(``resync``, ``post_ipis``, ``defers``, ``handler_drains``, ``invlpg_drains``, ``reload_drains``,
``flushes_locally``). ``deferral engine run``
and ``deferral conform`` need it with ``--variant-file``; the model's commands ignore it.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from deferral.engine.hypervisor import Hypervisor, NotEnabled
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
    check_overrides(path, engine)
    return engine


def check_overrides(path: str | Path, engine: type[Hypervisor]) -> None:
    """Refuse (one-line VariantError) a method of ``engine`` that overrides one of Hypervisor's
    but cannot take the arguments the engine calls it with (``resync(self, drainer)``, say):
    said at load time, rather than as a crash of the engine's threads or a divergence."""
    for name, base in vars(Hypervisor).items():
        own = getattr(engine, name, None)
        if name.startswith("__") or not inspect.isfunction(base) or own is base or not callable(own):
            continue
        params = [p for p in inspect.signature(base).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
        try:
            inspect.signature(own).bind(*(None for _ in params))
        except TypeError:
            raise VariantError(f"variant file {path}: ENGINE's {name}{_names(own)} cannot take "
                               f"the arguments of Hypervisor.{name}{_names(base)}") from None
        except ValueError:  # no signature to read (a builtin): nothing to say
            continue


def _names(fn: Any) -> str:
    """``(self, drainer, table, page)``: a signature's parameter names, without annotations."""
    return "(" + ", ".join(str(p.replace(annotation=p.empty)) for p in inspect.signature(fn).parameters.values()) + ")"


def engine_error(exc: BaseException) -> str:
    """``FILE line N (in F) raised E: msg`` when ``exc`` was raised in a user's file (its ENGINE),
    else '': a user's engine that crashes is a broken variant file (bad input), not a divergence.
    A step the engine refuses (NotEnabled) is the engine's answer, never a crash."""
    if isinstance(exc, NotEnabled):
        return ""
    from deferral.model.context import describe_user_error
    from deferral.model.tracebacks import user_frame  # the attribution of a traceback to a user's file

    where = user_frame(exc)
    return f"{where} {describe_user_error(exc)}" if where else ""
