"""Slurm commands as pure argv builders and output parsers.

No I/O here: a transport runs the argv. One ``squeue`` per host per poll cycle
covers every watched job; a job squeue no longer lists is asked of
``scontrol show job``, then of ``sacct`` (where accounting exists). Only a job
state Slurm itself reports as final ends a watcher.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = [
    "END_STATES_FOR_WATCHERS",
    "FINAL_STATES",
    "JobInfo",
    "ScriptError",
    "apply_modifications",
    "expand_output_path",
    "is_job_id",
    "normalise_state",
    "parse_sacct",
    "parse_sbatch",
    "parse_scontrol",
    "parse_squeue",
    "sacct_argv",
    "scancel_argv",
    "scontrol_argv",
    "set_remaining_resubmits",
    "squeue_argv",
    "squeue_mine_argv",
]

END_STATES_FOR_WATCHERS = (
    "completed",
    "failed",
    "timeout",
    "cancelled",
    "node_fail",
    "out_of_memory",
    "preempted",
    "boot_fail",
    "deadline",
)
FINAL_STATES = frozenset({*END_STATES_FOR_WATCHERS, "revoked", "special_exit"})

_SQUEUE_FORMAT = "%i|%T|%j|%u|%A|%a"


@dataclass(frozen=True, slots=True)
class JobInfo:
    """What pivot knows of one job from Slurm."""

    job_id: str
    state: str  # lower case, e.g. "running", "failed"
    name: str = ""
    user: str = ""
    array_job_id: str = ""
    array_task_id: str = ""
    stdout: str = ""
    stderr: str = ""
    workdir: str = ""
    command: str = ""
    exit_code: str = ""

    @property
    def ended(self) -> bool:
        """Slurm reports a final state."""
        return self.state in FINAL_STATES


_JOB_ID = re.compile(r"[0-9]+(?:_[0-9]+)?")


def is_job_id(text: str) -> bool:
    """Whether ``text`` is a Slurm job id: ``1234``, or an array task ``1234_5``.

    ASCII digits only: ``str.isdigit()`` also says yes to ``²`` (which
    ``int()`` refuses) and to other scripts' digits.
    """
    return _JOB_ID.fullmatch(text) is not None


def normalise_state(raw: str) -> str:
    """``CANCELLED by 0`` -> ``cancelled``; ``OUT_OF_MEMORY`` -> ``out_of_memory``."""
    word = raw.strip().split(" ", 1)[0].rstrip("+")
    return word.lower()


def squeue_argv(job_ids: Sequence[str]) -> list[str]:
    """One query for all of a host's jobs, finished ones included while Slurm keeps them."""
    return [
        "squeue",
        "--noheader",
        "--states=all",
        f"--format={_SQUEUE_FORMAT}",
        f"--jobs={','.join(job_ids)}",
    ]


def squeue_mine_argv() -> list[str]:
    """Every job of the user Slurm is asked as, queued or running (to pick one to watch)."""
    return ["squeue", "--noheader", "--me", f"--format={_SQUEUE_FORMAT}"]


def parse_squeue(text: str) -> dict[str, JobInfo]:
    """Jobs from ``squeue`` output in :data:`_SQUEUE_FORMAT`."""
    jobs: dict[str, JobInfo] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 6:
            continue
        job_id, state, name, user, array_job, array_task = parts[:6]
        jobs[job_id] = JobInfo(
            job_id=job_id,
            state=normalise_state(state),
            name=name,
            user=user,
            array_job_id=array_job,
            array_task_id="" if array_task in ("N/A", "") else array_task,
        )
    return jobs


def squeue_says_unknown(stderr: str) -> bool:
    """squeue exits 1 with this when the only job asked for is gone."""
    return "Invalid job id" in stderr


def scontrol_argv(job_id: str) -> list[str]:
    """Everything about one job, on one line."""
    return ["scontrol", "--oneliner", "show", "job", job_id]


def parse_scontrol(text: str) -> JobInfo | None:
    """A job from ``scontrol -o show job`` output; None when there is none."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    if "JobId=" not in line:
        return None
    fields = _key_values(line)
    job_id = fields.get("JobId", "")
    user = fields.get("UserId", "").split("(", 1)[0]
    info = JobInfo(
        job_id=job_id,
        state=normalise_state(fields.get("JobState", "")),
        name=fields.get("JobName", ""),
        user=user,
        array_job_id=fields.get("ArrayJobId", ""),
        array_task_id=fields.get("ArrayTaskId", ""),
        workdir=fields.get("WorkDir", ""),
        command=fields.get("Command", ""),
        exit_code=fields.get("ExitCode", ""),
    )
    stdout = expand_output_path(fields.get("StdOut", ""), info)
    stderr = expand_output_path(fields.get("StdErr", ""), info)
    return JobInfo(**{**_asdict(info), "stdout": stdout, "stderr": stderr or stdout})


def _asdict(info: JobInfo) -> dict[str, str]:
    return {name: getattr(info, name) for name in info.__slots__}


_KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z0-9_:/]*)=")


def _key_values(line: str) -> dict[str, str]:
    # Values may contain spaces (Command=, Comment=); a value ends where the next
    # " Key=" begins.
    out: dict[str, str] = {}
    matches = list(_KEY.finditer(line))
    for i, m in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        out.setdefault(m.group(1), line[m.end() : end].strip())
    return out


def sacct_argv(job_ids: Sequence[str]) -> list[str]:
    """Final states from accounting, for jobs Slurm's controller forgot."""
    return [
        "sacct",
        "--noheader",
        "--parsable2",
        "--allocations",
        "--format=JobID,State,JobName,ExitCode",
        f"--jobs={','.join(job_ids)}",
    ]


