"""What `pivot watch` needs from the pipeline core, as one small protocol.

The Coordinator loads through :class:`WatchedPipeline`; the real
implementation (:mod:`pivot.watch.project_pipeline`) adapts the pipeline
core's loader, and tests can drive the actors with a tiny pipeline of their
own. A loaded view carries the :class:`pivot.pipeline.project.Project` the
Coordinator plans on (and reads the stages' records from) and the WorkerPool
runs the wave on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pivot.pipeline.dag import StageGraph, graph_of

if TYPE_CHECKING:
    from pivot.pipeline.project import Project


__all__ = ["LoadError", "PipelineView", "PlannedStage", "StageInfo", "WatchedPipeline"]


@dataclass(frozen=True, slots=True)
class StageInfo:
    """One stage as `pivot watch` sees it: absolute deps and outs, a code fingerprint;
    ``job``: it runs as a SLURM job (a run `pivot watch` cancels when it goes stale)."""

    name: str
    deps: tuple[Path, ...] = ()
    outs: tuple[Path, ...] = ()
    fingerprint: str = ""
    job: bool = False


@dataclass(frozen=True, slots=True)
class _Declared:
    # A stage as :func:`pivot.pipeline.dag.graph_of` takes it, with absolute paths.
    name: str
    deps: tuple[str, ...]
    outs: tuple[str, ...]
    file: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class PipelineView:
    """A loaded pipeline: its stages (in a topological order), and what a wave runs on.

    ``graph`` is the pipeline's :class:`pivot.pipeline.dag.StageGraph` over the
    stages' absolute paths, built once with the view and used for every batch
    (which stages a path affects, upstream of the targets). ``project`` is the
    loaded spec with the project's records (None in views tests make up);
    ``after_wave`` the output hashes (relative paths) right after the last wave
    that ran their stage, failed stages included: what a stage wrote is its own
    write. The WorkerPool adds to it; one dict shared by every view of a watch.
    """

    stages: Mapping[str, StageInfo]
    project: Project | None = field(default=None, repr=False, compare=False)
    loaded_at: float = 0.0
    after_wave: dict[str, str | None] = field(default_factory=dict, repr=False, compare=False)
    graph: StageGraph = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        declared = [
            _Declared(s.name, tuple(map(str, s.deps)), tuple(map(str, s.outs)))
            for s in self.stages.values()
        ]
        object.__setattr__(self, "graph", graph_of(declared))


@dataclass(frozen=True, slots=True)
class LoadError:
    """Why loading the pipeline failed, and where."""

    message: str
    file: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class PlannedStage:
    """A stage that will run in a wave, and why."""

    name: str
    reasons: tuple[str, ...] = field(default_factory=tuple)


class WatchedPipeline(Protocol):
    """The pipeline core's loader, as `pivot watch` uses it (the real one: ProjectPipeline)."""

    root: Path
    pipeline_file: Path

    def load(self) -> PipelineView | LoadError:
        """Load the pipeline in a fresh interpreter (never imports project code here)."""
        ...  # pragma: no cover
