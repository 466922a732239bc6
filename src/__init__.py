"""pivot: event-sourced pipelines that rebuild themselves, and SLURM job watchers."""

from __future__ import annotations

__all__: list[str] = []
__version__ = "0.1.0"
