"""Where the log lives: eventsourcing's SQLite or PostgreSQL recorder.

A :class:`Backend` bundles eventsourcing's application recorder (which
writes the log and creates its schema) with a way to run our own small SQL
in a transaction on the same database: scans of the log, and projections,
which keep their state and position there so both commit together.
``param`` is the placeholder of the driver (``?`` for sqlite3, ``%s`` for
psycopg); :meth:`Backend.sql` rewrites ``?`` so one statement text serves both.

On SQLite our own SQL runs on plain ``sqlite3`` connections
(:class:`SQLiteConnections`), and the recorder, with the import of
eventsourcing it needs (~45 ms), is built on the first write: a command that
only reads an existing store, such as ``pivot stats``, never pays for it.
"""

from __future__ import annotations

import contextlib
import sqlite3
import sys
import threading
import urllib.parse
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from pivot.storage import StorageError, describe, sqlite_file_problem, storage_error

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, StoredEvent
    from eventsourcing.sqlite import SQLiteApplicationRecorder

__all__ = [
    "Backend",
    "Cursor",
    "StoreLocationError",
    "StoreUnavailableError",
    "is_persistence_error",
    "open_backend",
]


class StoreLocationError(ValueError):
    """An event store location that cannot be used (bad URL, ...)."""


class StoreUnavailableError(StorageError):
    """The store cannot be opened: unreachable server, damaged or unwritable file."""


# What a storage error calls the file, for the user.
LOG = "the event log"


class Cursor(Protocol):
    """The part of a DB-API cursor projections use."""

    def execute(self, query: Any, params: Any = ..., /) -> Any: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> Any: ...


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


class Backend:
    """A recorder plus transactions for our own SQL on the same database."""

    kind = "base"
    param = "?"

    def __init__(self) -> None:
        self.tables_ensured: set[str] = set()  # our own tables known to exist

    @property
    def recorder(self) -> ApplicationRecorder:
        """eventsourcing's recorder of this database (appends, exports)."""
        raise NotImplementedError

    def sql(self, statement: str) -> str:
        """``statement`` with ``?`` placeholders in this driver's style."""
        return statement if self.param == "?" else statement.replace("?", self.param)

    def transaction(self, *, write: bool = True) -> contextlib.AbstractContextManager[Cursor]:
        """A transaction committed on success, rolled back on error.

        ``write=False`` promises only reads (on SQLite it then does not wait
        for, or block, other writers).
        """
        raise NotImplementedError

    def lock_schema(self, cursor: Cursor) -> None:
        """Serialise schema changes (``CREATE ... IF NOT EXISTS``) with other processes
        until ``cursor``'s transaction ends. SQLite needs nothing: it has one writer."""

    def select_states(
        self,
        after: int,
        until: int | None,
        topics: Sequence[str],
        limit: int,
        *,
        descending: bool = False,
    ) -> list[tuple[int, str, bytes]]:
        """``(seq, topic, state)`` of stored events ``after < seq <= until``, in order
        (newest first if ``descending``; then ``limit`` takes the newest).

        Leaner than the recorder's ``select_notifications`` (no originator
        ids, no objects per row): the path every scan and rebuild takes.
        """
        raise NotImplementedError

    def max_seq(self) -> int:
        """The sequence number of the newest event (0 when the log is empty)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""
        raise NotImplementedError


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

    def select_states(
        self,
        after: int,
        until: int | None,
        topics: Sequence[str],
        limit: int,
        *,
        descending: bool = False,
    ) -> list[tuple[int, str, bytes]]:
        sql, params = _select_states_sql(
            "rowid", after, until, topics, limit, p="?", descending=descending
        )
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


class PostgresBackend(Backend):
    """A PostgreSQL database (``postgresql://user:pass@host:port/db``)."""

    kind = "postgresql"
    param = "%s"

    def __init__(self, factory: InfrastructureFactory[Any], recorder: ApplicationRecorder) -> None:
        super().__init__()
        self.factory = factory
        self._recorder = recorder

    @property
    def recorder(self) -> ApplicationRecorder:
        return self._recorder

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[Cursor]:
        del write  # PostgreSQL's row locks need no up-front promise
        datastore: Any = getattr(self.factory, "datastore")  # noqa: B009 - untyped in the base
        with datastore.transaction(commit=True) as cursor:
            yield cursor

    def max_seq(self) -> int:
        return self._recorder.max_notification_id() or 0

    def close(self) -> None:
        self.factory.close()

    def lock_schema(self, cursor: Cursor) -> None:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK_KEY,))

    def select_states(
        self,
        after: int,
        until: int | None,
        topics: Sequence[str],
        limit: int,
        *,
        descending: bool = False,
    ) -> list[tuple[int, str, bytes]]:
        sql, params = _select_states_sql(
            "notification_id", after, until, topics, limit, p="%s", descending=descending
        )
        datastore: Any = getattr(self.factory, "datastore")  # noqa: B009 - untyped in the base
        with datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return [(r["notification_id"], r["topic"], bytes(r["state"])) for r in c.fetchall()]


