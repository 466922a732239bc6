"""The PostgreSQL backend (``postgresql://user:pass@host:port/db``).

Opening probes the server once (a clear reason at once rather than the
pool's 30 s of retries) and creates the schema under an advisory lock, so
processes opening a fresh database together do not collide.
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from pivot.events.backends import (
    Backend,
    Cursor,
    StoreLocationError,
    StoreUnavailableError,
)

if TYPE_CHECKING:
    from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory

__all__ = ["SCHEMA_LOCK_KEY", "PostgresBackend", "open_postgres"]


class PostgresBackend(Backend):
    """A PostgreSQL database (``postgresql://user:pass@host:port/db``)."""

    kind = "postgresql"
    param = "%s"
    seq_column = "notification_id"

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

    def _fetch_states(self, sql: str, params: list[Any]) -> list[tuple[int, str, bytes]]:
        datastore: Any = getattr(self.factory, "datastore")  # noqa: B009 - untyped in the base
        with datastore.transaction(commit=False) as c:
            c.execute(sql, params)
            return [(r["notification_id"], r["topic"], bytes(r["state"])) for r in c.fetchall()]


def open_postgres(url: str) -> PostgresBackend:
    """:func:`pivot.events.backends.open_backend` for a ``postgresql://`` URL."""
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


def _redact(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
