"""Following SLURM stage runs: one poll cycle every :data:`POLL_SECONDS`, one squeue per host.

Each cycle settles the jobs in flight:

1. a job whose outcome file is there has ended as far as the stage goes (the
   job wrote it last, atomically): no Slurm command is needed for it;
2. the others are asked of Slurm through the job watchers' lookup
   (:func:`pivot.jobs.job_lookup.query_jobs`): **one** ``squeue`` for all of
   a host's jobs; ``scontrol`` (for the exit code), then ``sacct``, only for
   a job squeue reports ended or no longer lists (a host without accounting
   is not asked ``sacct`` again); a state change is a ``stage.job_state``
   event;
3. a job Slurm reports ended without an outcome (killed, out of memory or
   time, node failure) ends its run as
   :func:`pivot.pipeline.slurm_outcome.ended` says.

A lookup that fails (squeue timed out, the host unreachable) never ends a
stage: only Slurm saying a job ended does, or no command knowing it for
:data:`UNKNOWN_CYCLES` cycles in a row (Slurm forgot it: ``lost``). A job
that ended without success while the stage's ``watchers=`` may still act
waits for them (:class:`~pivot.pipeline.slurm_watchers.StageWatchers`): a
watcher's resubmit makes the new job the run's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping

from pivot.events.pipeline import StageJobState
from pivot.jobs import slurm
from pivot.jobs.job_lookup import query_jobs
from pivot.pipeline import slurm_job
from pivot.pipeline.slurm_hosts import SlurmHosts
from pivot.pipeline.slurm_outcome import ended, reported
from pivot.pipeline.slurm_runs import RunsInFlight, SlurmRun, resolve
from pivot.pipeline.slurm_watchers import SETTLE_SECONDS, StageWatchers
from pivot.pipeline.worker import StageOutcome

__all__ = ["POLL_SECONDS", "UNKNOWN_CYCLES", "SlurmPoll"]

POLL_SECONDS = 1.0
# A job neither squeue, scontrol nor sacct knows, this many cycles in a row
# after it was submitted, is reported lost (Slurm forgot it: MinJobAge passed).
UNKNOWN_CYCLES = 30


class SlurmPoll:
    """The poll cycles of one :class:`~pivot.pipeline.slurm_executor.SlurmJobs`, on its loop.

    ``announce`` is :meth:`pivot.pipeline.slurm_submit.Submissions.announce`
    (a watcher's resubmit is a new job of the run).
    """

    def __init__(
        self,
        hosts: SlurmHosts,
        runs: RunsInFlight,
        *,
        actor: str,
        watch: StageWatchers | None,
        announce: Callable[[SlurmRun, str], None],
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        self.hosts, self.runs, self.actor, self.watch = hosts, runs, actor, watch
        self.announce = announce
        self.poll_seconds = poll_seconds
        self.cycles = 0  # poll cycles that asked about jobs (their commands: hosts.commands)
        self.cancelling = False  # set by a cancel: a failed job's watchers are not waited for
        self._sacct_ok: dict[str, bool] = {}  # host -> whether it has accounting
        self._started = False

    def start(self) -> None:
        """Start polling (once; it runs until the hosts' loop stops)."""
        if not self._started:
            self._started = True
            self.hosts.submit(self._forever())

    async def _forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.cycle()
            except Exception as exc:
                # Expected trouble (a lookup failing) is handled inside the cycle;
                # anything else is a bug: say so rather than leave the wave waiting.
                error = f"pivot's SLURM poll failed: {type(exc).__name__}: {exc}"
                for run in self.runs.take_all():
                    resolve(run, run.outcome(error))

    async def cycle(self) -> None:
        """One poll cycle over every run that has a job."""
        runs = self.runs.with_jobs()
        if not runs:
            return
        self.cycles += 1
        if self.watch is not None and any(r.failed for r in runs.values()):
            self.watch.refresh()
        asking: dict[str, dict[str, str]] = {}  # host -> job id -> run id
        for rid, run in runs.items():
            if run.failed is not None:
                self._settle(rid, run)
                continue
            written = slurm_job.read_outcome(run.run_file)
            if written is not None and written[1] == run.job_id:
                self._finish(rid, run, reported(written[0], run.job_id, run.host))
            else:
                asking.setdefault(run.host, {})[run.job_id] = rid
        await asyncio.gather(*(self._ask(host, jobs, runs) for host, jobs in asking.items()))

    async def _ask(self, host: str, jobs: dict[str, str], runs: Mapping[str, SlurmRun]) -> None:
        """What Slurm says of ``host``'s jobs (job id -> run id): states, ends."""
        answer = await query_jobs(
            host, self.hosts.runner(host), list(jobs), seen=jobs,
            sacct_ok=self._sacct_ok.get(host, True), ask_ended=True,
        )  # fmt: skip
        if answer.sacct_unavailable:
            self._sacct_ok[host] = False
        # Not knowing a job counts only when squeue and scontrol answered.
        answered = not any(failure for what, failure in answer.lookups if what != "sacct")
        for job_id, rid in jobs.items():
            run = runs[rid]
            info = answer.infos.get(job_id)
            if info is None:
                if answered:
                    run.unknown += 1
                if run.unknown >= UNKNOWN_CYCLES:
                    self._end(rid, run, slurm.JobInfo(job_id=job_id, state="lost"))
                continue
            run.unknown = 0
            self._state(run, info)
            if info.ended:
                self._end(rid, run, info)

    def _state(self, run: SlurmRun, info: slurm.JobInfo) -> None:
        if info.state == run.state:
            return
        run.state = info.state
        changed = StageJobState(
            actor=self.actor, correlation_id=run.correlation_id, stage=run.task.stage,
            job_id=info.job_id, host=run.host, state=info.state,
            exit_code=info.exit_code if info.ended else "",
        )  # fmt: skip
        self.runs.send(run, [changed])

    def _end(self, rid: str, run: SlurmRun, info: slurm.JobInfo) -> None:
        written = slurm_job.read_outcome(run.run_file)
        took = time.perf_counter() - run.submitted_at
        self._finish(rid, run, ended(run.task.stage, info, run.host, written, took))

    def _settle(self, rid: str, run: SlurmRun) -> None:
        """A failed job with watchers: follow a resubmission, or fail once they are done."""
        assert self.watch is not None and run.failed is not None
        new = self.watch.resubmitted(run.host, run.job_id)
        if new:
            old, run.job_id, run.state, run.failed = run.job_id, new, "", None
            self.announce(run, old)
            return
        waited = time.monotonic() - run.failed_at
        if self.watch.settled(run.host, run.job_id) or waited > SETTLE_SECONDS:
            outcome, run.failed = run.failed, None
            self.runs.finish(rid, outcome)

    def _finish(self, rid: str, run: SlurmRun, outcome: StageOutcome) -> None:
        if not outcome.ok and run.watchers and not self.cancelling:
            run.failed, run.failed_at = outcome, time.monotonic()
            return  # its watchers may resubmit it: _settle decides in the next cycles
        self.runs.finish(rid, outcome)
