"""deferral.engine: the threaded hypervisor engine of the deferral protocol, judged by the model.

* :mod:`~deferral.engine.hypervisor`: the hypervisor library (shared guest page table,
  per-VCPU shadows, TLBs, deferral rings, IPI mailboxes) and its 13 atomic steps;
* :mod:`~deferral.engine.bugs`: the published variants as real bugs, selected by name;
* :mod:`~deferral.engine.guest`: seeded random and scripted guest programs;
* :mod:`~deferral.engine.runner`: one thread per VCPU under a time limit;
* :mod:`~deferral.engine.tracing` / :mod:`~deferral.engine.online`: ghost variables,
  snapshots in the model's vocabulary, trace recording, the online invariant check;
* :mod:`~deferral.engine.conform`: single-stepping the engine along model paths.

The engine never calls the model's step functions; the model only judges it.
"""
