"""Read positions: recorded with every decision, at most every few seconds otherwise.

A read that matched nothing need not write its position at once (a local
file read 20 times a second would write 20 events a second): a restart from
the older recorded position only scans again lines that match nothing. These
tests drive the tailer's local read path on real files (no Slurm query is
needed: the job's output paths come from a recorded ``job.seen``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pivot.events.jobs import JobSeen, OutputRead
from pivot.events.store import EventStore
from pivot.events.watchers import WatcherMatched
from pivot.jobs.config import Config, HostConfig
from pivot.jobs.definition import parse_watchers
from pivot.jobs.first_reads import finish_stat, start_stat
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.manage import add_watchers
from pivot.jobs.runtime import make_transports
from pivot.jobs.tail import POSITION_EVERY_SECONDS
from pivot.jobs.tailer import Tailer
from pivot.jobs.transport import LocalTransport

WATCHER = """\
name: alert
pattern: "ALERT ([0-9]+)"
max_triggers: 0
actions:
  - type: log_event
    params: {message: "$1"}
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def io() -> Iterator[IoLoop]:
    loop = IoLoop()
    yield loop
    loop.stop()


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[EventStore, Path]]:
    store = EventStore.open(tmp_path / "events.db")
    out = tmp_path / "job.out"
    out.write_text("")
    store.append(
        [
            JobSeen(host="local", job_id="7", name="train", state="RUNNING", stdout=str(out),
                    stderr=str(out), script="", workdir=str(tmp_path), user="u", actor="test")
        ]
    )  # fmt: skip
    add_watchers(store, parse_watchers(WATCHER), "7", "local")
    yield store, out
    store.close()


def tailer_on(store: EventStore, io: IoLoop, clock: Clock) -> Tailer:
    config = Config(hosts={"local": HostConfig("local")})
    tailer = Tailer(store, config, make_transports(config), io, clock=clock)
    tailer.start()
    return tailer


def recorded(store: EventStore) -> list[int]:
    return [
        r.event.offset
        for r in store.read(types=[OutputRead.TYPE])
        if isinstance(r.event, OutputRead)
    ]


def matched(store: EventStore) -> list[tuple[str, ...]]:
    return [
        r.event.groups
        for r in store.read(types=[WatcherMatched.TYPE])
        if isinstance(r.event, WatcherMatched)
    ]


def append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def test_quiet_reads_are_recorded_every_few_seconds_decisions_at_once(
    setup: tuple[EventStore, Path], io: IoLoop
) -> None:
    store, out = setup
    clock = Clock()
    tailer = tailer_on(store, io, clock)
    append(out, "noise\n")
    tailer.read_grown([str(out)])
    assert recorded(store) == [6]  # the first read of a file is recorded
    append(out, "noise\n")
    tailer.read_grown([str(out)])
    assert recorded(store) == [6]  # matched nothing, recorded a moment ago: not yet
    assert tailer.reader.offset(next(iter(tailer.book.watchers)), str(out)) == 12
    append(out, "ALERT 1\n")
    tailer.read_grown([str(out)])
    assert recorded(store) == [6, 20]  # a decision is recorded with its position
    append(out, "noise\n")
    tailer.read_grown([str(out)])
    clock.now += POSITION_EVERY_SECONDS
    append(out, "noise\n")
    tailer.read_grown([str(out)])
    assert recorded(store) == [6, 20, 32]
    append(out, "noise\n")
    tailer.read_grown([str(out)])
    tailer.flush()  # stopping: every position is recorded
    assert recorded(store) == [6, 20, 32, 38]
    tailer.flush()
    assert recorded(store) == [6, 20, 32, 38]  # nothing moved since


def test_a_restart_from_an_older_position_repeats_and_skips_no_match(
    setup: tuple[EventStore, Path], io: IoLoop
) -> None:
    store, out = setup
    clock = Clock()
    first = tailer_on(store, io, clock)
    append(out, "ALERT 1\nnoise\n")
    first.read_grown([str(out)])
    append(out, "noise\n")
    first.read_grown([str(out)])  # read, not recorded; then pivot dies (no flush)
    assert recorded(store) == [14]
    append(out, "noise\nALERT 2\npart")
    second = tailer_on(store, io, clock)
    second.read_grown([str(out)])
    assert matched(store) == [("1",), ("2",)]
    append(out, "ial ALERT 3\n")
    second.read_grown([str(out)])
    assert matched(store) == [("1",), ("2",), ("3",)]


def test_the_early_stat_is_redone_for_files_it_lacks_and_for_ended_jobs(
    tmp_path: Path, io: IoLoop
) -> None:
    # Over SSH the stat runs beside squeue; a job's last bytes may be newer than it.
    transport = LocalTransport()
    ended, running, new = (tmp_path / n for n in ("ended.out", "running.out", "new.out"))
    for p in (ended, running, new):
        p.write_text("x\n")
    early = start_stat(io, transport, [str(ended), str(running)])
    assert early is not None
    early.result.result(10)
    for p in (ended, running, new):
        append(p, "last words\n")  # written after the early stat
    stats = finish_stat(io, transport, early, [str(ended), str(running), str(new)], {str(ended)})
    assert stats[str(ended)].size == 13  # stat'ed again: its job ended
    assert stats[str(new)].size == 13  # not in the early stat: stat'ed now
    assert stats[str(running)].size == 2  # the early stat stands (read next poll)
    assert start_stat(io, transport, []) is None
