"""The append-only event store, on eventsourcing's recorders.

Every writer (one per process that opens the store) appends to a stream of
its own (a fresh originator id, versions 1, 2, 3...), so concurrent processes
never contend on a version; the store's notification log gives the one global
order, and its ids are the sequence numbers (``seq``) the CLI shows.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from eventsourcing.persistence import ApplicationRecorder, InfrastructureFactory, StoredEvent

from pivot.events.base import Event, decode, encode

__all__ = ["EventStore", "Recorded"]


@dataclass(frozen=True, slots=True)
class Recorded:
    """An event as stored: its position in the log and the event itself."""

    seq: int
    event: Event


class EventStore:
    """Append events durably; read them back in log order."""

    def __init__(self, recorder: ApplicationRecorder, location: str) -> None:
        self._recorder = recorder
        self.location = location
        self._stream = uuid.uuid4()
        self._version = 0
        self._lock = threading.Lock()

    @classmethod
    def open(cls, location: str | os.PathLike[str]) -> EventStore:
        """Open (creating if needed) the SQLite store at a path."""
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        factory = InfrastructureFactory.construct(
            env={
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(path),
                "SQLITE_LOCK_TIMEOUT": "30",
            }
        )
        return cls(factory.application_recorder(), str(path))

    def append(self, events: Sequence[Event]) -> list[int]:
        """Append events; returns their sequence numbers once they are durable."""
        if not events:
            return []
        with self._lock:
            stored: list[StoredEvent] = []
            for ev in events:
                self._version += 1
                type_name, version, data = encode(ev)
                state = json.dumps({"v": version, "d": data}, separators=(",", ":"))
                stored.append(StoredEvent(self._stream, self._version, type_name, state.encode()))
            ids = self._recorder.insert_events(stored)
        return list(ids or [])

    def read(
        self, after: int = 0, limit: int | None = None, types: Sequence[str] = ()
    ) -> Iterator[Recorded]:
        """Events with ``seq > after`` in log order, optionally only some types."""
        page = 1000
        remaining = limit
        position = after
        while remaining is None or remaining > 0:
            size = page if remaining is None else min(page, remaining)
            batch = self._recorder.select_notifications(
                start=position, limit=size, topics=types, inclusive_of_start=False
            )
            if not batch:
                return
            for n in batch:
                payload = json.loads(n.state)
                yield Recorded(n.id, decode(n.topic, payload["v"], payload["d"]))
            position = batch[-1].id
            if remaining is not None:
                remaining -= len(batch)

    def last_seq(self) -> int:
        """The sequence number of the newest event (0 when empty)."""
        return self._recorder.max_notification_id() or 0

    def close(self) -> None:
        """Release connections."""
        close = getattr(getattr(self._recorder, "datastore", None), "close", None)
        if callable(close):
            close()
