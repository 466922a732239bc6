"""The stage runs a :class:`~pivot.pipeline.slurm_executor.SlurmJobs` has in flight.

One :class:`SlurmRun` per stage run handed to SLURM: its task, its current
job (after a watcher's resubmit, the new one), the state the last poll saw,
and how to answer the wave (its future, its events). :class:`RunsInFlight`
is the table submission (:mod:`pivot.pipeline.slurm_submit`), the poll
(:mod:`pivot.pipeline.slurm_poll`) and cancellation
(:mod:`pivot.pipeline.slurm_cancel`) share, from the wave's thread and the
event loop's: every access takes its lock, and each run's future is
completed once, by whichever of them ends the run first.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivot.events.base import Event
from pivot.jobs.definition import WatcherDefinition
from pivot.pipeline.executor import Emit
from pivot.pipeline.worker import StageOutcome, StageTask

__all__ = ["RunsInFlight", "SlurmRun", "resolve"]


@dataclass
class SlurmRun:
    """One stage run on SLURM: its task, its current job, how to answer the wave."""

    task: StageTask
    host: str
    resources: Mapping[str, Any]
    run_file: Path
    future: Future[StageOutcome]
    correlation_id: str
    emit: Emit
    inputs: Mapping[str, Any] = field(default_factory=dict)
    submitted_at: float = field(default_factory=time.perf_counter)
    job_id: str = ""  # empty until sbatch answered
    state: str = ""  # as the last poll saw it
    unknown: int = 0  # polls in a row in which no Slurm command knew the job
    watchers: list[WatcherDefinition] = field(default_factory=list)
    # A job that ended without success, while its watchers may still resubmit it.
    failed: StageOutcome | None = None
    failed_at: float = 0.0

    def outcome(self, error: str, state: str = "") -> StageOutcome:
        """A failed outcome that pivot, not the job, decided (cancelled, never submitted)."""
        took = time.perf_counter() - self.submitted_at
        return StageOutcome(self.task.stage, False, 0, took, error, job_id=self.job_id,
                            state=state)  # fmt: skip


class RunsInFlight:
    """The runs in flight by run id, shared by the wave's thread and the event loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._emit_lock = threading.Lock()
        self._runs: dict[str, SlurmRun] = {}

    def add(self, run_id: str, run: SlurmRun) -> None:
        """A run from now on in flight."""
        with self._lock:
            self._runs[run_id] = run

    def with_jobs(self) -> dict[str, SlurmRun]:
        """The runs that have a job (sbatch answered), by run id: what a poll follows."""
        with self._lock:
            return {rid: r for rid, r in self._runs.items() if r.job_id}

    def of(self, future: Future[StageOutcome]) -> SlurmRun | None:
        """The run whose outcome ``future`` is, while in flight."""
        with self._lock:
            return next((r for r in self._runs.values() if r.future is future), None)

    def take_all(self) -> list[SlurmRun]:
        """Every run in flight, no longer in flight."""
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
        return runs

    def finish(self, run_id: str, outcome: StageOutcome) -> None:
        """End the run ``run_id`` with ``outcome``, unless another path ended it already."""
        with self._lock:
            run = self._runs.pop(run_id, None)
        if run is not None:
            resolve(run, outcome)

    def send(self, run: SlurmRun, events: Sequence[Event]) -> None:
        """Hand ``events`` to the run's wave, one append, never two at once."""
        with self._emit_lock:
            run.emit(events)


def resolve(run: SlurmRun, outcome: StageOutcome) -> None:
    """Complete the run's future with ``outcome`` (the first outcome wins)."""
    if not run.future.done():
        run.future.set_result(outcome)
