"""A job the event log has seen, with an empty output file and watchers on it.

The tailer tests start from this: job 7 (``train``, RUNNING) whose stdout and
stderr are one file the test then writes, as the job would.
"""

from __future__ import annotations

from pathlib import Path

from pivot.events.jobs import JobSeen
from pivot.events.store import EventStore
from pivot.jobs.definition import parse_watchers
from pivot.jobs.manage import add_watchers

__all__ = ["ALERT_EVERY_SECOND", "JOB_ID", "watched_job"]

JOB_ID = "7"

# Logs the number of every `ALERT N` line; the job's output is looked at every second.
ALERT_EVERY_SECOND = """\
name: alert
pattern: "ALERT ([0-9]+)"
interval_seconds: 1
max_triggers: 0
actions:
  - type: log_event
    params: {message: "$1"}
"""


def watched_job(store: EventStore, tmp_path: Path, host: str, watchers_yaml: str) -> Path:
    """Append ``job.seen`` for job 7 on ``host`` with output ``tmp_path/job.out`` (created
    empty) and attach ``watchers_yaml``'s watchers; the output file's path."""
    out = tmp_path / "job.out"
    out.write_text("")
    store.append(
        [
            JobSeen(host=host, job_id=JOB_ID, name="train", state="RUNNING", stdout=str(out),
                    stderr=str(out), script="", workdir=str(tmp_path), user="u", actor="test")
        ]
    )  # fmt: skip
    add_watchers(store, parse_watchers(watchers_yaml), JOB_ID, host)
    return out
