"""How a SLURM stage run ended, as pure functions over what Slurm and the job said.

* The job wrote its outcome (``RUN.result.json``, see
  :mod:`pivot.pipeline.slurm_job`): that is the stage's result, success or
  the stage's own error; the job id is added to an error so `pivot why`
  names the job.
* It did not (the job was killed, ran out of memory or time, its node
  failed, Python never started): the stage fails with Slurm's state and
  exit code, ``FAILED exit 3 (SLURM job 12 on local)``, ``OUT_OF_MEMORY
  (...)``, ``TIMEOUT (...)``, ``NODE_FAIL (...)``, ``CANCELLED (...)``.
* sbatch refused the job: the stage fails with Slurm's own message.

Every outcome names its job (``job_id``, after a resubmission the job whose
result counts), the state it ended in as Slurm spells it in lower case
(``completed``, ``failed``, ``out_of_memory``) and its exit code (``3:0``), so
the stage end events carry them (:mod:`pivot.pipeline.execute`).
"""

from __future__ import annotations

import dataclasses

from pivot.jobs.slurm import JobInfo
from pivot.pipeline.worker import StageOutcome

__all__ = [
    "ended",
    "exit_text",
    "job_label",
    "reported",
    "sbatch_refusal",
    "state_text",
    "written_end",
]


def job_label(job_id: str, host: str) -> str:
    """``SLURM job 12 on local``: how errors and the display name a job."""
    return f"SLURM job {job_id} on {host}"


def exit_text(exit_code: str) -> str:
    """Slurm's ``ExitCode=3:0`` as ``exit 3``, ``0:9`` as ``signal 9``; "" when clean or unknown."""
    code, _, signal = exit_code.partition(":")
    if signal.isdigit() and signal != "0":
        return f"signal {signal}"
    if code.isdigit() and code != "0":
        return f"exit {code}"
    return ""


def state_text(info: JobInfo) -> str:
    """``FAILED exit 3``, ``OUT_OF_MEMORY``, ``TIMEOUT``: the state as Slurm spells it."""
    state = info.state.upper()
    code = exit_text(info.exit_code)
    return f"{state} {code}" if code and info.state in ("failed", "completed") else state


def ended(
    stage: str,
    info: JobInfo,
    host: str,
    written: tuple[StageOutcome, str] | None,
    duration: float,
) -> StageOutcome:
    """The outcome of a stage run whose job Slurm reports ended (``info.ended``).

    ``written`` is what the job wrote and the job id that wrote it
    (:func:`pivot.pipeline.slurm_job.read_outcome`); one written by another
    job of the same run (before a resubmission) does not count.
    """
    label = job_label(info.job_id, host)
    if written is not None and written[1] in ("", info.job_id):
        return reported(written[0], info.job_id, host, info)
    if info.state == "completed":
        log = f".pivot/logs/jobs/{stage}.{info.job_id}.log"
        error = f"COMPLETED without a result from pivot ({label}): see {log}"
    else:
        error = f"{state_text(info)} ({label})"
    return StageOutcome(stage, False, 0, duration, error, job_id=info.job_id, state=info.state,
                        exit_code=info.exit_code)  # fmt: skip


def written_end(outcome: StageOutcome, job_id: str) -> JobInfo:
    """How a job that wrote ``outcome`` ends: its entry point exits right after writing it,
    0 (``completed``) when the stage succeeded, 1 (``failed``, ``1:0``) when it did not
    (:func:`pivot.pipeline.slurm_job.main`)."""
    if outcome.ok:
        return JobInfo(job_id=job_id, state="completed", exit_code="0:0")
    return JobInfo(job_id=job_id, state="failed", exit_code="1:0")


def reported(
    outcome: StageOutcome, job_id: str, host: str, info: JobInfo | None = None
) -> StageOutcome:
    """What the job wrote, with the job named in an error (so `pivot why` names it).

    ``info`` is how Slurm saw the job end; without it (the outcome was read
    before Slurm said the job ended), the end :func:`written_end` implies.
    """
    end = info if info is not None else written_end(outcome, job_id)
    named = dataclasses.replace(outcome, job_id=job_id, state=end.state, exit_code=end.exit_code)
    if outcome.ok:
        return named
    return dataclasses.replace(named, error=f"{outcome.error} ({job_label(job_id, host)})")


def sbatch_refusal(stderr: str, stdout: str = "") -> str:
    """sbatch's complaint as one line, without its ``sbatch: error:`` prefixes."""
    lines = []
    for raw in (stderr or stdout).splitlines():
        line = raw.strip()
        for prefix in ("sbatch: error: ", "sbatch: "):
            line = line.removeprefix(prefix)
        if line:
            lines.append(line)
    return "; ".join(lines)[:500] or "sbatch printed nothing"
