"""A remote poll reads ahead of its stat only the files being written.

Over SSH a read is a round trip; the reader requests the next bytes of a file
beside the batched stat when that file is being written, so the read costs
no second round trip. A file that is not (one line at a job's start, then
quiet) must cost no read at a poll that finds nothing new: the reads of a
quiet poll are zero. These tests drive the reader's remote path on real files
through a transport that is not the local one (its stat and reads go through
the event loop like SSH's, counted the same way), and, for what is read
ahead through a kept SFTP handle being used before the stat answers, over a
real sshd.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from pivot.events.store import EventStore
from pivot.jobs.batch import ActionBatch
from pivot.jobs.config import Config, HostConfig
from pivot.jobs.first_reads import AHEAD_BYTES
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.tail import FileStat
from pivot.jobs.tailer import Tailer
from pivot.jobs.transport import CommandResult, SshTransport

from testkit import sshd_server
from testkit.jobs_servers import io, sshd  # noqa: F401 - pytest fixtures
from testkit.watched_job import ALERT_EVERY_SECOND, watched_job

WATCHER = """\
name: quiet
pattern: "never matches"
interval_seconds: 1
actions: [{type: cancel_job}]
"""


class FarFiles:
    """This machine's files, stated and read the way a remote host's are (on the loop)."""

    def __init__(self) -> None:
        self.name = "far"
        self.counters: Counter[str] = Counter()
        self.asked: list[tuple[int, int]] = []  # (offset, length) of each read
        # Written to a file by "the job" while the stat command is on its way (after
        # the reads beside it were answered), once.
        self.written_during_stat: tuple[Path, str] | None = None

    async def run(
        self, argv: Sequence[str], *, input_text: str | None = None, timeout: float = 120.0
    ) -> CommandResult:
        raise AssertionError("no command but the stat is expected")

    async def stat_many(self, paths: Sequence[str]) -> dict[str, FileStat]:
        self.counters["commands"] += 1
        self.counters["cmd:stat"] += 1
        if self.written_during_stat is not None:
            await asyncio.sleep(0.05)  # the reads requested beside the stat are answered first
            append(*self.written_during_stat)
            self.written_during_stat = None
        out: dict[str, FileStat] = {}
        for p in paths:
            st = os.stat(p)
            out[p] = FileStat(st.st_ino, st.st_size, st.st_mtime_ns / 1e9)
        return out

    async def read(self, path: str, offset: int, length: int) -> bytes:
        self.counters["reads"] += 1
        self.asked.append((offset, length))
        with Path(path).open("rb") as fh:
            fh.seek(offset)
            return fh.read(length)

    async def close(self) -> None:
        pass


@pytest.fixture
def far(tmp_path: Path, io: IoLoop) -> Iterator[tuple[Tailer, FarFiles, Path]]:
    store = EventStore.open(tmp_path / "events.db")
    out = watched_job(store, tmp_path, "far", WATCHER)
    transport = FarFiles()
    config = Config(hosts={"far": HostConfig("far", hostname="far.example")})
    tailer = Tailer(store, config, {"far": transport}, io)
    tailer.start()
    yield tailer, transport, out
    store.close()


def poll(tailer: Tailer, transport: FarFiles) -> Counter[str]:
    """One read of the host's files, as a poll does it; what it cost."""
    before = transport.counters.copy()
    due = list(tailer.book.watchers.values())
    tailer.reader.read("far", transport, due, set(), tailer.clock())
    # A read ahead that the stat made useless is not waited for: let it start.
    tailer.io.call(asyncio.sleep(0.01), 10)
    return transport.counters - before


def append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def written_at_every_poll(tailer: Tailer, transport: FarFiles, out: Path) -> None:
    """Three polls, each after a line was appended (``step 0`` to ``step 2``: 21 bytes)."""
    for i in range(3):
        append(out, f"step {i}\n")
        poll(tailer, transport)


def test_a_file_that_grew_once_costs_no_read_at_the_next_quiet_poll(
    far: tuple[Tailer, FarFiles, Path],
) -> None:
    tailer, transport, out = far
    assert poll(tailer, transport) == {"commands": 1, "cmd:stat": 1}  # empty: nothing to read
    append(out, "start 1\n")
    assert poll(tailer, transport)["reads"] == 1  # the job's first line
    # Nothing written since: the stat alone (a read ahead here was wasted, #11's flaky test).
    assert poll(tailer, transport) == {"commands": 1, "cmd:stat": 1}


def test_a_file_being_written_is_read_beside_the_stat(
    far: tuple[Tailer, FarFiles, Path],
) -> None:
    tailer, transport, out = far
    written_at_every_poll(tailer, transport, out)
    transport.asked.clear()
    append(out, "step 3\n")
    cost = poll(tailer, transport)
    # Written at every poll: its next bytes were asked for with the stat (AHEAD_BYTES,
    # not the 7 bytes the stat found), with its head; no other read.
    assert (21, AHEAD_BYTES) in transport.asked
    assert cost == {"commands": 1, "cmd:stat": 1, "reads": 2}
    assert tailer.reader.offset(next(iter(tailer.book.watchers)), str(out)) == 28
    # It stopped: one read ahead is spent finding that out, then the stat alone.
    assert poll(tailer, transport)["reads"] == 2
    assert poll(tailer, transport) == {"commands": 1, "cmd:stat": 1}


