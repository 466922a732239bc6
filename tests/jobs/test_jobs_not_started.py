"""A job that waits to start has no output of its own: its watchers read none.

Slurm opens a job's ``--output`` (truncating it) when the job starts, so
while it is pending the file holds what an earlier job with the same
``--output`` wrote: the job a ``resubmit`` replaced (the out-of-memory line
that caused the resubmit), the last run of the same script. These tests
drive the tailer on a real file, the job's states as the log records them
(no Slurm query is needed; tests/pipeline/test_slurm_stage_watchers.py does
the same on the real SLURM).
"""

from __future__ import annotations

from pathlib import Path

from pivot.events.jobs import JobSeen, OutputRead
from pivot.events.store import EventStore
from pivot.events.watchers import WatcherMatched
from pivot.jobs import slurm
from pivot.jobs.config import Config, HostConfig
from pivot.jobs.definition import parse_watchers
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.job_lookup import JobQuery
from pivot.jobs.manage import add_watchers
from pivot.jobs.tailer import Tailer
from pivot.jobs.transport import make_transports

from testkit.jobs_servers import store  # noqa: F401 - pytest fixture

WATCHER = """\
name: oom
pattern: "out of memory ([0-9]+)"
max_triggers: 0
actions:
  - type: log_event
    params: {message: "$1"}
"""


def _pending_job_sharing(store: EventStore, out: Path) -> Tailer:
    """Job 8, pending, whose --output is ``out``; its watcher; a started tailer."""
    store.append(
        [
            JobSeen(host="local", job_id="8", name="train", state="pending", stdout=str(out),
                    stderr=str(out), script="", workdir=str(out.parent), user="u", actor="test")
        ]
    )  # fmt: skip
    add_watchers(store, parse_watchers(WATCHER), "8", "local")
    config = Config(hosts={"local": HostConfig("local")})
    tailer = Tailer(store, config, make_transports(config), IoLoop())
    tailer.start()
    return tailer


def _matched(store: EventStore) -> list[tuple[str, ...]]:
    return [
        r.event.groups
        for r in store.read(types=[WatcherMatched.TYPE])
        if isinstance(r.event, WatcherMatched)
    ]


def _answer(state: str) -> JobQuery:
    return JobQuery(host="local", job_ids=("8",), infos={"8": slurm.JobInfo("8", state)})


def test_the_file_of_a_pending_job_is_not_read_and_its_own_output_is_once_it_runs(
    store: EventStore, tmp_path: Path
) -> None:
    out = tmp_path / "train.log"
    out.write_text("RuntimeError: out of memory 1\n")  # the job 8 replaced wrote this
    tailer = _pending_job_sharing(store, out)
    try:
        assert tailer.local_paths() == set()  # not even followed while it waits
        assert tailer.read_grown([str(out)]) == []
        assert tailer.jobs_answered(_answer("pending")) == []
        assert _matched(store) == []
        assert list(store.read(types=[OutputRead.TYPE])) == []  # no position either
        # It starts: Slurm truncates the file, the job writes its own lines.
        out.write_text("loading\nRuntimeError: out of memory 2\n")
        tailer.jobs_answered(_answer("running"))  # read at once, not at the next poll
        assert _matched(store) == [("2",)]
        assert tailer.local_paths() == {str(out)}
    finally:
        tailer.io.stop()


def test_a_job_that_ran_between_two_polls_is_read_when_it_is_seen_ended(
    store: EventStore, tmp_path: Path
) -> None:
    out = tmp_path / "train.log"
    out.write_text("")
    tailer = _pending_job_sharing(store, out)
    try:
        out.write_text("RuntimeError: out of memory 3\n")  # started, wrote, ended: never seen
        tailer.jobs_answered(_answer("failed"))
        assert _matched(store) == [("3",)]
    finally:
        tailer.io.stop()
