"""The plain sqlite3 connections the SQLite backend reads and writes its own tables with."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from pivot.events.backend_sqlite import SQLiteConnections


def _pool(tmp_path: Path) -> SQLiteConnections:
    with sqlite3.connect(tmp_path / "x.db") as conn:  # as event stores are
        conn.execute("PRAGMA journal_mode=WAL")
    pool = SQLiteConnections(str(tmp_path / "x.db"), lock_timeout=5)
    with pool.transaction() as cur:
        cur.execute("CREATE TABLE t (v INTEGER)")
    return pool


def test_a_failing_body_is_rolled_back_and_the_connection_reused(tmp_path: Path) -> None:
    pool = _pool(tmp_path)
    with pytest.raises(ValueError, match="boom"), pool.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (1)")
        first = cur.connection
        raise ValueError("boom")
    with pool.transaction() as cur:
        cur.execute("SELECT COUNT(*) FROM t")
        assert cur.fetchone()[0] == 0
        assert cur.connection is first  # rolled back cleanly, so handed out again
        cur.execute("INSERT INTO t VALUES (2)")
    with pool.transaction() as cur:
        cur.execute("SELECT v FROM t")
        assert [tuple(r) for r in cur.fetchall()] == [(2,)]
    pool.close()


def test_threads_get_their_own_connection_and_see_committed_rows(tmp_path: Path) -> None:
    pool = _pool(tmp_path)
    inside = threading.Event()
    done = threading.Event()
    seen: list[int] = []

    def reader() -> None:
        inside.wait(10)
        with pool.transaction(write=False) as cur:  # while the main thread writes
            cur.execute("SELECT COUNT(*) FROM t")
            seen.append(cur.fetchone()[0])
        done.set()

    t = threading.Thread(target=reader)
    t.start()
    with pool.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (1)")
        inside.set()
        assert done.wait(10)  # a reader is not blocked by our open write transaction
    t.join(10)
    assert seen == [0]  # uncommitted rows are not visible to the other connection
    with pool.transaction() as cur:
        cur.execute("SELECT COUNT(*) FROM t")
        assert cur.fetchone()[0] == 1
    pool.close()


def test_a_second_writer_waits_for_the_first_instead_of_failing(tmp_path: Path) -> None:
    # Read-then-write in one transaction (what CREATE TABLE IF NOT EXISTS and
    # conditional saves do) while another connection commits a write: a
    # write transaction takes the lock at BEGIN, so it waits and succeeds.
    pool = _pool(tmp_path)
    holding = threading.Event()
    errors: list[BaseException] = []

    def second() -> None:
        holding.wait(10)
        try:
            with pool.transaction() as cur:
                cur.execute("SELECT COUNT(*) FROM t")
                n = cur.fetchone()[0]
                cur.execute("INSERT INTO t VALUES (?)", (n + 1,))
        except BaseException as exc:  # reported to the test thread
            errors.append(exc)

    t = threading.Thread(target=second)
    t.start()
    with pool.transaction() as cur:
        cur.execute("INSERT INTO t VALUES (1)")
        holding.set()
        t.join(0.3)  # the second writer is now waiting for our lock
        assert t.is_alive()
    t.join(10)
    assert not errors
    with pool.transaction(write=False) as cur:
        cur.execute("SELECT v FROM t ORDER BY v")
        assert [r[0] for r in cur.fetchall()] == [1, 2]  # it saw our row before writing
    pool.close()


def test_closed_pool_refuses_and_closes_connections_given_back(tmp_path: Path) -> None:
    pool = _pool(tmp_path)
    with pool.transaction() as cur:
        pool.close()  # a connection in use is closed when it comes back
        conn = cur.connection
    with pytest.raises(sqlite3.ProgrammingError):
        conn.execute("SELECT 1")
    with pytest.raises(sqlite3.ProgrammingError, match="closed"), pool.transaction():
        pass


def test_a_closed_store_refuses_appends_even_before_its_first_write(tmp_path: Path) -> None:
    from pivot.events import EventStore
    from pivot.events.watchers import WatcherRemoved

    db = tmp_path / "events.db"
    EventStore.open(db).close()  # creates it
    store = EventStore.open(db)  # exists: the recorder is built on the first write
    store.close()
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.append([WatcherRemoved(watcher_id="w")])
    with pytest.raises(sqlite3.ProgrammingError, match="closed"):
        store.last_seq()


def test_in_memory_stores_are_refused_with_a_clear_error() -> None:
    from pivot.events import EventStore
    from pivot.events.backends import StoreLocationError

    for location in (":memory:", "file:x?mode=memory"):
        with pytest.raises(StoreLocationError, match="give a file path"):
            EventStore.open(location)
