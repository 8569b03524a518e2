"""Traces and reports: the trace format, replay, the corpus, ITF, HTML pages and the renderers.

- :mod:`deferral.traces.format`, :mod:`~deferral.traces.replay`, :mod:`~deferral.traces.corpus`,
  :mod:`~deferral.traces.itf`: counterexamples as files, read back and replayed on the model.
- :mod:`deferral.traces.report`: one renderer family (terminal, JSON, JUnit) for the results
  of check, prove and regress and the pytest plugin's messages.
- :mod:`deferral.traces.html`: self-contained HTML pages.
"""
