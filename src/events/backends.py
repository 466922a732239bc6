"""Where the log lives: the :class:`Backend` interface and :func:`open_backend`.

A :class:`Backend` bundles eventsourcing's application recorder (which
writes the log and creates its schema) with a way to run our own small SQL
in a transaction on the same database: scans of the log, and projections,
which keep their state and position there so both commit together.
``param`` is the placeholder of the driver (``?`` for sqlite3, ``%s`` for
psycopg); :meth:`Backend.sql` rewrites ``?`` so one statement text serves both.

One module per database: :mod:`pivot.events.backend_sqlite` (the default,
a file in WAL mode) and :mod:`pivot.events.backend_postgres`; this one holds
what they share and what callers use, and picks one by the location.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from pivot.storage import StorageError

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder

__all__ = [
    "LOG",
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


class Backend:
    """A recorder plus transactions for our own SQL on the same database."""

    kind = "base"
    param = "?"
    seq_column = "rowid"  # the column of stored_events that holds the sequence number

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

    def ensure_table(self, name: str, create: str) -> None:
        """Run ``create`` (a ``CREATE TABLE IF NOT EXISTS name ...``) once per backend:
        our own tables next to the log (projections, the watchers' lease)."""
        if name in self.tables_ensured:
            return
        with self.transaction() as cur:
            self.lock_schema(cur)  # concurrent first opens must not race on the catalogue
            cur.execute(create)
        self.tables_ensured.add(name)

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
        sql, params = _select_states_sql(
            self.seq_column, after, until, topics, limit, p=self.param, descending=descending
        )
        return self._fetch_states(sql, params)

    def _fetch_states(self, sql: str, params: list[Any]) -> list[tuple[int, str, bytes]]:
        """Run :meth:`select_states`' query in a read transaction; rows as plain tuples."""
        raise NotImplementedError

    def max_seq(self) -> int:
        """The sequence number of the newest event (0 when the log is empty)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections."""
        raise NotImplementedError


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
    """``SELECT seq, topic, state`` of :meth:`Backend.select_states`, and its parameters.

    ``id_column`` names the sequence column, ``p`` the driver's placeholder.
    """
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
    # Each database's module is imported only when it is used.
    if location.startswith(("postgresql://", "postgres://")):
        from pivot.events.backend_postgres import open_postgres

        return open_postgres(location)
    from pivot.events.backend_sqlite import open_sqlite

    return open_sqlite(location)


def is_persistence_error(exc: BaseException) -> bool:
    """Whether ``exc`` is eventsourcing's ``PersistenceError``, without importing it.

    eventsourcing is imported only by code that writes or exports (start-up
    time); if it was never imported, nothing can have raised its errors.
    """
    persistence = sys.modules.get("eventsourcing.persistence")
    return persistence is not None and isinstance(exc, persistence.PersistenceError)
