"""Cancelling SLURM stage runs: scancel, then wait until Slurm says each job ended.

:func:`cancel_all` (Ctrl-C, SIGTERM, `q` in `pivot watch`) waits for the
sbatch calls in flight (a job being submitted is cancelled too), scancels
every job in one ``scancel`` per host, and returns once the poll
(:mod:`pivot.pipeline.slurm_poll`) saw Slurm report each of them ended, so
every run's outcome is Slurm's (``cancelled``). A run Slurm does not answer
for in time, or that never got a job, ends with the reason.
:func:`cancel_one` scancels the job of one run (`pivot watch`: its deps
changed while it ran); its run ends when the poll sees the job end.
"""

from __future__ import annotations

import time
from concurrent.futures import Future

from pivot.pipeline.slurm_hosts import SlurmHosts
from pivot.pipeline.slurm_poll import SlurmPoll
from pivot.pipeline.slurm_runs import RunsInFlight, resolve
from pivot.pipeline.slurm_submit import Submissions
from pivot.pipeline.worker import StageOutcome

__all__ = ["cancel_all", "cancel_one"]


def cancel_one(hosts: SlurmHosts, runs: RunsInFlight, future: Future[StageOutcome]) -> None:
    """scancel the job of the run of ``future``; the poll ends the run once Slurm says so."""
    run = runs.of(future)
    if run is not None and run.job_id:
        hosts.scancel(run.host, [run.job_id])
        run.watchers = []  # a watcher's resubmit of a cancelled stale job is not followed


def cancel_all(
    hosts: SlurmHosts,
    runs: RunsInFlight,
    submissions: Submissions,
    poll: SlurmPoll,
    *,
    reason: str,
    timeout: float = 120.0,
) -> None:
    """scancel every job in flight; return once Slurm reports them all ended."""
    poll.cancelling = True  # a failed job's watchers are not waited for
    submissions.wait()
    in_flight = runs.with_jobs()
    if not hosts.started:
        return  # nothing was ever submitted
    by_host: dict[str, list[str]] = {}
    for run in in_flight.values():
        by_host.setdefault(run.host, []).append(run.job_id)
    for host, ids in by_host.items():
        hosts.scancel(host, ids)
    deadline = time.monotonic() + timeout
    while runs.with_jobs() and time.monotonic() < deadline:
        time.sleep(min(poll.poll_seconds, 0.5))
    for run in runs.take_all():  # never submitted, or Slurm did not answer in time
        resolve(run, run.outcome(reason, state="cancelled"))
