"""Opening the event store for a command, and turning store errors into messages.

Every command that reads the log takes ``--store``; without it the location
comes from ``PIVOT_EVENT_STORE``, then ``event_store`` in the project's
``pivot.toml``, then ``.pivot/events.db`` at the project root (see
:mod:`pivot.events.location`). A user mistake or an unusable store is one
line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

if TYPE_CHECKING:
    from pivot.events.store import EventStore

__all__ = ["StoreOption", "fail", "open_store", "store_errors"]

StoreOption = Annotated[
    str | None,
    typer.Option(
        "--store",
        metavar="LOCATION",
        help="Event store: a SQLite path or postgresql://user:pass@host:port/db. "
        "Default: $PIVOT_EVENT_STORE, else event_store in pivot.toml, else "
        ".pivot/events.db at the project root.",
        show_default=False,
    ),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    from pivot.terminal import echo

    echo(f"error: {message}", err=True)  # may quote names, paths, stored text
    raise typer.Exit(code)


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Report the store's user-facing errors as one line each (exit 1).

    The one place where pivot's own files failing (a damaged log or
    ``state.db``, a full disk, an unwritable ``.pivot/``: a
    :class:`~pivot.storage.StorageError`, or an OS error on a file inside
    ``.pivot/``) becomes ``error: ...`` on stderr; every command that opens
    the project's state runs inside it.
    """
    import sqlite3

    from pivot.events.backends import StoreLocationError, is_persistence_error
    from pivot.events.base import EventDecodeError
    from pivot.events.location import ConfigError
    from pivot.events.timespec import TimeSpecError
    from pivot.storage import StorageError

    try:
        yield
    except (
        StoreLocationError,
        StorageError,
        ConfigError,
        TimeSpecError,
        EventDecodeError,
    ) as exc:
        fail(str(exc))
    except OSError as exc:
        error = _own_file_error(exc)
        if error is None:
            raise
        fail(str(error))
    except Exception as exc:
        if isinstance(exc, sqlite3.DatabaseError) or is_persistence_error(exc):
            fail(f"the event store failed: {exc}")
        raise


# Names of pivot's own files under .pivot/, as an error message calls them.
_OWN_FILES = {
    "events.db": "the event log",
    "state.db": "the stage records",
    "run.lock": "the run lock",
    "logs": "the stage logs",
}


def _own_file_error(exc: OSError) -> Exception | None:
    """A StorageError for an OS error on a file inside a ``.pivot/`` directory, else None."""
    from pathlib import Path

    from pivot.storage import storage_error

    if not exc.filename:
        return None
    path = Path(str(exc.filename))
    if ".pivot" not in path.parts[:-1]:
        return None
    return storage_error(exc, path, _OWN_FILES.get(path.name, "pivot's file"))


def open_store(location: str | None, *, create: bool = False) -> EventStore:
    """Open the store at ``location`` or the project's default (inside :func:`store_errors`).

    Unless ``create``, a SQLite file that does not exist is an error rather
    than a new empty store (a mistyped ``--store`` should not look empty).
    """
    from pathlib import Path

    from pivot.events.location import resolve_store_location
    from pivot.events.store import EventStore

    where = resolve_store_location(location)
    if not create and "://" not in where:
        if not Path(where).exists():
            fail(
                f"no event store at {where} (nothing recorded yet?); "
                "give --store or set PIVOT_EVENT_STORE"
            )
        if Path(where).stat().st_size == 0:
            # pivot creates its tables with the file: an empty one was emptied,
            # and opening it would show an empty history as if all were well.
            fail(
                f"the event log {where} is empty (0 bytes): it was truncated, or is not "
                "a pivot store; move it aside (mv it elsewhere) and pivot starts a new one"
            )
    return EventStore.open(where)