def parse_sacct(text: str) -> dict[str, JobInfo]:
    """Jobs from ``sacct --parsable2`` output."""
    jobs: dict[str, JobInfo] = {}
    for line in text.splitlines():
        parts = line.split("|")
        if len(parts) < 4 or not parts[0]:
            continue
        jobs[parts[0]] = JobInfo(
            job_id=parts[0], state=normalise_state(parts[1]), name=parts[2], exit_code=parts[3]
        )
    return jobs


def sacct_unavailable(stderr: str) -> bool:
    """Accounting is disabled on this cluster: do not ask again."""
    return "accounting storage is disabled" in stderr.lower()


def scancel_argv(job_id: str) -> list[str]:
    """Cancel one job."""
    return ["scancel", job_id]


def batch_script_argv(job_id: str) -> list[str]:
    """The batch script Slurm kept for a job, on stdout."""
    return ["scontrol", "write", "batch_script", job_id, "-"]


def sbatch_argv(workdir: str = "") -> list[str]:
    """Submit a script read from stdin, optionally in a working directory."""
    argv = ["sbatch", "--parsable"]
    if workdir:
        argv.append(f"--chdir={workdir}")
    return argv


def parse_sbatch(text: str) -> str:
    """The job id printed by ``sbatch --parsable`` (``123`` or ``123;cluster``)."""
    first = text.strip().splitlines()[0] if text.strip() else ""
    job_id = first.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise ValueError(f"sbatch printed no job id: {text.strip()[:200]!r}")
    return job_id


def expand_output_path(path: str, job: JobInfo) -> str:
    """Expand ``%j %x %u %A %a`` (and ``%%``) the way sbatch does."""
    if "%" not in path:
        return path
    table: Mapping[str, str] = {
        "j": job.job_id,
        "x": job.name,
        "u": job.user,
        "A": job.array_job_id or job.job_id,
        "a": job.array_task_id or "4294967294",
        "%": "%",
    }

    def repl(m: re.Match[str]) -> str:
        width, key = m.group(1), m.group(2)
        value = table.get(key)
        if value is None:
            return m.group(0)
        if width and value.isdigit():
            return value.zfill(int(width))
        return value

    return re.sub(r"%(\d*)([jxuAa%])", repl, path)


class ScriptError(ValueError):
    """A batch script that cannot be modified as asked."""


_OPTION_LINE = re.compile(r"^#SBATCH\s+(--?[A-Za-z][\w-]*)(?:[=\s]+(.*))?$")
_SHORT = {
    "-J": "job-name",
    "-t": "time",
    "-p": "partition",
    "-o": "output",
    "-e": "error",
    "-n": "ntasks",
    "-N": "nodes",
    "-c": "cpus-per-task",
    "-G": "gpus",
    "-A": "account",
}


_OPTION_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]*")
# One #SBATCH token: no whitespace of any kind (str.isspace also covers the
# form feeds, vertical tabs and Unicode separators that other line splitters
# treat as line ends), no quotes or backslashes that sbatch's parser would
# interpret, no control characters.
_OPTION_VALUE = re.compile(r"[^\s\"'\\\x00-\x1f\x7f-\x9f\u2028\u2029]+")


def _check_option(key: str, value: str) -> None:
    """Refuse a modification that could add a line or an option of its own.

    Values come from watcher definitions and, through substitution, from job
    output: each must stay a single ``--key=value`` token on its own line.
    """
    if not _OPTION_NAME.fullmatch(key):
        raise ScriptError(f"modification key {key!r} is not an sbatch option name")
    if not _OPTION_VALUE.fullmatch(value):
        raise ScriptError(
            f"modification {key}={value!r} is not a single sbatch value "
            "(empty, or has whitespace, quotes, backslashes or control characters)"
        )


def apply_modifications(script: str, modifications: Mapping[str, object]) -> str:
    """Set ``#SBATCH --opt=value`` for each modification, replacing or adding the line."""
    lines = script.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    pending = {k.lstrip("-"): str(v) for k, v in modifications.items()}
    for key, value in pending.items():
        _check_option(key, value)
    last_option = 0
    for i, line in enumerate(lines):
        m = _OPTION_LINE.match(line.strip())
        if not m:
            continue
        last_option = i + 1
        opt = m.group(1)
        name = _SHORT.get(opt, opt.lstrip("-")) if not opt.startswith("--") else opt[2:]
        if name in pending:
            lines[i] = f"#SBATCH --{name}={pending.pop(name)}"
    if pending:
        if last_option == 0:
            last_option = 1 if lines and lines[0].startswith("#!") else 0
        added = [f"#SBATCH --{k}={v}" for k, v in pending.items()]
        lines[last_option:last_option] = added
    return "\n".join(lines) + "\n"


_REMAINING = re.compile(r"^(#\s*\s*.*remaining_resubmits\s*:\s*)(\d+)(.*)$")


def set_remaining_resubmits(script: str, value: int) -> str:
    """Rewrite ``remaining_resubmits: N`` in embedded watcher blocks to ``value``."""
    out: list[str] = []
    inside = False
    lines = script.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("#WATCHER_BEGIN"):
            inside = True
        elif stripped.startswith("#WATCHER_END"):
            inside = False
        elif inside:
            m = _REMAINING.match(line)
            if m:
                out.append(f"{m.group(1)}{value}{m.group(3)}")
                continue
        out.append(line)
    return "\n".join(out) + "\n"


def job_ids_of(lines: Iterable[str]) -> list[str]:
    """Job ids in order, without duplicates."""
    seen: dict[str, None] = {}
    for line in lines:
        seen.setdefault(line, None)
    return list(seen)
