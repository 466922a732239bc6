"""The SQLite backend: a file in WAL mode (the default, ``.pivot/events.db``).

Our own SQL runs on plain ``sqlite3`` connections (:class:`SQLiteConnections`),
and eventsourcing's recorder, with the import of eventsourcing it needs
(~45 ms), is built on the first write: a command that only reads an existing
store, such as ``pivot stats``, never pays for it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot.events.backends import (
    LOG,
    Backend,
    Cursor,
    StoreLocationError,
    StoreUnavailableError,
    is_persistence_error,
)
from pivot.storage import describe, sqlite_file_problem, storage_error

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, StoredEvent
    from eventsourcing.sqlite import SQLiteApplicationRecorder

__all__ = ["SQLiteBackend", "SQLiteConnections", "open_sqlite"]


def _fast_sqlite_recorder(datastore: Any) -> SQLiteApplicationRecorder:
    """eventsourcing's SQLite recorder, inserting a batch with one executemany.

    The stock recorder runs one ``execute`` per row to read each row's
    ``lastrowid``. Inside the write transaction we hold SQLite's only write
    lock, and rowids are assigned as max(rowid)+1, so the batch's ids are the
    consecutive run ending at ``last_insert_rowid()``. (Defined in a function
    so that eventsourcing is imported only when a recorder is needed.)
    """
    from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

    class FastSQLiteRecorder(SQLiteApplicationRecorder):
        def _insert_events(
            self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any
        ) -> Sequence[int] | None:
            if not stored_events:
                return []
            params = [
                (_id_text(s.originator_id), s.originator_version, s.topic, s.state)
                for s in stored_events
            ]
            c.executemany(self.insert_events_statement, params)
            c.execute("SELECT last_insert_rowid()")
            last = int(c.fetchone()[0])
            return list(range(last - len(params) + 1, last + 1))

    return FastSQLiteRecorder(datastore=datastore)


class SQLiteConnections:
    """Plain sqlite3 connections to one file, shared by threads one transaction at a time.

    Like eventsourcing's own pool: autocommit mode with explicit ``BEGIN``, a
    lock timeout for waiting on other writers, ``sqlite3.Row`` rows. The log
    file is in WAL mode already (eventsourcing sets it when it creates the
    table, and the mode is stored in the file).
    """

    def __init__(self, path: str, lock_timeout: float) -> None:
        self._path = path
        self._lock_timeout = lock_timeout
        self._idle: list[sqlite3.Connection] = []
        self._mutex = threading.Lock()
        self._closed = False

    def _take(self) -> sqlite3.Connection:
        with self._mutex:
            if self._closed:
                raise sqlite3.ProgrammingError("the event store is closed")
            if self._idle:
                return self._idle.pop()
        conn = sqlite3.connect(
            self._path, timeout=self._lock_timeout, isolation_level=None, check_same_thread=False
        )
        conn.row_factory = sqlite3.Row
        return conn

    def _give(self, conn: sqlite3.Connection, *, reusable: bool) -> None:
        with self._mutex:
            if reusable and not self._closed:
                self._idle.append(conn)
                return
        conn.close()

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[sqlite3.Cursor]:
        """:meth:`_transaction`, with a damaged, full or unwritable file a :class:`StorageError`."""
        try:
            with self._transaction(write=write) as cursor:
                yield cursor
        except sqlite3.Error as exc:
            error = storage_error(exc, self._path, LOG)
            if error is None:
                raise
            raise error from exc

    @contextlib.contextmanager
    def _transaction(self, *, write: bool) -> Iterator[sqlite3.Cursor]:
        """A transaction on one connection: committed on success, rolled back on error.

        A write transaction takes SQLite's write lock at ``BEGIN IMMEDIATE``,
        waiting up to the lock timeout for other writers. A deferred one that
        read first and wrote later (``CREATE TABLE IF NOT EXISTS``, read then
        insert) fails at once with "database is locked" when another process
        wrote in between: waiting cannot fix a stale snapshot.
        """
        conn = self._take()
        reusable = False
        try:
            cursor = conn.cursor()
            cursor.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield cursor
                conn.commit()
            except BaseException:
                conn.rollback()
                raise
            finally:
                # A connection whose COMMIT and ROLLBACK both failed is still
                # inside a transaction: close it rather than hand it out again.
                reusable = not conn.in_transaction
        finally:
            self._give(conn, reusable=reusable)

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def close(self) -> None:
        """Close every connection (ones in use close when given back)."""
        with self._mutex:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class SQLiteBackend(Backend):
    """A SQLite file in WAL mode (the default, ``.pivot/events.db``)."""

    kind = "sqlite"

    def __init__(self, path: Path, lock_timeout: int = 30) -> None:
        super().__init__()
        self.path = path
        self._lock_timeout = lock_timeout
        self.connections = SQLiteConnections(str(path), lock_timeout)
        self._factory: InfrastructureFactory[Any] | None = None
        self._recorder: ApplicationRecorder | None = None
        self._recorder_lock = threading.Lock()

    @property
    def recorder(self) -> ApplicationRecorder:
        with self._recorder_lock:
            if self.connections.closed:
                # Not a fresh pool that nothing would close (e.g. an actor
                # appending during shutdown): the same error as a read.
                raise sqlite3.ProgrammingError("the event store is closed")
            if self._recorder is None:
                from eventsourcing.persistence import InfrastructureFactory

                factory = InfrastructureFactory.construct(
                    env={
                        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                        "SQLITE_DBNAME": str(self.path),
                        "SQLITE_LOCK_TIMEOUT": str(self._lock_timeout),
                    }
                )
                try:
                    recorder = _fast_sqlite_recorder(getattr(factory, "datastore"))  # noqa: B009
                except BaseException:
                    factory.close()
                    raise
                self._factory, self._recorder = factory, recorder
            return self._recorder

    def ensure_log_table(self) -> None:
        """Create the log's tables (through the recorder) unless the file has them.

        Processes opening a new file together may all find it empty; the
        recorder's ``CREATE TABLE IF NOT EXISTS`` runs in a deferred
        transaction, so the ones whose snapshot predates the winner's commit
        fail with "database is locked". By then the table exists: look again.
        """
        if self._has_log_table():
            return
        try:
            getattr(self.recorder, "create_table")()  # noqa: B009 - not in the base class
        except Exception:
            if not self._has_log_table():
                raise

    def _has_log_table(self) -> bool:
        with self.connections.transaction(write=False) as cur:
            cur.execute(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'stored_events'"
            )
            return cur.fetchone() is not None

    def transaction(self, *, write: bool = True) -> contextlib.AbstractContextManager[Cursor]:
        return self.connections.transaction(write=write)

    def _fetch_states(self, sql: str, params: list[Any]) -> list[tuple[int, str, bytes]]:
        with self.connections.transaction(write=False) as cur:
            cur.row_factory = None  # plain tuples: no sqlite3.Row per event
            cur.execute(sql, params)
            return cur.fetchall()

    def max_seq(self) -> int:
        with self.connections.transaction(write=False) as cur:
            cur.execute("SELECT MAX(rowid) FROM stored_events")
            return int(cur.fetchone()[0] or 0)

    def close(self) -> None:
        self.connections.close()
        with self._recorder_lock:
            if self._factory is not None:
                self._factory.close()
                self._factory = None


def open_sqlite(location: str) -> SQLiteBackend:
    """:func:`pivot.events.backends.open_backend` for a file path."""
    if location == ":memory:" or location.startswith("file:"):
        # Reads and writes use separate connections, which would each get a
        # private in-memory database; a URI could select that mode too.
        raise StoreLocationError(
            f"event store {location!r}: give a file path (an in-memory or URI "
            "SQLite database is not supported)"
        )
    path = Path(location)
    if path.is_dir():
        raise StoreUnavailableError(f"event store {location}: is a directory, not a file")
    problem = sqlite_file_problem(path)
    if problem:
        raise StoreUnavailableError(describe("damaged", problem, path, LOG))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreUnavailableError(
            f"event store {location}: cannot create {path.parent}: {exc.strerror}"
        ) from None
    backend = SQLiteBackend(path)
    try:
        backend.ensure_log_table()
    except Exception as exc:
        backend.close()
        error = storage_error(exc, path, LOG)
        if error is not None:
            raise StoreUnavailableError(str(error)) from None
        if isinstance(exc, sqlite3.DatabaseError) or is_persistence_error(exc):
            raise StoreUnavailableError(f"event store {location} cannot be opened: {exc}") from None
        raise
    except BaseException:
        backend.close()
        raise
    return backend


def _id_text(originator_id: uuid.UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, uuid.UUID) else originator_id
