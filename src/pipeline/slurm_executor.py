"""Stage runs as SLURM jobs: :class:`SlurmJobs`, the SLURM executor.

A wave sends the stages that run on SLURM here. For each stage run
:meth:`SlurmJobs.submit` writes the run file and hands the run to
:mod:`pivot.pipeline.slurm_submit` (``sbatch --parsable`` on the stage's
host, a local subprocess or SSH through the transports the job watchers
use; or the adoption of a job a killed pivot left); it returns a future of
the stage's :class:`~pivot.pipeline.worker.StageOutcome`, which names the
job whose result counts, its Slurm state and exit code. The wave keeps at
most :attr:`SlurmJobs.capacity` runs in flight (``--slurm-jobs``).

The modules behind it, one concept each:

- :mod:`pivot.pipeline.slurm_runs`: the runs in flight, shared by the rest;
- :mod:`pivot.pipeline.slurm_submit`: sbatch, ``stage.submitted``, adoption;
- :mod:`pivot.pipeline.slurm_poll`: the poll cycle, one ``squeue`` per host
  through the job watchers' lookup (:mod:`pivot.jobs.job_lookup`);
- :mod:`pivot.pipeline.slurm_cancel`: scancel, and waiting for Slurm to say
  the jobs ended;
- :mod:`pivot.pipeline.slurm_hosts`: the event loop and a transport per host;
- :mod:`pivot.pipeline.slurm_logs`: each job's own log file, the stage's log
  a symlink to the current one, the earlier runs' files removed on submission;
- pure decisions: :mod:`pivot.pipeline.slurm_outcome` (how a run ended),
  :mod:`pivot.pipeline.slurm_adopt` (which left job to adopt).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from pivot.events.pipeline import StageSubmitted
from pivot.events.store import EventStore
from pivot.jobs.config import Config
from pivot.pipeline import slurm_job
from pivot.pipeline.executor import StageRun
from pivot.pipeline.hashing import recorded_params
from pivot.pipeline.slurm_adopt import run_inputs, same_inputs
from pivot.pipeline.slurm_cancel import cancel_all, cancel_one
from pivot.pipeline.slurm_hosts import SlurmHosts
from pivot.pipeline.slurm_logs import JOB_LOGS_DIR, remove_job_logs
from pivot.pipeline.slurm_poll import POLL_SECONDS, SlurmPoll
from pivot.pipeline.slurm_runs import RunsInFlight, SlurmRun
from pivot.pipeline.slurm_submit import Submissions
from pivot.pipeline.slurm_watchers import StageWatchers, load_definitions
from pivot.pipeline.worker import StageOutcome

__all__ = ["DEFAULT_SLURM_JOBS", "POLL_SECONDS", "SlurmJobs"]

DEFAULT_SLURM_JOBS = 100


class SlurmJobs:
    """The SLURM side of a wave: submit stage runs, poll their jobs, cancel them.

    ``placement`` gives each stage it runs its resources
    (:func:`pivot.pipeline.slurm_resources.placement`); ``adoptable`` are the
    jobs a killed pivot left (:func:`pivot.pipeline.slurm_adopt.candidates`);
    ``store`` is the log the stages' ``watchers=`` are followed in.
    """

    name = "slurm"

    def __init__(
        self,
        config: Config,
        placement: Mapping[str, Mapping[str, Any]],
        *,
        capacity: int = DEFAULT_SLURM_JOBS,
        poll_seconds: float = POLL_SECONDS,
        actor: str = "pivot run",
        adoptable: Mapping[str, StageSubmitted] | None = None,
        store: EventStore | None = None,
    ) -> None:
        self.config = config
        self.capacity = max(1, capacity)
        self.placement = dict(placement)
        self.hosts = SlurmHosts(config)
        self.runs = RunsInFlight()
        # The stages' watchers= (needs the store: it reads what they did).
        self._watch = StageWatchers(store, config, actor) if store is not None else None
        self.submissions = Submissions(
            self.hosts, self.runs, actor=actor, watch=self._watch, candidates=adoptable or {}
        )
        self.poll = SlurmPoll(
            self.hosts, self.runs, actor=actor, watch=self._watch,
            announce=self.submissions.announce, poll_seconds=poll_seconds,
        )  # fmt: skip

    @property
    def cycles(self) -> int:
        """Poll cycles that asked about jobs (the commands they ran: ``hosts.commands``)."""
        return self.poll.cycles

    def submit(self, stage_run: StageRun) -> Future[StageOutcome]:
        """Submit one stage run; its outcome arrives in the returned future.

        The run's inputs (:func:`pivot.pipeline.slurm_adopt.run_inputs`) are
        recorded with the job; a job a killed pivot left for this stage with
        the same inputs, still alive, is adopted instead of submitting anew.
        The stage's ``watchers=`` (files, project-relative) are attached to
        each of its jobs. Its events go out through ``stage_run.emit``.
        """
        spec = stage_run.stage
        # The job's own output is the stage's log (see slurm_job.batch_script, slurm_logs).
        task = dataclasses.replace(stage_run.task, log_path="")
        resources = self.placement[task.stage]
        inputs = run_inputs(spec.fingerprint, stage_run.deps, recorded_params(spec.params))
        host = str(resources.get("host", "local"))
        future: Future[StageOutcome] = Future()
        future.set_running_or_notify_cancel()

        def run_of(run_file: Path, **kw: Any) -> SlurmRun:
            return SlurmRun(task, host, resources, run_file, future, stage_run.wave_id,
                            stage_run.emit, **kw)  # fmt: skip

        left = self.submissions.left_alive().pop(task.stage, None)
        if left is not None and left.host == host and same_inputs(left, inputs or {}):
            run = run_of(Path(left.run_file), inputs=dict(left.inputs), job_id=left.job_id)
            self.submissions.adopt(run, left)
            self.poll.start()
            return future
        if left is not None:  # a job for other inputs: its outputs would be wrong
            self.hosts.scancel(left.host, [left.job_id])
        run_id = uuid.uuid4().hex[:12]
        run = run_of(Path(task.root) / slurm_job.RUNS_DIR / f"{task.stage}.{run_id}.json",
                     inputs=dict(inputs))  # fmt: skip
        if spec.watchers:
            if self._watch is None:
                raise ValueError("a stage with watchers= needs SlurmJobs(store=...)")
            run.watchers = load_definitions(task.root, spec.watchers)
        slurm_job.write_run_file(run.run_file, task, run_id)
        # Slurm cannot open the job's output in a missing folder: the job would
        # fail before Python starts (FAILED signal 53), with no log to say why.
        (Path(task.root) / JOB_LOGS_DIR).mkdir(parents=True, exist_ok=True)
        remove_job_logs(task.root, task.stage)  # the earlier runs' (a new run's jobs have none)
        self.runs.add(run_id, run)
        self.submissions.sbatch(run_id, run)
        self.poll.start()
        return future

    def cancel_run(self, future: Future[StageOutcome]) -> None:
        """scancel the job of one stage run; its future resolves once Slurm says it ended."""
        cancel_one(self.hosts, self.runs, future)

    def cancel(self, reason: str = "cancelled", timeout: float = 120.0) -> None:
        """scancel every job in flight; return once Slurm reports them all ended."""
        cancel_all(self.hosts, self.runs, self.submissions, self.poll, reason=reason,
                   timeout=timeout)  # fmt: skip

    def close(self) -> None:
        """Stop polling and release the hosts' connections."""
        if self._watch is not None:
            self._watch.close()
        self.hosts.close()
