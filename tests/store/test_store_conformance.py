"""Store conformance: one abstract test class, run against SQLite and PostgreSQL.

Like eventsourcing's own recorder tests, every behaviour other components
rely on is stated once here and checked against each backend: ordering,
filters, atomic batches, concurrent threads, concurrent processes, and
durability of acknowledged appends across ``kill -9``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from pivot.events import EventStore
from pivot.events.pipeline import StageFailed, StageStarted, StageSucceeded
from pivot.events.store import RawRecord
from pivot.events.watchers import WatcherCreated

from testkit.pgserver import fresh_database, postgres_url  # noqa: F401 - pytest fixture

PRODUCER = Path(__file__).with_name("producer.py")
OPENER = Path(__file__).with_name("opener.py")
ROOT = Path(__file__).resolve().parents[2]


def _run_producer(location: str, name: str, count: int, batch: int = 1) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(PRODUCER), location, name, str(count), str(batch)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


class StoreConformance:
    """Behaviour every backend must have. Subclasses provide ``location``."""

    location: str

    def open(self) -> EventStore:
        return EventStore.open(self.location)

    def check_integrity(self, store: EventStore) -> None:
        """Backend-specific proof that the files are consistent (after a crash)."""

    def fresh_location(self, n: int) -> str:
        """Another store location nobody has opened yet."""
        raise NotImplementedError

    def test_empty_store(self) -> None:
        with self.open() as store:
            assert store.last_seq() == 0
            assert list(store.read()) == []

    def test_append_returns_increasing_seqs_and_reads_back(self) -> None:
        with self.open() as store:
            events = [StageStarted(stage="a"), StageSucceeded(stage="a", duration=1.5)]
            first = store.append(events)
            failed = StageFailed(stage="b", error="boom")
            second = store.append([failed])
            assert first[0] < first[1] < second[0]
            assert store.last_seq() == second[0]
            got = list(store.read())
            assert [r.seq for r in got] == [*first, *second]
            assert [r.event for r in got] == [*events, failed]

    def test_read_filters(self) -> None:
        with self.open() as store:
            seqs = store.append(
                [StageStarted(stage=str(i)) if i % 2 else StageFailed(stage=str(i), error="x")
                 for i in range(10)]
            )  # fmt: skip
            assert [r.seq for r in store.read(after=seqs[4])] == seqs[5:]
            assert [r.seq for r in store.read(limit=3)] == seqs[:3]
            assert [r.seq for r in store.read(until=seqs[2])] == seqs[:3]
            started = [r.seq for r in store.read(types=["stage.started"])]
            assert started == seqs[1::2]
            assert [r.seq for r in store.read(after=seqs[2], limit=2, types=["stage.failed"])] == [
                seqs[4],
                seqs[6],
            ]

    def test_read_backwards(self) -> None:
        with self.open() as store:
            seqs = store.append(
                [StageStarted(stage=str(i)) if i % 3 else StageFailed(stage=str(i), error="x")
                 for i in range(1200)]
            )  # fmt: skip
            assert [r.seq for r in store.read_backwards()] == seqs[::-1]
            assert [r.seq for r in store.read_backwards(seqs[10], ["stage.failed"])] == [
                seqs[9], seqs[6], seqs[3], seqs[0]
            ]  # fmt: skip
            assert [r.seq for r in store.read_backwards(seqs[10], after=seqs[7])] == [
                seqs[10], seqs[9], seqs[8]
            ]  # fmt: skip
            failed = [r.seq for r in store.read_backwards(types=["stage.failed"], limit=2)]
            assert failed == [seqs[1197], seqs[1194]]
            assert len(list(store.read_backwards(limit=700))) == 700  # across two pages
            assert [r.seq for r in store.read_backwards(seqs[1], limit=5)] == [seqs[1], seqs[0]]
            assert list(store.read_backwards(limit=0)) == []

    def test_read_pages_through_a_long_log(self) -> None:
        with self.open() as store:
            store.append([StageStarted(stage=str(i)) for i in range(4500)])
            assert [r.event.stage for r in store.read()] == [str(i) for i in range(4500)]  # type: ignore[attr-defined]

    def test_seq_at_finds_where_a_time_range_starts(self) -> None:
        with self.open() as store:
            assert store.seq_at(5.0) == 0
            # Times follow the log (10 s apart), except seq 11, appended 50 s late.
            times = [10.0 * (i + 1) for i in range(30)]
            times[10] -= 50.0
            store.append([StageStarted(stage=str(i), at=t) for i, t in enumerate(times)])
            assert store.seq_at(155.0, slack=0) == 15  # seqs 1..15 are at 10..150
            assert store.seq_at(1000.0, slack=0) == 30
            for moment in (0.0, 60.0, 65.0, 105.0, 110.0, 155.0, 300.0, 301.0):
                start = store.seq_at(moment, slack=50.0)
                # Nothing at or after the moment lies at or before the start.
                assert all(t < moment for t in times[:start]), (moment, start)
                assert start >= min(30, int(moment // 10)) - 6  # and it skips most

    def test_dict_and_tuple_fields_round_trip(self) -> None:
        with self.open() as store:
            ev = WatcherCreated(
                watcher_id="w", name="n", job_id="1", definition={"actions": [{"type": "x"}]}
            )
            store.append([ev])
            [rec] = store.read()
            assert rec.event == ev

    def test_failed_batch_stores_nothing(self) -> None:
        with self.open() as store:
            [seq] = store.append([StageStarted(stage="a")])
            [raw] = store.read_raw()
            clash = RawRecord(0, raw.stream, raw.position, raw.type, raw.version, raw.data)
            fresh = RawRecord(0, "0" * 31 + "1", 1, raw.type, raw.version, raw.data)
            with pytest.raises(Exception, match=r"(?i)unique|duplicate|integrity"):
                store.append_raw([fresh, clash])
            assert [r.seq for r in store.read()] == [seq]

    def test_many_threads_append_concurrently(self) -> None:
        with self.open() as store:
            acked: list[list[int]] = []
            lock = threading.Lock()

            def produce(name: str) -> None:
                for i in range(100):
                    seqs = store.append(
                        [StageStarted(stage=f"{name}-{i}"), StageStarted(stage=name)]
                    )
                    with lock:
                        acked.append(seqs)

            threads = [threading.Thread(target=produce, args=(f"t{n}",)) for n in range(6)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            all_seqs = sorted(s for seqs in acked for s in seqs)
            assert len(all_seqs) == len(set(all_seqs)) == 1200
            # Each append's events are adjacent, in order.
            assert all(b == a + 1 for a, b in acked)
            read = list(store.read())
            assert [r.seq for r in read] == all_seqs
            # Per producer, log order is append order.
            for n in range(6):
                mine = [r.event.stage for r in read if r.event.stage.startswith(f"t{n}-")]  # type: ignore[attr-defined]
                assert mine == [f"t{n}-{i}" for i in range(100)]
            assert store.transactions <= 600

    def test_two_processes_share_one_store(self) -> None:
        with self.open() as store:
            store.last_seq()  # create the tables before the writers race
        procs = [_run_producer(self.location, name, 300, 3) for name in ("p1", "p2")]
        outputs = [p.communicate(timeout=120) for p in procs]
        for p, (out, err) in zip(procs, outputs, strict=True):
            assert p.returncode == 0, err
            assert out.splitlines()[-1] == "done"
        acked = sorted(
            int(s) for out, _ in outputs for line in out.splitlines()[:-1] for s in line.split()[1:]
        )
        with self.open() as store:
            read = list(store.read())
        assert [r.seq for r in read] == acked
        assert len(acked) == 600
        for name in ("p1", "p2"):
            stages = [r.event.stage for r in read if r.event.stage.startswith(name)]  # type: ignore[attr-defined]
            assert stages == [f"{name}-{i}" for i in range(300)]

    def test_concurrent_first_open_of_a_fresh_store(self, tmp_path: Path) -> None:
        # `pivot watch` and `pivot watchers run` started together both create
        # the schema; neither may fail (PostgreSQL: "tuple concurrently updated").
        for n in range(3):
            location = self.fresh_location(n)
            go = tmp_path / f"go-{n}"
            procs = [
                subprocess.Popen(
                    [sys.executable, str(OPENER), location, str(go)],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    cwd=ROOT,
                )
                for _ in range(4)
            ]
            go.touch()
            outputs = [p.communicate(timeout=120) for p in procs]
            for p, (out, err) in zip(procs, outputs, strict=True):
                assert p.returncode == 0, err
                assert out.startswith("ok ")
            with EventStore.open(location) as store:
                assert store.last_seq() == 4

    def test_acknowledged_appends_survive_kill_9(self) -> None:
        with self.open() as store:
            store.last_seq()
        proc = _run_producer(self.location, "k", -1, 5)
        assert proc.stdout is not None
        acked: list[int] = []
        deadline = time.monotonic() + 120
        while len(acked) < 2000 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked.extend(int(s) for s in line.split()[1:])
        os.kill(proc.pid, signal.SIGKILL)
        # Acknowledgements printed after we stopped reading are acknowledged too.
        rest, _ = proc.communicate(timeout=60)
        for line in rest.splitlines():
            if line.startswith("ack"):
                acked.extend(int(s) for s in line.split()[1:])
        assert proc.returncode == -signal.SIGKILL
        assert len(acked) >= 2000
        with self.open() as store:
            read = list(store.read())  # every stored event decodes: nothing half-written
            seqs = {r.seq for r in read}
            assert set(acked) <= seqs
            # Whole appends only: events come in complete batches of 5.
            assert len(read) % 5 == 0
            self.check_integrity(store)
            # And the store accepts new appends after the crash.
            [after] = store.append([StageStarted(stage="after")])
            assert after > max(seqs)


class TestSQLiteStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _location(self, tmp_path: Path) -> None:
        self.location = str(tmp_path / ".pivot" / "events.db")
        self.tmp_path = tmp_path

    def fresh_location(self, n: int) -> str:
        return str(self.tmp_path / f"fresh-{n}" / "events.db")

    def check_integrity(self, store: EventStore) -> None:
        with store.backend.transaction() as cur:
            cur.execute("PRAGMA integrity_check")
            assert [tuple(r) for r in cur.fetchall()] == [("ok",)]

    def test_file_is_in_wal_mode_with_full_sync(self) -> None:
        import sqlite3

        with self.open() as store:
            store.append([StageStarted(stage="a")])
            with store.backend.transaction() as cur:
                cur.execute("PRAGMA synchronous")
                assert cur.fetchone()[0] == 2  # FULL
        conn = sqlite3.connect(self.location)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        conn.close()


@pytest.mark.postgres
class TestPostgresStore(StoreConformance):
    @pytest.fixture(autouse=True)
    def _location(self, postgres_url: str) -> None:  # noqa: F811 - fixture
        self.location = postgres_url

    def fresh_location(self, n: int) -> str:
        return fresh_database()
