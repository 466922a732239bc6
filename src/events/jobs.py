"""Events of the SLURM job domain: jobs seen, state changes, output read."""

from __future__ import annotations

from dataclasses import dataclass

from pivot.events.base import Event, event

__all__ = [
    "JobEnded",
    "JobLookupFailed",
    "JobLookupRecovered",
    "JobSeen",
    "JobStateChanged",
    "JobSubmitted",
    "OutputRead",
]


@event
@dataclass(frozen=True, kw_only=True)
class JobSubmitted(Event):
    """pivot submitted a job (`pivot jobs submit` or a `resubmit` action)."""

    TYPE = "job.submitted"
    host: str
    job_id: str
    script: str
    resubmit_of: str = ""
    script_text: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class JobSeen(Event):
    """A job was first looked up; where its output goes."""

    TYPE = "job.seen"
    host: str
    job_id: str
    name: str = ""
    state: str = ""
    stdout: str = ""
    stderr: str = ""
    script: str = ""
    workdir: str = ""
    user: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class JobStateChanged(Event):
    """Slurm reported a new state for a job."""

    TYPE = "job.state_changed"
    host: str
    job_id: str
    old: str
    new: str


@event
@dataclass(frozen=True, kw_only=True)
class JobEnded(Event):
    """Slurm says the job ended (the only thing that completes a watcher)."""

    TYPE = "job.ended"
    host: str
    job_id: str
    state: str
    exit_code: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class JobLookupFailed(Event):
    """A Slurm query (or a read of job output) started failing; watchers stay active.

    Recorded once when a kind of query (``what``: host, squeue, scontrol,
    sacct, stat, read) starts failing on a host, not on every attempt; the
    attempts until it works again are counted in ``job.lookup_recovered``.
    """

    TYPE = "job.lookup_failed"
    host: str
    error: str
    what: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class JobLookupRecovered(Event):
    """A failing kind of query works again: ``failures`` attempts failed since ``since``."""

    TYPE = "job.lookup_recovered"
    host: str
    what: str
    failures: int
    since: float
    last_error: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class OutputRead(Event):
    """The tailer consumed a job output file up to ``offset``.

    With ``inode`` and ``head_hash`` it identifies the file, so a restart
    resumes exactly there and a replaced file is read from the start.
    """

    TYPE = "output.read"
    host: str
    job_id: str
    path: str
    offset: int
    inode: int = 0
    head_hash: str = ""
    watcher_id: str = ""
    head_len: int = 0
    reset_reason: str = ""
