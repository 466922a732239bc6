"""The job side of a SLURM stage: its batch script, and what runs inside the job.

A stage run on SLURM is one job whose script is built by :func:`batch_script`
(pure): ``#SBATCH`` lines for the stage's resources (each value a checked
single token, see :mod:`pivot.pipeline.slurm_resources`), then one command,
every word of it quoted with :func:`shlex.quote`::

    cd /project || exit 1
    exec /project/.venv/bin/python -m pivot.pipeline.slurm_job /project/.pivot/slurm/RUN.json

The stage itself is not in the script: it is data, in the *run file* (a
:class:`~pivot.pipeline.worker.StageTask` as JSON) written before
submission. The job runs it in a fresh interpreter (the submitting Python,
so the node runs the code as it is on the shared disk now) through
:func:`pivot.pipeline.worker.run_stage`, the same code path as a local
worker, every failure an outcome. Its output is the job's (Slurm writes it
to the job's own ``.pivot/logs/jobs/STAGE.JOBID.log``, which
``.pivot/logs/STAGE.log`` points to: :mod:`pivot.pipeline.slurm_logs`), so
job watchers read what the stage prints. The
:class:`~pivot.pipeline.worker.StageOutcome` is written as JSON beside the
run file (``RUN.result.json``, atomically), with the job id that wrote it.

Everything resources say is in the script, not on sbatch's command line, so
a watcher's ``resubmit`` (which re-submits the script Slurm kept, with
changed ``#SBATCH`` lines) reruns the same stage run: the new job writes the
same result file (and its own log: the ``%j`` of ``--output`` is kept).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from pivot.pipeline.slurm_logs import JOB_LOGS_DIR, LOGS_DIR, job_log_name
from pivot.pipeline.worker import StageOutcome, StageTask, run_stage

__all__ = [
    "LOGS_DIR",
    "RUNS_DIR",
    "batch_script",
    "job_name",
    "main",
    "read_outcome",
    "result_path",
    "write_run_file",
]

RUNS_DIR = Path(".pivot") / "slurm"


def job_name(stage: str) -> str:
    """The Slurm job name of a stage's jobs (stage names are single tokens)."""
    return f"pivot.{stage}"


def result_path(run_file: str | Path) -> Path:
    """Where the job writes the outcome of the run described by ``run_file``."""
    run = Path(run_file)
    return run.with_name(run.name.removesuffix(".json") + ".result.json")


def batch_script(
    task: StageTask,
    run_file: str,
    options: Sequence[str],
    *,
    python: str = sys.executable,
) -> str:
    """The sbatch script of one stage run: ``#SBATCH`` lines, then the quoted command.

    ``options`` are ``--key=value`` tokens from
    :func:`~pivot.pipeline.slurm_resources.sbatch_options` (already checked
    to be single tokens). The job's stdout and stderr go to its own file,
    ``.pivot/logs/jobs/STAGE.%j.log`` (relative to the job's directory; Slurm puts
    the job id for ``%j``): the stage's output, and anything before Python
    runs it (a missing interpreter, a node problem), in the file job watchers
    read and ``.pivot/logs/STAGE.log`` points to.
    """
    for option in options:
        if not option.startswith("--") or any(c.isspace() for c in option):
            raise ValueError(f"not a single sbatch option: {option!r}")
    lines = [
        "#!/bin/sh",
        f"#SBATCH --job-name={job_name(task.stage)}",
        f"#SBATCH --output={(JOB_LOGS_DIR / job_log_name(task.stage)).as_posix()}",
        *(f"#SBATCH {option}" for option in options),
        "# pivot: one run of stage " + task.stage + " (its task is in the run file below)",
        f"cd {shlex.quote(task.root)} || exit 1",
        "exec " + shlex.join([python, "-m", "pivot.pipeline.slurm_job", run_file]),
    ]
    return "\n".join(lines) + "\n"


def write_run_file(path: Path, task: StageTask, run_id: str) -> None:
    """Write the task of one stage run for its job; an old result of the same path goes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    result_path(path).unlink(missing_ok=True)
    data = {"run_id": run_id, "task": asdict(task)}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(path)


def read_outcome(run_file: str | Path) -> tuple[StageOutcome, str] | None:
    """The outcome the job wrote and the id of the job that wrote it; None when none did."""
    try:
        data = json.loads(result_path(run_file).read_text())
        outcome = StageOutcome(**data["outcome"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return outcome, str(data.get("job_id", ""))


def _task(data: Mapping[str, Any]) -> StageTask:
    return StageTask(**data)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pivot.pipeline.slurm_job RUN_FILE``: run the stage, write its outcome.

    Exit status 0 when the stage succeeded, 1 when it failed (its error and
    traceback are in the outcome and the stage's log), 2 when the run file
    cannot be read.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m pivot.pipeline.slurm_job RUN_FILE", file=sys.stderr)
        return 2
    run_file = Path(args[0])
    try:
        task = _task(json.loads(run_file.read_text())["task"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"pivot: cannot read the run file {run_file}: {exc}", file=sys.stderr)
        return 2
    outcome = run_stage(task)
    out = result_path(run_file)
    data = {"job_id": os.environ.get("SLURM_JOB_ID", ""), "outcome": asdict(outcome)}
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data))
    tmp.replace(out)  # atomic: pivot never reads half a result
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
