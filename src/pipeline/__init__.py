"""Pipelines: declaring stages, loading them, the DAG, skip decisions, execution.

One module per concept: ``declare`` (the ``pipeline.py`` API), ``loader``
(pipeline.py -> :class:`~pivot.pipeline.spec.PipelineSpec`), ``fingerprint``
(code hashes), ``dag`` (the graph), ``hashing`` (file contents), ``state``
(what the last successful runs recorded), ``plan`` (what is stale and why),
``execute`` (running a plan on a process pool), ``pool`` and ``worker`` (the
processes). This package imports nothing on its own: import the module you need.
"""