def test_a_line_written_between_the_read_ahead_and_the_stat_is_read_at_the_next_poll(
    far: tuple[Tailer, FarFiles, Path],
) -> None:
    # The read ahead reaches the end of the file as it was then; the stat, a moment
    # later, sees more. Nothing is written after that (the job's last line): the next
    # poll must still read it, though its stat finds the size the last one saw.
    tailer, transport, out = far
    written_at_every_poll(tailer, transport, out)
    append(out, "step 3\n")
    transport.written_during_stat = (out, "last line\n")
    poll(tailer, transport)
    watcher_id = next(iter(tailer.book.watchers))
    assert tailer.reader.offset(watcher_id, str(out)) == 28  # what the read ahead got
    poll(tailer, transport)
    assert tailer.reader.offset(watcher_id, str(out)) == out.stat().st_size == 38


# -- over a real sshd: what is read ahead is used before the stat answers ------------


class GatedStat(SshTransport):
    """SSH whose batched stat, once ``hold`` is set, answers only when ``gate`` is set
    (or after 30 s): the stat command of a loaded remote shell, slower than a read."""

    def __init__(self, host: HostConfig) -> None:
        super().__init__(host)
        self.hold = False
        self.gate = threading.Event()
        self.released_by_gate: bool | None = None

    async def stat_many(self, paths: Sequence[str]) -> dict[str, FileStat]:
        if self.hold:
            self.released_by_gate = await asyncio.to_thread(self.gate.wait, 30)
        return await super().stat_many(paths)


@pytest.mark.ssh
def test_a_file_being_written_is_matched_before_its_stat_answers(
    sshd: sshd_server.Sshd, tmp_path: Path, io: IoLoop
) -> None:
    store = EventStore.open(tmp_path / "events.db")
    out = watched_job(store, tmp_path, "cluster", ALERT_EVERY_SECOND)
    host = HostConfig(
        "cluster", hostname="127.0.0.1", port=sshd.port, username=sshd.user,
        known_hosts=str(sshd.known_hosts), identity_file=str(sshd.client_key),
    )  # fmt: skip
    transport = GatedStat(host)
    tailer = Tailer(store, Config(hosts={"cluster": host}), {"cluster": transport}, io)
    tailer.start()
    handed: list[ActionBatch] = []

    def hand_off(batch: ActionBatch) -> None:
        handed.append(batch)
        transport.gate.set()  # the match is decided and durable: the stat may answer

    tailer.hand_off = hand_off
    try:
        for i in range(3):  # written at every poll: read ahead of the stat from now on
            append(out, f"step {i}\n")
            tailer.reader.read("cluster", transport, list(tailer.book.watchers.values()),
                               set(), tailer.clock())  # fmt: skip
        append(out, "ALERT 7\n")
        transport.hold = True
        tailer.reader.read("cluster", transport, list(tailer.book.watchers.values()), set(),
                           tailer.clock())  # fmt: skip
        # The line was matched, recorded and handed on while the stat was still out.
        assert transport.released_by_gate is True
        assert [r.params for b in handed for r in b.requests] == [{"message": "7"}]
        assert tailer.reader.offset(next(iter(tailer.book.watchers)), str(out)) == 29
    finally:
        io.call(transport.close(), 30)
        store.close()


@pytest.mark.ssh
def test_between_two_polls_a_file_being_written_is_read_with_no_command(
    sshd: sshd_server.Sshd, tmp_path: Path, io: IoLoop
) -> None:
    store = EventStore.open(tmp_path / "events.db")
    out = watched_job(store, tmp_path, "cluster", ALERT_EVERY_SECOND)  # interval_seconds: 1
    host = HostConfig(
        "cluster", hostname="127.0.0.1", port=sshd.port, username=sshd.user,
        known_hosts=str(sshd.known_hosts), identity_file=str(sshd.client_key),
    )  # fmt: skip
    transport = SshTransport(host)
    now = [1000.0]
    tailer = Tailer(
        store, Config(hosts={"cluster": host}), {"cluster": transport}, io, clock=lambda: now[0]
    )
    tailer.start()

    def poll_outputs() -> None:  # the output half of a poll (no squeue asked)
        tailer.poll_outputs(tailer.polls())

    try:
        for i in range(3):  # written at every poll: being written
            append(out, f"step {i}\n")
            poll_outputs()
            now[0] += 1.0
        now[0] -= 1.0  # just after the last poll
        append(out, "ALERT 7\n")
        before = transport.counters.copy()
        now[0] += 0.4
        assert tailer.read_between() == []  # not halfway yet
        now[0] += 0.2
        batches = tailer.read_between()
        assert [r.params for b in batches for r in b.requests] == [{"message": "7"}]
        cost = transport.counters - before
        assert cost == {"reads": 2}  # its next bytes and head, through the kept handle
        assert tailer.read_between() == []  # once between two polls
        watcher_id = next(iter(tailer.book.watchers))
        assert tailer.reader.offset(watcher_id, str(out)) == 29
        now[0] += 0.4  # the next poll: the watcher is due at it, as if nothing was read
        assert [p.host for p in tailer.polls()] == ["cluster"]
        assert tailer.reader.next_due[watcher_id] <= now[0]
    finally:
        io.call(transport.close(), 30)
        store.close()
