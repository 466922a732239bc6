"""One project opened for a command: its spec, graph, recorded state and hasher.

This is the glue `pivot run` and `pivot status` share (watch mode can use it
too): load the pipeline, hash what the plan needs, decide, and execute.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot.pipeline.cancel import CancelToken
from pivot.pipeline.dag import StageGraph, build_graph
from pivot.pipeline.errors import PipelineError
from pivot.pipeline.executor import Emit, Executor, Router
from pivot.pipeline.gc_pause import gc_paused
from pivot.pipeline.hashing import FileHasher
from pivot.pipeline.plan import Plan, paths_to_observe, plan, select
from pivot.pipeline.spec import PipelineSpec
from pivot.pipeline.state import STATE_DIR, StateStore
from pivot.pipeline.wave_result import WaveResult

if TYPE_CHECKING:
    from pivot.events.pipeline import StageSubmitted
    from pivot.events.store import EventStore
    from pivot.jobs.config import Config

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
        with gc_paused():
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
        with gc_paused():  # records and hashes of every stage: long-lived, no cycles
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
        local: Executor | None = None,
        jobs: int | None = None,
        keep_going: bool = False,
        cancel: CancelToken | None = None,
        trigger: str = "run",
        executor: str | None = None,
        slurm_jobs: int = 100,
        adoptable: Mapping[str, StageSubmitted] | None = None,
        store: EventStore | None = None,
    ) -> WaveResult:
        """Execute ``the_plan``; local workers (``jobs`` of them) are started (and
        killed after) unless ``local`` is given.

        ``executor`` None runs each stage where it is declared to run;
        ``"local"`` runs every stage in local workers, ``"slurm"`` every stage
        as a SLURM job (see :func:`pivot.pipeline.slurm_resources.placement`),
        at most ``slurm_jobs`` jobs in flight. ``adoptable`` are the jobs a
        killed pivot left (:func:`pivot.pipeline.slurm_adopt.candidates`);
        ``store`` is the log a stage's ``watchers=`` are followed in.
        """
        # Imported here: `pivot status` needs neither (nor the modules they import).
        from pivot.pipeline.execute import execute
        from pivot.pipeline.local_executor import LocalExecutor

        on_slurm = self.slurm_placement(executor, the_plan.to_run)
        own = local is None
        the_local: Executor = local if local is not None else LocalExecutor(jobs)
        slurm = None
        if on_slurm:
            from pivot.pipeline.slurm_executor import SlurmJobs

            slurm = SlurmJobs(
                self._config(), on_slurm, capacity=slurm_jobs, adoptable=adoptable, store=store
            )
        router = Router(the_local, dict.fromkeys(on_slurm, slurm) if slurm is not None else {})
        try:
            return execute(
                self.spec,
                self.graph,
                the_plan,
                router,
                state=self.state,
                hasher=self.hasher,
                emit=emit,
                keep_going=keep_going,
                cancel=cancel,
                trigger=trigger,
            )
        finally:
            if own:
                the_local.close()
            if slurm is not None:
                slurm.close()

    def slurm_placement(
        self, executor: str | None, stages: Sequence[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Which of ``stages`` (None: all) run on SLURM, with what resources.

        Raises PipelineError when ``--executor slurm`` sends a stage to a host
        ``pivot.toml`` does not define.
        """
        from pivot.pipeline.slurm_resources import placement

        wanted = set(stages) if stages is not None else None
        declared = {s.name: s.slurm for s in self.spec.stages if wanted is None or s.name in wanted}
        if executor != "slurm":
            return placement(declared, executor, {})
        config = self._config()
        found = placement(declared, executor, config.slurm)
        for name, resources in found.items():
            host = resources["host"]
            if host != "local" and host not in config.hosts:
                raise PipelineError(
                    f"stage {name!r} would run on host {host!r} ([slurm] host), which "
                    f"pivot.toml does not define: add a [hosts.{host}] table"
                )
        return found

    def _config(self) -> Config:
        from pivot.jobs.config import ConfigError, load_config

        try:
            return load_config(self.root)
        except ConfigError as exc:
            raise PipelineError(str(exc)) from None

    def save_cache(self) -> None:
        """Write back file hashes computed since the last save."""
        self.state.save_file_cache(self.hasher.dirty)
        self.hasher.dirty.clear()

    def close(self) -> None:
        """Save the hash cache and release the state database."""
        self.save_cache()
        self.state.close()
