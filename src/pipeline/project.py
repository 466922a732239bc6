"""One project opened for a command: its spec, graph, recorded state and hasher.

This is the glue `pivot run` and `pivot status` share (watch mode can use it
too): load the pipeline, hash what the plan needs, decide, and execute.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pivot.pipeline.dag import StageGraph, build_graph
from pivot.pipeline.execute import Cancel, Emit, WaveResult, execute
from pivot.pipeline.hashing import FileHasher
from pivot.pipeline.plan import Plan, paths_to_observe, plan, select
from pivot.pipeline.pool import Pool, StagePool
from pivot.pipeline.spec import PipelineSpec
from pivot.pipeline.state import STATE_DIR, StateStore

__all__ = ["Project", "events_path"]


def events_path(root: str | Path) -> Path:
    """The project's event log: ``.pivot/events.db``."""
    return Path(root) / STATE_DIR / "events.db"


@dataclass
class Project:
    """A loaded pipeline with its state; close it when done."""

    spec: PipelineSpec
    graph: StageGraph
    state: StateStore
    hasher: FileHasher

    @classmethod
    def open(cls, pipeline: str | os.PathLike[str] | None = None) -> Project:
        """Load the pipeline (found from the working directory unless given)."""
        from pivot.pipeline.loader import load_with_graph

        return cls.from_spec(*load_with_graph(pipeline))

    @classmethod
    def from_spec(cls, spec: PipelineSpec, graph: StageGraph | None = None) -> Project:
        """A project for an already loaded spec (watch mode reloads on its own)."""
        state = StateStore.open(spec.root)
        if graph is None:
            graph = build_graph(spec)
        return cls(spec, graph, state, FileHasher(spec.root, state.file_cache()))

    @property
    def root(self) -> Path:
        """The project root."""
        return Path(self.spec.root)

    def plan(self, targets: Sequence[str] = (), force: bool = False) -> Plan:
        """What would run for ``targets`` (all stages when empty), and why."""
        selected = select(self.spec, self.graph, targets)
        observed = self.hasher.hashes(paths_to_observe(self.spec, selected))
        return plan(
            self.spec, self.graph, self.state.records(), observed, targets=targets, force=force
        )

    def run(
        self,
        the_plan: Plan,
        emit: Emit,
        *,
        pool: Pool | None = None,
        jobs: int | None = None,
        keep_going: bool = False,
        cancel: Cancel | None = None,
        trigger: str = "run",
    ) -> WaveResult:
        """Execute ``the_plan``; a pool is made (and killed after) unless given."""
        own = pool is None
        the_pool: Pool = pool if pool is not None else StagePool(jobs)
        try:
            return execute(
                self.spec,
                self.graph,
                the_plan,
                the_pool,
                state=self.state,
                hasher=self.hasher,
                emit=emit,
                keep_going=keep_going,
                cancel=cancel,
                trigger=trigger,
            )
        finally:
            if own:
                the_pool.kill()

    def save_cache(self) -> None:
        """Write back file hashes computed since the last save."""
        self.state.save_file_cache(self.hasher.dirty)
        self.hasher.dirty.clear()

    def close(self) -> None:
        """Save the hash cache and release the state database."""
        self.save_cache()
        self.state.close()
