"""pivot: event-sourced pipelines that rebuild themselves, and SLURM job watchers.

``from pivot import Pipeline, Dep, Out`` is all a ``pipeline.py`` needs.
"""

from __future__ import annotations

from pivot.pipeline.declare import Dep, Out, Pipeline

__all__ = ["Dep", "Out", "Pipeline"]
__version__ = "0.1.0"
