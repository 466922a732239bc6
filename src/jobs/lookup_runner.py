"""A command runner as the job lookup wants it: a failure to run is an outcome.

:func:`pivot.jobs.job_lookup.query_jobs` takes a :data:`~pivot.jobs.job_lookup.Runner`
that never raises; the tailer (a transport of its own) and the SLURM stages
(:class:`pivot.pipeline.slurm_hosts.SlurmHosts`) both adapt their command to it here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from pivot.jobs.job_lookup import CommandOutcome, Runner
from pivot.jobs.transport import CommandResult, TransportError

__all__ = ["lookup_runner"]


def lookup_runner(run: Callable[[list[str]], Awaitable[CommandResult]]) -> Runner:
    """``run`` as a job lookup runner: an unreachable host or a timeout becomes
    ``CommandOutcome(error=...)``, a command that ran its exit status and output."""

    async def run_for_lookup(argv: list[str]) -> CommandOutcome:
        try:
            r = await run(argv)
        except (TransportError, TimeoutError) as exc:
            return CommandOutcome(error=str(exc) or type(exc).__name__)
        return CommandOutcome(r.returncode, r.stdout, r.stderr)

    return run_for_lookup
