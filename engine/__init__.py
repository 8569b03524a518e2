"""deferral.engine: the threaded hypervisor engine of the deferral protocol, judged by the model.

* :mod:`~deferral.engine.hypervisor`: the hypervisor library (a guest page table per
  process, a CR3 and a shadow cache per VCPU, TLBs, deferral rings, IPI mailboxes) and
  its atomic steps;
* :mod:`~deferral.engine.bugs`: the published variants as real bugs, selected by name;
* :mod:`~deferral.engine.guest`: seeded random and scripted guest programs;
* :mod:`~deferral.engine.runner`: one thread per VCPU under a time limit;
* :mod:`~deferral.engine.tracing`: snapshots in the model's vocabulary (no ghost
  variables), trace recording;
* :mod:`~deferral.engine.judge`: the model judging a run: ghost variables and invariants
  computed by the model's own steps along the engine's steps;
* :mod:`~deferral.engine.conform`: single-stepping the engine along model paths;
* :mod:`~deferral.engine.user`: a user's ``ENGINE`` (a :class:`Hypervisor` subclass) from a
  variant file.

The hypervisor side (hypervisor, bugs, guest, memory, queue, vcpu) never uses the model;
the judge's side (judge, tracing, conform, runner) runs the model to judge it.
"""

from deferral.engine.hypervisor import Hypervisor

__all__ = ["Hypervisor"]
