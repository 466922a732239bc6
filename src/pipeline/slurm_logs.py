"""The logs of a SLURM stage's jobs: one file per job, ``STAGE.log`` naming the current one.

Every job pivot submits for a stage writes its own file,
``.pivot/logs/jobs/STAGE.JOBID.log`` (the script says
``--output=.pivot/logs/jobs/STAGE.%j.log``;
a watcher's ``resubmit`` of that script keeps the ``%j``, so the new job
gets its own file too). No job can read another job's lines as its own,
whether Slurm truncates, appends (``--open-mode=append``) or a prolog
delays the job's start: the job watchers tail the path Slurm gives for
the job (``StdOut``, ``%j`` resolved).

``.pivot/logs/STAGE.log``, the stage's log for `pivot run`, `pivot watch`
and the UI, is a relative symlink to the current job's file, switched
(a new symlink renamed over it: atomic) when pivot submits a job, adopts
one or follows a watcher's resubmit (:func:`point_stage_log`). When a new
run of the stage is submitted, the files of the stage's earlier runs go
(:func:`remove_job_logs`); a run's own jobs keep theirs (the job a
resubmit replaced says why it was replaced). The job files have a folder
of their own: stage names may hold dots, and in one folder stage
``train.12``'s log would be job 12's of stage ``train``; in ``jobs/`` the
name ends in the job id, so each name has one reading.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections.abc import Iterable
from pathlib import Path

__all__ = [
    "JOB_LOGS_DIR",
    "LOGS_DIR",
    "job_log_name",
    "job_logs_to_remove",
    "point_stage_log",
    "remove_job_logs",
]

LOGS_DIR = Path(".pivot") / "logs"  # as pivot.pipeline.stage_log.log_path
JOB_LOGS_DIR = LOGS_DIR / "jobs"  # the files of the jobs, made before the first sbatch


def job_log_name(stage: str, job_id: str = "%j") -> str:
    """The file name of a stage's job's log; by default the ``%j`` pattern sbatch expands."""
    return f"{stage}.{job_id}.log"


def job_logs_to_remove(names: Iterable[str], stage: str, keep: Iterable[str] = ()) -> list[str]:
    """Which of ``names`` (in the job logs' folder) are ``stage``'s, but for ``keep`` (job ids)."""
    own = re.compile(re.escape(stage) + r"\.([0-9]+)\.log")
    kept = set(keep)
    found = []
    for name in names:
        m = own.fullmatch(name)
        if m is not None and m.group(1) not in kept:
            found.append(name)
    return sorted(found)


def point_stage_log(root: str | Path, stage: str, job_id: str) -> None:
    """Make ``.pivot/logs/STAGE.log`` a relative symlink to the job's file (atomically).

    The job's file may not exist yet (the job is pending): the stage's log is
    empty until it does. A folder that cannot be written leaves the log as it
    was: the job's own file is still where Slurm writes.
    """
    logs = Path(root) / LOGS_DIR
    tmp = logs / f".{stage}.log.{os.getpid()}.{threading.get_ident()}.tmp"
    with contextlib.suppress(OSError):
        logs.mkdir(parents=True, exist_ok=True)
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(Path(JOB_LOGS_DIR.name) / job_log_name(stage, job_id))
        tmp.replace(logs / f"{stage}.log")


def remove_job_logs(root: str | Path, stage: str, keep: Iterable[str] = ()) -> None:
    """Remove the stage's job logs, but those of the jobs ``keep`` names."""
    jobs = Path(root) / JOB_LOGS_DIR
    try:
        names = [p.name for p in jobs.iterdir()]
    except OSError:
        return
    for name in job_logs_to_remove(names, stage, keep):
        with contextlib.suppress(OSError):
            (jobs / name).unlink()
