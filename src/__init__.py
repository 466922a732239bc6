"""pivot: event-sourced pipelines that rebuild themselves, and SLURM job watchers.

``from pivot import Pipeline, Dep, Out`` is all a ``pipeline.py`` needs (and ``Slurm``
for stages that run as SLURM jobs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pivot.pipeline.declare import Dep, Out, Pipeline
    from pivot.pipeline.slurm_resources import Slurm

__all__ = ["Dep", "Out", "Pipeline", "Slurm"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy, so that `pivot stats` and other commands do not import the
    # pipeline machinery they never use.
    if name == "Slurm":
        from pivot.pipeline import slurm_resources

        return slurm_resources.Slurm
    if name in __all__:
        from pivot.pipeline import declare

        return getattr(declare, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
