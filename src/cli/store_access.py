"""Opening the event store for a command, and turning store errors into messages.

Every command that reads the log takes ``--store``; without it the location
comes from ``PIVOT_EVENT_STORE``, then ``event_store`` in the project's
``pivot.toml``, then ``.pivot/events.db`` at the project root (see
:mod:`pivot.events.location`). A user mistake or an unusable store is one
line on stderr and exit status 1, never a traceback.
"""

from __future__ import annotations

import contextlib
import sys
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
        help="Event store: a SQLite path or postgresql://user:pass@host:port/db. "
        "Default: $PIVOT_EVENT_STORE, else event_store in pivot.toml, else "
        ".pivot/events.db at the project root.",
        show_default=False,
    ),
]


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    print(f"error: {message}", file=sys.stderr)
    raise typer.Exit(code)


@contextlib.contextmanager
def store_errors() -> Iterator[None]:
    """Report the store's user-facing errors as one line each (exit 1)."""
    import sqlite3

    from pivot.events.backends import (
        StoreLocationError,
        StoreUnavailableError,
        is_persistence_error,
    )
    from pivot.events.base import EventDecodeError
    from pivot.events.location import ConfigError
    from pivot.events.timespec import TimeSpecError

    try:
        yield
    except (
        StoreLocationError,
        StoreUnavailableError,
        ConfigError,
        TimeSpecError,
        EventDecodeError,
    ) as exc:
        fail(str(exc))
    except Exception as exc:
        if isinstance(exc, sqlite3.DatabaseError) or is_persistence_error(exc):
            fail(f"the event store failed: {exc}")
        raise


def open_store(location: str | None, *, create: bool = False) -> EventStore:
    """Open the store at ``location`` or the project's default (inside :func:`store_errors`).

    Unless ``create``, a SQLite file that does not exist is an error rather
    than a new empty store (a mistyped ``--store`` should not look empty).
    """
    from pathlib import Path

    from pivot.events.location import resolve_store_location
    from pivot.events.store import EventStore

    where = resolve_store_location(location)
    if not create and "://" not in where and not Path(where).exists():
        fail(
            f"no event store at {where} (nothing recorded yet?); "
            "give --store or set PIVOT_EVENT_STORE"
        )
    return EventStore.open(where)
