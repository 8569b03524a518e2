"""Successors of a batch of packed states: one (canonical key, parent row, action) per transition.

The smallest piece of the explicit search that a search engine needs and that does not
depend on how the visited set, the frontier or the workers are organised: given rows of
slot values (one state a row), every enabled step instance's guard and effect run over
the batch (compiled kernels of :mod:`deferral.checks.explicit.kernels`, or the numpy path of
:mod:`deferral.checks.explicit.numpy_ops` for what cannot be traced) and each successor gets
its key (:mod:`deferral.checks.explicit.packing`; canonical under VCPU symmetry). The
distributed search (:mod:`deferral.checks.explicit.cluster`) is built on it; it makes the
same transitions, in the same order, as the single-machine search's ``expand``.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from deferral.checks.explicit import cbuild
from deferral.checks.explicit import fused as fused_loop
from deferral.checks.explicit import jit as jit_switch
from deferral.checks.explicit.fusedkey import fused_key
from deferral.checks.explicit.kernels import Kernel, compile_action, compile_property
from deferral.checks.explicit.numpy_ops import guard_mask, property_holds, successors
from deferral.checks.explicit.packing import Packer
from deferral.model.concrete import Action, Model
from deferral.model.protocol import Property


class Expander:
    """A model's step instances and properties compiled once, applied to batches of rows."""

    def __init__(self, model: Model, symmetry: bool, properties: Sequence[Property] | None = None,
                 jit: bool | None = None, fused: bool | None = None) -> None:
        """``properties``: those to compile (default: all of the protocol's); ``jit``: the
        packer's (see :class:`~deferral.checks.explicit.packing.Packer`); ``fused``: whether
        :meth:`fused` may build the fused C loop (default: unless ``DEFERRAL_JIT=0``)."""
        self.model = model
        self.layout = model.layout
        self.packer = Packer(self.layout, symmetry, jit=jit)
        self.procs = model.protocol.procedure_table
        self.labels = [a.label() for a in model.actions]
        self.action_dtype: Any = np.uint16 if len(model.actions) < 65535 else np.uint32
        self._name = model.protocol.name
        # each step instance and property traced once when first used, compiled to
        # straight-line numpy code (None parts run through numpy_ops); a search whose fused
        # loop is cached never traces them
        self._kernels: list[Kernel | None] = [None] * len(model.actions)
        self._props = {p.name: p for p in (model.protocol.properties if properties is None else properties)}
        self._prop_kernels: dict[str, Callable[[np.ndarray], np.ndarray] | None] = {}
        # coverage counts per step with instances at these bounds (in the protocol's order)
        present = {a.step.name for a in model.actions}
        self.step_names = [st.name for st in model.protocol.steps if st.name in present]
        self.step_of = [self.step_names.index(a.step.name) for a in model.actions]
        use_fused = jit_switch.switched_on() if fused is None else fused
        self._fused = fused_loop.LazyFused(self._fused_source if use_fused else lambda: None, self._fused_make,
                                           (lambda: self._fused_key(symmetry)) if use_fused else None)
        self._fused.wait_started = len(self.packer.perms) > fused_loop.MAX_STAGED_PERMS

    def _traced_props(self) -> list[Property]:
        """The properties the tracer follows (checked in the fused loop too)."""
        return [p for p in self._props.values() if self.prop_kernel(p.name) is not None]

    def _fused_source(self) -> tuple[str, list[str]] | None:
        props = self._traced_props()
        code = fused_loop.source(self.layout, self.procs, self.model.actions, self.step_of, len(self.step_names),
                                 self.packer, self.action_dtype, props)
        return None if code is None else (code, [p.name for p in props])

    def _fused_make(self, lib: Any, names: list[str]) -> "fused_loop.FusedLoop":
        props = [self._props[n] for n in names if n in self._props]
        return fused_loop.make(lib, self.packer, len(self.model.actions), len(self.step_names),
                               self.action_dtype, props)

    def _fused_key(self, symmetry: bool) -> str | None:
        cc = cbuild.compiler()
        if cc is None:
            return None
        # the form forced by DEFERRAL_FUSED_FORM is part of what the source is a function of
        form = (f"form={fused_loop.FORM_DEFAULT}",) if fused_loop.FORM_DEFAULT else ()
        return fused_key(self.model, symmetry, list(self._props.values()), self.action_dtype, cc,
                         (*cbuild.FLAGS, *form))

    def kernel(self, index: int) -> Kernel:
        """The compiled guard and effect of action ``index`` (traced at the first ask)."""
        kernel = self._kernels[index]
        if kernel is None:
            a = self.model.actions[index]
            kernel = self._kernels[index] = compile_action(self.layout, self.procs, a.step, a.args,
                                                           self.labels[index], self._name)
        return kernel

    def prop_kernel(self, name: str) -> Callable[[np.ndarray], np.ndarray] | None:
        """The compiled kernel of property ``name`` (None: the numpy path), traced at the first ask."""
        if name not in self._prop_kernels:
            prop = self._props.get(name)
            self._prop_kernels[name] = None if prop is None else compile_property(self.layout, self.procs, prop)
        return self._prop_kernels[name]

    def fused(self, rows: int | None = None,
              poll: Callable[[], None] | None = None) -> "fused_loop.FusedLoop | None":
        """The fused C loop of every step instance for a chunk of ``rows`` rows (see
        :class:`~deferral.checks.explicit.fused.LazyFused`; None: build it now), or None
        where it is not for this chunk, switched off or cannot be built: the per-action path.
        ``poll``: called while a build is waited for (a search's limits)."""
        return self._fused.get(rows, poll)

    def start_fused(self) -> None:
        """Build the fused loop in a background thread (see
        :meth:`~deferral.checks.explicit.fused.LazyFused.start`; nothing if switched off)."""
        self._fused.start()

    def finish_fused(self, wait: bool = True, timeout: float = fused_loop.FINISH_WAIT_S, *,
                     detach: bool = False) -> None:
        """Wait for a background build of the fused loop (at most ``timeout`` seconds: it is then
        cached), then or at once leave it going (``detach``: for the next search) or cancel it
        (see :meth:`~deferral.checks.explicit.fused.LazyFused.finish`)."""
        self._fused.finish(wait, timeout, detach=detach)

    @property
    def fused_loaded(self) -> bool:
        """Whether the fused loop is loaded (no look-up: a search that never asked for it at its end
        hashed the model's sources for its key, about 0.35 s at 2,1,1,1 with two spaces)."""
        return self._fused.loaded

    @property
    def fused_compiled(self) -> bool:
        """Whether this search compiled the fused loop (rather than finding it in the cache)."""
        return self._fused.compiled

    @property
    def fused_problem(self) -> str | None:
        """Why the fused loop was wanted but could not be had (None: it ran, or was not wanted)."""
        return self._fused.problem

    def release_scratch(self) -> None:
        """Drop the fused loop's reused buffers (at the end of a level's expansion)."""
        loop = self._fused.get(0)
        if loop is not None:
            loop.release()

    def guard(self, rows: np.ndarray, action: Action) -> np.ndarray | bool:
        """Where ``action`` is enabled over ``rows``: a bool mask, or True / False for all rows."""
        kernel = self.kernel(action.index)
        if kernel.guard is not None:
            return kernel.guard(rows)
        return guard_mask(self.layout, self.procs, rows, action.step, action.args, self.labels[action.index])

    def enabled(self, rows: np.ndarray, action: Action) -> np.ndarray:
        """The rows (ascending indices) where ``action`` is enabled."""
        mask = self.guard(rows, action)
        if mask is False:
            return np.zeros(0, dtype=np.intp)
        if mask is True:
            return np.arange(rows.shape[0], dtype=np.intp)
        return np.flatnonzero(mask)

    def apply(self, rows: np.ndarray, idx: np.ndarray, action: Action) -> np.ndarray:
        """The successor rows of ``rows[idx]`` by ``action`` (enabled there)."""
        kernel = self.kernel(action.index)
        if kernel.effect is not None:
            out = np.take(rows, idx, axis=0)  # far faster than rows[idx] on 2-D rows
            kernel.effect(out)
            return out
        return successors(self.layout, self.procs, rows, idx, action.step, action.args,
                          self.labels[action.index], self.model.protocol.name)

    def successors(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every transition out of ``rows``: successor keys, parent row (int64), action index.

        Grouped by action (in action order), rows ascending within an action. A step that
        misbehaves raises :class:`~deferral.model.context.StepError`; a protocol whose steps
        cannot run on arrays raises :class:`~deferral.checks.explicit.numpy_ops.NotVectorizable`.
        """
        keys, parents, actions = [], [], []
        for action in self.model.actions:
            idx = self.enabled(rows, action)
            if idx.size == 0:
                continue
            keys.append(self.packer.canonical_keys(self.apply(rows, idx, action)))
            parents.append(idx.astype(np.int64))
            actions.append(np.full(idx.size, action.index, dtype=self.action_dtype))
        if not keys:
            return (np.zeros(0, self.packer.key_dtype), np.zeros(0, np.int64),
                    np.zeros(0, self.action_dtype))
        return np.concatenate(keys), np.concatenate(parents), np.concatenate(actions)

    def holds(self, rows: np.ndarray, prop: Property) -> np.ndarray:
        """Where every instance of ``prop`` holds over ``rows``."""
        kernel = self.prop_kernel(prop.name)
        if kernel is not None:
            return kernel(rows)
        return property_holds(self.layout, self.procs, rows, prop)

    def checker(self, keys: np.ndarray) -> Callable[[Property], np.ndarray]:
        """Where a property holds over the states ``keys`` (the returned function of it): by the
        fused loop when there is one for them (the properties it was given, all at once), else
        by :meth:`holds` over the rows, unpacked once at the first such property."""
        loop = self.fused(keys.shape[0])
        masks = loop.holds(keys) if loop is not None else {}
        unpacked: list[np.ndarray] = []

        def holds(prop: Property) -> np.ndarray:
            if prop.name in masks:
                return masks[prop.name]
            if not unpacked:
                unpacked.append(self.packer.unpack(keys))
            return np.asarray(self.holds(unpacked[0], prop), dtype=bool)

        return holds


def locate(model: Model, rows: np.ndarray, action_index: int) -> None:
    """Re-run one action on the concrete states ``rows`` to raise the StepError that names the state
    (a batch path's error names the step only); returns if none raises."""
    action = model.actions[action_index]
    for row in rows:
        model.apply(tuple(int(v) for v in row), action)  # raises the located StepError
