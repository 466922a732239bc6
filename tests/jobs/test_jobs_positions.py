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

from pivot.events.jobs import OutputRead
from pivot.events.store import EventStore
from pivot.events.watchers import WatcherMatched
from pivot.jobs.config import Config, HostConfig
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.output_reader import CHUNK_BYTES
from pivot.jobs.tail import POSITION_EVERY_SECONDS
from pivot.jobs.tailer import Tailer
from pivot.jobs.transport import LocalTransport, TransportError, make_transports

from testkit.jobs_servers import io  # noqa: F401 - pytest fixture
from testkit.watched_job import watched_job

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
def setup(tmp_path: Path) -> Iterator[tuple[EventStore, Path]]:
    store = EventStore.open(tmp_path / "events.db")
    out = watched_job(store, tmp_path, "local", WATCHER)
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


class DroppingTransport(LocalTransport):
    """The machine's files, read for real, but the connection "drops" at one read.

    A failure in the middle of a file is what an SSH connection that goes
    away does; here it is the ``fail_at``-th read (1-based).
    """

    def __init__(self, fail_at: int) -> None:
        super().__init__("local")
        self.fail_at = fail_at

    def read_now(self, path: str, offset: int, length: int) -> bytes:
        if self.counters["reads"] + 1 == self.fail_at:
            self.counters["reads"] += 1
            raise TransportError("local: connection lost")
        return super().read_now(path, offset, length)


def test_a_read_failing_mid_file_keeps_what_it_read_and_goes_on_from_there(
    setup: tuple[EventStore, Path], io: IoLoop
) -> None:
    store, out = setup
    line = b"step data load batch grad norm lr warmup eval save sync\n"
    first = line * (CHUNK_BYTES // len(line) - 2) + b"ALERT 1\n"
    out.write_bytes(first + line * 10 + b"ALERT 2\n" + line * 30_000 + b"ALERT 3\n")
    config = Config(hosts={"local": HostConfig("local")})
    transport = DroppingTransport(fail_at=2)  # the first chunk arrives, the second does not
    tailer = Tailer(store, config, {"local": transport}, io, clock=Clock())
    tailer.start()
    tailer.read_grown([str(out)])
    assert matched(store) == [("1",)]  # the first chunk's match is decided and recorded
    kept = recorded(store)[-1]
    assert 0 < kept <= CHUNK_BYTES  # with its position, at a line boundary
    assert out.read_bytes()[kept - 1 : kept] == b"\n"
    failed = [r.event for r in store.read(types=["job.lookup_failed"])]
    assert [
        (getattr(e, "what", ""), "connection lost" in getattr(e, "error", "")) for e in failed
    ] == [("read", True)]
    tailer.read_grown([str(out)])  # the next read goes on from there, nothing repeated
    assert matched(store) == [("1",), ("2",), ("3",)]
    assert [getattr(r.event, "what", "") for r in store.read(types=["job.lookup_recovered"])] == [
        "read"
    ]
