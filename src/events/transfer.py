"""Export a log to JSON lines and import it into an empty store, exactly.

One line per stored event, in log order, exactly as stored (no upcasting)::

    {"seq":1,"stream":"5f0c...","position":1,"type":"stage.started","version":1,"data":{...}}

Import keeps every ``seq``, stream and position, so exporting the imported
store gives the same file byte for byte, on SQLite and PostgreSQL alike. It
runs in one transaction: a bad line (reported with its line number) or a
crash leaves the store empty, never half-imported. It refuses a store that
already holds events: merging two logs would change the order history
happened in.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from typing import IO, Any

from eventsourcing.persistence import IntegrityError

from pivot.events.base import EventDecodeError, decode
from pivot.events.store import EventStore, RawRecord

__all__ = ["ImportFileError", "NonEmptyStoreError", "export_jsonl", "import_jsonl", "record_line"]

_KEYS = ("seq", "stream", "position", "type", "version", "data")
_PAGE = 5_000
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


class ImportFileError(ValueError):
    """A line of an import file that is not a stored event; names file and line."""


class NonEmptyStoreError(ValueError):
    """Import target already holds events."""


def record_line(rec: RawRecord) -> str:
    """The export line of one stored event (without the newline)."""
    return _ENCODER.encode(
        {
            "seq": rec.seq,
            "stream": rec.stream,
            "position": rec.position,
            "type": rec.type,
            "version": rec.version,
            "data": rec.data,
        }
    )


def export_jsonl(
    store: EventStore, out: IO[str], on_damaged: Callable[[int, str], None] | None = None
) -> int:
    """Write every stored event to ``out``; returns how many.

    A damaged row stops the export (:class:`EventDecodeError`) unless
    ``on_damaged(seq, message)`` is given: then it is left out.
    """
    count = 0
    for rec in store.read_raw(on_damaged=on_damaged):
        out.write(record_line(rec))
        out.write("\n")
        count += 1
    return count


def _parse(lines: IO[str], name: str) -> Iterator[RawRecord]:
    previous = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{name}:{number}"
        try:
            obj: Any = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFileError(f"{where}: not JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict) or set(obj) != set(_KEYS):
            raise ImportFileError(f"{where}: expected an object with keys {', '.join(_KEYS)}")
        seq, stream, position, type_name, version, data = (obj[k] for k in _KEYS)
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (seq, position)):
            raise ImportFileError(f"{where}: seq and position must be integers")
        if seq <= previous:
            raise ImportFileError(f"{where}: seq {seq} does not follow {previous}")
        try:
            stream = uuid.UUID(str(stream)).hex
        except ValueError:
            raise ImportFileError(f"{where}: stream {stream!r} is not a UUID") from None
        if not isinstance(version, int) or not isinstance(data, dict):
            raise ImportFileError(f"{where}: version must be an integer and data an object")
        try:
            decode(str(type_name), version, dict(data))
        except EventDecodeError as exc:
            raise ImportFileError(f"{where}: {exc}") from None
        previous = seq
        yield RawRecord(seq, stream, position, str(type_name), version, data)


def import_jsonl(store: EventStore, lines: IO[str], name: str = "<input>") -> int:
    """Load an export into ``store``, which must be empty; returns how many events."""
    backend = store.backend
    store.last_seq()  # make sure the tables exist before we lock them
    postgres = backend.kind == "postgresql"
    if postgres:
        insert = (
            "INSERT INTO stored_events (notification_id, originator_id, originator_version, "
            "topic, state) VALUES (%s, %s, %s, %s, %s)"
        )
    else:
        insert = (
            "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, state) "
            "VALUES (?, ?, ?, ?, ?)"
        )
    try:
        return _import(store, lines, name, insert)
    except (sqlite3.IntegrityError, IntegrityError) as exc:
        raise ImportFileError(
            f"{name}: two lines name the same stream and position ({exc}); nothing was imported"
        ) from None


def _import(store: EventStore, lines: IO[str], name: str, insert: str) -> int:
    backend = store.backend
    postgres = backend.kind == "postgresql"
    count = 0
    last = 0
    with backend.transaction() as cur:
        if postgres:
            cur.execute("LOCK TABLE stored_events IN EXCLUSIVE MODE")
        cur.execute("SELECT COUNT(*) AS n FROM stored_events")
        held = int(_first(cur.fetchone()))
        if held:
            raise NonEmptyStoreError(
                f"event store {store.location} already holds {held} events; import only "
                "into an empty store (e.g. PIVOT_EVENT_STORE=new.db pivot events import FILE)"
            )
        page: list[tuple[Any, ...]] = []
        for rec in _parse(lines, name):
            state = f'{{"v":{rec.version},"d":{_ENCODER.encode(rec.data)}}}'.encode()
            stream: Any = uuid.UUID(rec.stream) if postgres else rec.stream
            page.append((rec.seq, stream, rec.position, rec.type, state))
            last = rec.seq
            if len(page) >= _PAGE:
                _insert_page(cur, insert, page)
                count += len(page)
                page = []
        _insert_page(cur, insert, page)
        count += len(page)
        if postgres and last:
            cur.execute(
                "SELECT setval(pg_get_serial_sequence('stored_events', 'notification_id'), %s)",
                (last,),
            )
    return count


def _insert_page(cur: Any, statement: str, page: list[tuple[Any, ...]]) -> None:
    if page:
        cur.executemany(statement, page)


def _first(row: Any) -> Any:
    return row["n"] if not isinstance(row, tuple) else row[0]
