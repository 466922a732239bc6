"""Submitting SLURM stage runs: sbatch, ``stage.submitted``, and adopting left jobs.

:meth:`Submissions.sbatch` gives a run's batch script
(:func:`pivot.pipeline.slurm_job.batch_script`) to ``sbatch --parsable`` on
its host, on the hosts' event loop, so many submissions are in flight at
once; sbatch refusing the job ends the run with Slurm's message
(:func:`pivot.pipeline.slurm_outcome.sbatch_refusal`). Each job a run gets
(a watcher's resubmit included) is announced as ``stage.submitted``, with
the stage's ``watchers=`` attached to the first one, and the stage's log
(``.pivot/logs/STAGE.log``) switched to that job's own file
(:func:`pivot.pipeline.slurm_logs.point_stage_log`), as it is to an adopted job's.

A killed pivot leaves its jobs running; :meth:`Submissions.left_alive`
asks Slurm once, in one ``squeue`` per host, which of those it recorded
(:func:`pivot.pipeline.slurm_adopt.candidates`) are still pending or
running, or ended having written their outcome: those are adopted
(``stage.adopted``) instead of submitted again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from concurrent.futures import Future

from pivot.events.base import Event
from pivot.events.pipeline import StageAdopted, StageSubmitted
from pivot.jobs import slurm
from pivot.jobs.job_lookup import CommandOutcome, after_squeue
from pivot.jobs.transport import TransportError
from pivot.pipeline import slurm_job
from pivot.pipeline.slurm_hosts import SlurmHosts
from pivot.pipeline.slurm_logs import point_stage_log
from pivot.pipeline.slurm_outcome import sbatch_refusal
from pivot.pipeline.slurm_resources import sbatch_options
from pivot.pipeline.slurm_runs import RunsInFlight, SlurmRun
from pivot.pipeline.slurm_watchers import StageWatchers

__all__ = ["Submissions"]


class Submissions:
    """sbatch for new runs, ``stage.submitted`` for every job, adoption of left jobs."""

    def __init__(
        self,
        hosts: SlurmHosts,
        runs: RunsInFlight,
        *,
        actor: str,
        watch: StageWatchers | None,
        candidates: Mapping[str, StageSubmitted],
    ) -> None:
        self.hosts, self.runs, self.actor, self.watch = hosts, runs, actor, watch
        self._candidates = dict(candidates)
        self._alive: dict[str, StageSubmitted] | None = None
        self._submitting: set[Future[None]] = set()

    def sbatch(self, run_id: str, run: SlurmRun) -> None:
        """Submit ``run`` (in flight as ``run_id``) on the loop; returns at once."""
        sub: Future[None] = self.hosts.submit(self._sbatch(run_id, run))
        self._submitting.add(sub)
        sub.add_done_callback(self._submitting.discard)

    def wait(self, timeout: float = 60.0) -> None:
        """Wait until every sbatch in flight answered (so its job can be cancelled)."""
        for sub in list(self._submitting):
            with contextlib.suppress(Exception):
                sub.result(timeout)

    async def _sbatch(self, run_id: str, run: SlurmRun) -> None:
        task = run.task
        script = slurm_job.batch_script(task, str(run.run_file), sbatch_options(run.resources))
        try:
            result = await self.hosts.run(run.host, slurm.sbatch_argv(task.root), input_text=script)
            job_id = slurm.parse_sbatch(result.stdout) if result.returncode == 0 else ""
            error = "" if job_id else sbatch_refusal(result.stderr, result.stdout)
        except (TransportError, ValueError) as exc:
            job_id, error = "", str(exc)
        if not job_id:
            self.runs.finish(run_id, run.outcome(f"sbatch refused the job on {run.host}: {error}"))
            return
        run.job_id = job_id
        self.announce(run)

    def announce(self, run: SlurmRun, resubmit_of: str = "") -> None:
        """``stage.submitted`` for the run's current job; its watchers on the first one."""
        point_stage_log(run.task.root, run.task.stage, run.job_id)
        events: list[Event] = [
            StageSubmitted(
                actor=self.actor, correlation_id=run.correlation_id, stage=run.task.stage,
                job_id=run.job_id, host=run.host, resources=dict(run.resources),
                run_file=str(run.run_file), inputs=dict(run.inputs), resubmit_of=resubmit_of,
            )
        ]  # fmt: skip
        if run.watchers and self.watch is not None and not resubmit_of:
            # (A resubmitting watcher attaches the watchers to the new job itself.)
            events += self.watch.attach(run.watchers, run.job_id, run.host, run.correlation_id)
        self.runs.send(run, events)

    def adopt(self, run: SlurmRun, left: StageSubmitted) -> None:
        """``run`` takes over ``left``, the job a killed pivot submitted for it."""
        point_stage_log(run.task.root, run.task.stage, left.job_id)
        self.runs.add(f"adopted.{left.job_id}", run)
        adopted = StageAdopted(
            actor=self.actor, correlation_id=run.correlation_id, stage=run.task.stage,
            job_id=left.job_id, host=left.host, run_file=left.run_file,
            submitted_in=left.correlation_id,
        )  # fmt: skip
        self.runs.send(run, [adopted])

    def left_alive(self) -> dict[str, StageSubmitted]:
        """The candidates Slurm still has pending or running, or that wrote their outcome.

        Asked once (the first submission), one ``squeue`` per host; a host
        that does not answer adopts nothing (its stages are submitted anew,
        their left jobs cancelled).
        """
        if self._alive is not None:
            return self._alive
        self._alive = {}
        by_host: dict[str, list[StageSubmitted]] = {}
        for sub in self._candidates.values():
            by_host.setdefault(sub.host, []).append(sub)
        for host, subs in by_host.items():
            ids = [s.job_id for s in subs]
            try:
                result = self.hosts.call(host, slurm.squeue_argv(ids))
            except (TransportError, TimeoutError):
                continue
            step = after_squeue(
                ids, ids, CommandOutcome(result.returncode, result.stdout, result.stderr)
            )
            infos = {} if step.failure else step.infos  # (an outcome written still counts)
            for sub in subs:
                info = infos.get(sub.job_id)
                # The name too: after a restart of Slurm a job id may be another's.
                alive = (
                    info is not None
                    and not info.ended
                    and info.name == slurm_job.job_name(sub.stage)
                )
                written = slurm_job.read_outcome(sub.run_file) if sub.run_file else None
                if alive or (written is not None and written[1] == sub.job_id):
                    self._alive[sub.stage] = sub
        return self._alive