def _select_states_sql(
    id_column: str,
    after: int,
    until: int | None,
    topics: Sequence[str],
    limit: int,
    *,
    p: str,
    descending: bool = False,
) -> tuple[str, list[Any]]:
    # Only our constant column name and placeholders enter the text; values are parameters.
    where = [f"{id_column} > {p}"]
    params: list[Any] = [after]
    if until is not None:
        where.append(f"{id_column} <= {p}")
        params.append(until)
    if topics:
        where.append(f"topic IN ({', '.join([p] * len(topics))})")
        params += list(topics)
    params.append(limit)
    condition = " AND ".join(where)
    sql = f"SELECT {id_column}, topic, state FROM stored_events WHERE {condition} "  # noqa: S608
    order = "DESC" if descending else "ASC"
    return sql + f"ORDER BY {id_column} {order} LIMIT {p}", params


def open_backend(location: str) -> Backend:
    """Open the recorder for a path or a ``postgresql://`` URL, creating tables.

    Raises :class:`StoreLocationError` for a malformed location and
    :class:`StoreUnavailableError` (with a message fit for users) when the
    server cannot be reached or the file is not a usable SQLite database.
    """
    if location.startswith(("postgresql://", "postgres://")):
        return _open_postgres(location)
    return _open_sqlite(location)


def _open_sqlite(location: str) -> Backend:
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


def _open_postgres(url: str) -> Backend:
    shown = _redact(url)
    parts = urllib.parse.urlsplit(url)
    dbname = parts.path.lstrip("/")
    query = urllib.parse.parse_qs(parts.query)
    # A unix-socket directory may be given as ?host=/path (libpq style).
    host = query.get("host", [parts.hostname or ""])[0]
    if not dbname or not host or not parts.username:
        raise StoreLocationError(
            f"event store URL {_redact(url)!r} needs a user, a host and a database name: "
            "postgresql://user:password@host:port/database"
        )
    try:
        port = parts.port or 5432
    except ValueError as exc:
        raise StoreLocationError(f"event store URL {_redact(url)!r}: {exc}") from None
    _probe_postgres(url, shown)
    from eventsourcing.persistence import InfrastructureFactory, PersistenceError

    factory = InfrastructureFactory.construct(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": urllib.parse.unquote(dbname),
            "POSTGRES_HOST": host,
            "POSTGRES_PORT": str(port),
            "POSTGRES_USER": urllib.parse.unquote(parts.username),
            "POSTGRES_PASSWORD": urllib.parse.unquote(parts.password or ""),
            "POSTGRES_POOL_SIZE": "2",
            "POSTGRES_MAX_OVERFLOW": "8",
            "POSTGRES_LOCK_TIMEOUT": "30",
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "30",
            "POSTGRES_CONNECT_TIMEOUT": str(_CONNECT_TIMEOUT),
            "CREATE_TABLE": "no",  # done below, under the schema lock
        }
    )
    try:
        recorder = factory.application_recorder()
        with _postgres_schema_lock(url):
            getattr(recorder, "create_table")()  # noqa: B009 - not in the base class
        return PostgresBackend(factory, recorder)
    except PersistenceError as exc:
        factory.close()
        raise StoreUnavailableError(f"event store {shown}: {exc}") from None
    except BaseException:
        factory.close()
        raise


# pg advisory lock key (any bigint agreed by all pivot processes): "pivot" in ASCII.
SCHEMA_LOCK_KEY = 0x7069766F74


@contextlib.contextmanager
def _postgres_schema_lock(url: str) -> Iterator[None]:
    """Hold a session advisory lock while creating the schema.

    eventsourcing's ``create_table`` runs ``CREATE TABLE/INDEX IF NOT EXISTS``,
    ``CREATE TYPE`` and ``CREATE OR REPLACE FUNCTION`` on every open. Two
    processes doing that at once fail ("tuple concurrently updated", or a
    duplicate key in ``pg_type``): ``IF NOT EXISTS`` is not atomic against a
    concurrent creation. One at a time, the second sees the first's work.
    """
    import psycopg

    with contextlib.closing(
        psycopg.connect(url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT)
    ) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_KEY,))
        try:
            yield
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (SCHEMA_LOCK_KEY,))


_CONNECT_TIMEOUT = 10


def _probe_postgres(url: str, shown: str) -> None:
    # eventsourcing's pool retries a refused connection until its timeout
    # (30 s) and then says only "couldn't get a connection"; one direct
    # attempt fails at once with the server's own reason.
    import psycopg

    try:
        psycopg.connect(url, connect_timeout=_CONNECT_TIMEOUT).close()
    except psycopg.Error as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise StoreUnavailableError(
            f"cannot reach the PostgreSQL event store {shown}: {reason}"
        ) from None


def is_persistence_error(exc: BaseException) -> bool:
    """Whether ``exc`` is eventsourcing's ``PersistenceError``, without importing it.

    eventsourcing is imported only by code that writes or exports (start-up
    time); if it was never imported, nothing can have raised its errors.
    """
    persistence = sys.modules.get("eventsourcing.persistence")
    return persistence is not None and isinstance(exc, persistence.PersistenceError)


def _id_text(originator_id: uuid.UUID | str) -> str:
    return originator_id.hex if isinstance(originator_id, uuid.UUID) else originator_id


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
