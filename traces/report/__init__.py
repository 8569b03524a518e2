"""One renderer family for every result: terminal, JSON and JUnit, one function per result and format.

* :mod:`~deferral.traces.report.terminal`: rich text for people (check, prove, regress,
  and the plain-text counterexample of the pytest plugin's assertion messages).
* :mod:`~deferral.traces.report.document`: the ``--json`` objects (check, prove, regress).
* :mod:`~deferral.traces.report.junit`: JUnit XML for CI systems (check, prove, regress).

Each function takes the result object a check, proof or comparison returned; a result
carries the model (protocol and bounds) it was computed on, so no renderer rebuilds one.
The self-contained HTML pages are :mod:`deferral.traces.html`.
"""
