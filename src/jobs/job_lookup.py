"""Asking Slurm about a host's watched jobs: squeue, then scontrol, then sacct.

The fallback is a chain of pure decisions over plain data (a command's
:class:`CommandOutcome` in, the next step out), so it is tested without threads,
processes or a cluster:

- :func:`after_squeue`: one ``squeue`` lists every watched job the
  controller still knows. A job it lists that the log has seen is settled;
  the others (seen for the first time: their output paths come from
  ``scontrol``; or no longer listed) are asked of ``scontrol``, and with
  ``ask_ended`` those it lists ended too (squeue gives no exit code; the
  SLURM executor wants it). A job the log already knows ended (``ended``)
  is never asked on: its final state is known, and asking again would run
  scontrol and sacct every cycle for as long as it is watched. A failing
  ``squeue`` ends the query: no job is guessed ended.
- :func:`after_scontrol`: ``Invalid job id`` is an answer (the controller
  forgot the job), not a failure.
- :func:`after_sacct`: jobs neither lists are asked of accounting, where
  it exists; "accounting storage is disabled" means: do not ask this host
  again (:attr:`JobQuery.sacct_unavailable`).

:func:`query_jobs` runs that chain with a command runner (the event loop of
:mod:`pivot.jobs.ioloop`, never an actor's thread) and returns a
:class:`JobQuery`: what each job is, and what each kind of query said (for
:mod:`pivot.jobs.lookup_health`). It appends nothing: the JobTailer does, on
the message that brings the result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass, field

from pivot.jobs import slurm

__all__ = [
    "CommandOutcome",
    "JobQuery",
    "QueryStep",
    "Runner",
    "after_sacct",
    "after_scontrol",
    "after_squeue",
    "query_jobs",
]

SCONTROL_AT_ONCE = 8  # scontrols in flight together (first sight of many jobs at start-up)


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """What one command gave: exit status and output, or why it did not run (``error``)."""

    returncode: int = 0
    stdout: str = ""
    stderr: str = ""
    error: str = ""  # the host was unreachable or the command timed out


@dataclass(frozen=True, slots=True)
class QueryStep:
    """The decision after one command: what it found, whether it failed, what to ask next."""

    infos: dict[str, slurm.JobInfo] = field(default_factory=dict)
    failure: str = ""  # empty: the command worked (a recovery, if it was failing)
    ask: tuple[str, ...] = ()  # job ids for the next command of the chain
    sacct_unavailable: bool = False


def after_squeue(
    job_ids: Sequence[str],
    seen: Collection[str],
    out: CommandOutcome,
    *,
    ask_ended: bool = False,
    ended: Collection[str] = (),
) -> QueryStep:
    """squeue's answer: the jobs it lists, and those to ask ``scontrol`` about
    (never one of ``ended``: the log has its final state)."""
    if out.error:
        return QueryStep(failure=f"squeue: {out.error}")
    if out.returncode != 0 and not slurm.squeue_says_unknown(out.stderr):
        return QueryStep(failure=f"squeue exited {out.returncode}: {out.stderr.strip()[:300]}")
    infos = slurm.parse_squeue(out.stdout) if out.returncode == 0 else {}
    ask = tuple(
        j
        for j in job_ids
        if j not in ended
        and (not (j in seen and j in infos) or (ask_ended and j in infos and infos[j].ended))
    )
    return QueryStep(infos={j: i for j, i in infos.items() if j in job_ids}, ask=ask)


def after_scontrol(job_id: str, out: CommandOutcome) -> QueryStep:
    """scontrol's answer about one job (no info: the controller no longer knows it)."""
    if out.error:
        return QueryStep(failure=f"scontrol: {out.error}")
    if out.returncode != 0 and "Invalid job id" not in out.stderr:
        return QueryStep(failure=f"scontrol exited {out.returncode}: {out.stderr.strip()[:300]}")
    info = slurm.parse_scontrol(out.stdout) if out.returncode == 0 else None
    return QueryStep(infos={job_id: info} if info is not None else {})


def after_sacct(job_ids: Sequence[str], out: CommandOutcome) -> QueryStep:
    """Accounting's answer about jobs the controller forgot."""
    if out.error:
        return QueryStep(failure=f"sacct: {out.error}")
    unavailable = slurm.sacct_unavailable(out.stderr)
    if out.returncode != 0 or unavailable:
        failure = f"job(s) {','.join(job_ids)} unknown to squeue and scontrol; no accounting"
        return QueryStep(failure=failure, sacct_unavailable=unavailable)
    found = slurm.parse_sacct(out.stdout)
    return QueryStep(infos={j: i for j, i in found.items() if j in job_ids})


@dataclass(frozen=True)
class JobQuery:
    """One host's answer: each job's info, and what each kind of query said, in order."""

    host: str
    job_ids: tuple[str, ...]
    infos: dict[str, slurm.JobInfo] = field(default_factory=dict)
    # What scontrol said of a job the log has not seen (its output paths, its script).
    details: dict[str, slurm.JobInfo] = field(default_factory=dict)
    # (what, failure) per command run, in order: an empty failure is a success.
    lookups: tuple[tuple[str, str], ...] = ()
    sacct_unavailable: bool = False


Runner = Callable[[list[str]], Awaitable[CommandOutcome]]


async def query_jobs(
    host: str,
    run: Runner,
    job_ids: Sequence[str],
    seen: Collection[str],
    *,
    sacct_ok: bool = True,
    ask_ended: bool = False,
    ended: Collection[str] = (),
) -> JobQuery:
    """Run the squeue -> scontrol -> sacct chain for ``job_ids`` with ``run``; the
    jobs of ``ended`` (the log has their end) are asked of squeue only."""
    ids = tuple(job_ids)
    first = after_squeue(
        ids, seen, await run(slurm.squeue_argv(ids)), ask_ended=ask_ended, ended=ended
    )
    lookups = [("squeue", first.failure)]
    if first.failure:
        return JobQuery(host, ids, lookups=tuple(lookups))
    infos = dict(first.infos)
    details: dict[str, slurm.JobInfo] = {}
    slots = asyncio.Semaphore(SCONTROL_AT_ONCE)

    async def scontrol(job_id: str) -> QueryStep:
        async with slots:
            return after_scontrol(job_id, await run(slurm.scontrol_argv(job_id)))

    steps = await asyncio.gather(*(scontrol(j) for j in first.ask))
    missing: list[str] = []
    for job_id, step in zip(first.ask, steps, strict=True):
        lookups.append(("scontrol", step.failure))
        info = step.infos.get(job_id)
        if info is None:
            if job_id not in infos:
                missing.append(job_id)
            continue
        if job_id not in seen:
            details[job_id] = info
        infos[job_id] = info
    unavailable = False
    if missing and sacct_ok:
        last = after_sacct(missing, await run(slurm.sacct_argv(missing)))
        lookups.append(("sacct", last.failure))
        infos.update(last.infos)
        unavailable = last.sacct_unavailable
    return JobQuery(host, ids, infos, details, tuple(lookups), unavailable)
