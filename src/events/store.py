"""The append-only event store, on eventsourcing's recorders.

Every writer (one per :class:`EventStore` instance, i.e. per process that
opens the store) appends to a stream of its own (a fresh originator id,
versions 1, 2, 3...), so concurrent processes never contend on a version;
the store's notification log gives the one global order, and its ids are the
sequence numbers (``seq``) the CLI shows.

Appends from many threads are merged into shared transactions (group commit,
see :mod:`pivot.events.group_commit`); :meth:`EventStore.append` returns only
once the transaction holding its events committed, so an acknowledged event
survives ``kill -9``. SQLite runs in WAL mode with ``synchronous=FULL``
(Python's default), so a commit is on disk when it returns.

Whoever must see events as they happen (``pivot watch``'s Display)
subscribes: the leader of each transaction hands its events, with their
seqs, to every listener right after the commit, so listeners see what was
recorded, in seq order, and a burst from several threads costs one
transaction. Actors append with :meth:`EventStore.emit`, which never raises.
How a row encodes an event is :mod:`pivot.events.row_codec`.

Example::

    store = EventStore.open(".pivot/events.db")   # or a postgresql:// URL
    [seq] = store.append([StageStarted(stage="train")])
    for rec in store.read(after=seq - 1):
        print(rec.seq, rec.event)
    store.close()
"""

from __future__ import annotations

import logging
import os
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pivot.events.backends import LOG, open_backend
from pivot.events.base import Event
from pivot.events.group_commit import GroupCommitter
from pivot.events.row_codec import encode_payload, encode_state, event_of, parse, row_error
from pivot.storage import StorageError, storage_error

if TYPE_CHECKING:
    from pivot.events.backends import Backend

__all__ = ["EventStore", "Listener", "RawRecord", "Recorded"]

log = logging.getLogger(__name__)

_PAGE = 2000
_BACKWARD_PAGE = 500


@dataclass(frozen=True, slots=True)
class Recorded:
    """An event as stored: its position in the log and the event itself."""

    seq: int
    event: Event


@dataclass(frozen=True, slots=True)
class RawRecord:
    """A stored row exactly as written: for export/import and fast scans."""

    seq: int
    stream: str
    position: int
    type: str
    version: int
    data: dict[str, Any]


# Gets each event appended through the store, with its seq (0: not recorded).
Listener = Callable[[Recorded], None]


class EventStore:
    """Append events durably; read them back in log order."""

    def __init__(self, backend: Backend, location: str) -> None:
        self.backend = backend
        self.location = location
        self._stream = uuid.uuid4()
        self._version = 0
        self._committer: GroupCommitter[tuple[str, bytes, Event], int] = GroupCommitter(self._write)
        self._lock = threading.Lock()  # guards the two lists below
        self._listeners: list[Listener] = []
        self._on_storage_error: list[Callable[[str], None]] = []
        self._storage_error = ""  # the first one emit() met: told once, not per event

    @classmethod
    def open(cls, location: str | os.PathLike[str]) -> EventStore:
        """Open (creating if needed) the store at a SQLite path or ``postgresql://`` URL."""
        text = os.fspath(location)
        return cls(open_backend(text), text)

    @property
    def kind(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.backend.kind

    @property
    def transactions(self) -> int:
        """How many append transactions this instance committed."""
        return self._committer.transactions

    def subscribe(self, listener: Listener) -> None:
        """Hand ``listener`` every event appended through this instance from now on.

        It is called once the event's transaction committed, with its seq (0
        when the transaction failed: the display still shows what could not be
        recorded), in seq order, on the appending thread before the append
        returns: keep it quick (``pivot watch``'s Display only queues it).
        """
        with self._lock:
            self._listeners.append(listener)

    def on_storage_error(self, callback: Callable[[str], None]) -> None:
        """Call ``callback`` with the first storage error :meth:`emit` meets (once)."""
        with self._lock:
            self._on_storage_error.append(callback)

    def emit(self, *events: Event) -> None:
        """Append ``events`` (one append) for a writer that must go on when the log
        cannot be written, an actor: its events report what it did, they decide
        nothing. Never raises: a storage error (full disk, unwritable log) goes to
        the :meth:`on_storage_error` callbacks, once, as one line; any other is
        logged. Subscribers are handed the events either way."""
        if not events:
            return
        try:
            self.append(events)
        except StorageError as exc:
            with self._lock:
                first, self._storage_error = (
                    not self._storage_error,
                    self._storage_error or str(exc),
                )
                callbacks = list(self._on_storage_error) if first else []
            for callback in callbacks:
                callback(str(exc))
        except Exception:
            log.exception("could not record %d event(s)", len(events))

    def append(self, events: Sequence[Event]) -> list[int]:
        """Append events; returns their sequence numbers once they are durable.

        Safe to call from many threads at once: concurrent calls share one
        transaction. Either all events of a call are stored, or none is.
        """
        if not events:
            return []
        items = [(*encode_state(ev), ev) for ev in events]
        try:
            return self._committer.submit(items)
        except Exception as exc:
            # A full disk or a file made unwritable while running: one line
            # naming the log, not eventsourcing's wrapped "disk I/O error".
            error = storage_error(exc, self.location, LOG) if self.kind == "sqlite" else None
            if error is None:
                raise
            raise error from exc

    def _write(self, items: list[tuple[str, bytes, Event]]) -> list[int]:
        # Only ever called by one thread at a time (the group-commit leader), so
        # listeners are handed the events of one transaction after another, in seq order.
        from eventsourcing.persistence import StoredEvent  # first write only (start-up)

        first = self._version + 1
        stored = [
            StoredEvent(self._stream, first + i, topic, state)
            for i, (topic, state, _) in enumerate(items)
        ]
        try:
            ids = list(self.backend.recorder.insert_events(stored) or [])
        except Exception:
            self._notify(items, [0] * len(items))
            raise
        self._version += len(items)
        self._notify(items, ids if len(ids) == len(items) else [0] * len(items))
        return ids

    def _notify(self, items: list[tuple[str, bytes, Event]], seqs: list[int]) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for (_, _, ev), seq in zip(items, seqs, strict=True):
            for listener in listeners:
                try:
                    listener(Recorded(seq, ev))
                except Exception:
                    log.exception("event listener failed on %s", ev.TYPE)

    def read(
        self,
        after: int = 0,
        limit: int | None = None,
        types: Sequence[str] = (),
        *,
        until: int | None = None,
    ) -> Iterator[Recorded]:
        """Events with ``after < seq <= until`` in log order, optionally only some types."""
        # The hot path of every rebuild: rows parsed and decoded here, not
        # through read_payloads (one generator layer less per event).
        for batch in self._pages(after, limit, types, until):
            for seq, topic, state in batch:
                yield Recorded(seq, event_of(seq, topic, state))

    def read_payloads(
        self,
        after: int = 0,
        limit: int | None = None,
        types: Sequence[str] = (),
        *,
        until: int | None = None,
    ) -> Iterator[tuple[int, str, int, dict[str, Any]]]:
        """``(seq, type, version, data)`` as stored, not decoded: scans that must
        survive an event this pivot cannot decode (e.g. from a newer one)."""
        for batch in self._pages(after, limit, types, until):
            for seq, topic, state in batch:
                try:
                    payload = parse(state.decode())
                    version, data = payload["v"], payload["d"]
                    if type(version) is not int or type(data) is not dict:
                        raise TypeError("not a pivot event")  # noqa: TRY301 - reported below
                except Exception as exc:
                    raise row_error(seq, topic, state, exc) from None
                yield seq, topic, version, data

    def _pages(
        self, after: int, limit: int | None, types: Sequence[str], until: int | None
    ) -> Iterator[list[tuple[int, str, bytes]]]:
        """Stored ``(seq, topic, state)`` rows, a page at a time, in log order."""
        remaining = limit
        position = after
        select = self.backend.select_states
        topics = list(types)
        while remaining is None or remaining > 0:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            batch = select(position, until, topics, size)
            if not batch:
                return
            yield batch
            position = batch[-1][0]
            if remaining is not None:
                remaining -= len(batch)
            if len(batch) < size:
                return

    def read_backwards(
        self,
        until: int | None = None,
        types: Sequence[str] = (),
        *,
        after: int = 0,
        limit: int | None = None,
    ) -> Iterator[Recorded]:
        """Events with ``after < seq <= until``, newest first (for "the last X" queries).

        Give ``limit`` when only the first few are wanted: a page asks the
        database for that many matches, and when the types are rare (a
        ``wave.started`` among 10,000 stage events per wave) finding a whole
        page of them means scanning the log from its end to its start.
        """
        select = self.backend.select_states
        topics = list(types)
        bound = until
        remaining = limit
        while remaining is None or remaining > 0:
            size = _BACKWARD_PAGE if remaining is None else min(_BACKWARD_PAGE, remaining)
            batch = select(after, bound, topics, size, descending=True)
            for seq, topic, state in batch:
                yield Recorded(seq, event_of(seq, topic, state))
            if len(batch) < size:
                return
            if remaining is not None:
                remaining -= len(batch)
            bound = batch[-1][0] - 1

    def seq_at(self, moment: float, slack: float = 600.0) -> int:
        """A seq before which no event is at or after ``moment`` (a lower bound for scans).

        Binary search on the events' times, which follow the log order except
        for events appended late: an event appended up to ``slack`` seconds
        after its ``at`` is still found by a scan starting here.
        """
        low, high = 0, self.last_seq()  # invariant: events <= low are before the target
        target = moment - slack
        while low < high:
            mid = (low + high + 1) // 2
            # The first event at or after mid (seqs may have gaps).
            found = next(self.read_payloads(mid - 1, 1), None)
            if found is None or found[0] > high:
                high = mid - 1
            elif float(found[3].get("at", 0.0)) < target:
                low = found[0]
            else:
                high = mid - 1
        return low

    def read_raw(
        self,
        after: int = 0,
        limit: int | None = None,
        types: Sequence[str] = (),
        *,
        until: int | None = None,
        on_damaged: Callable[[int, str], None] | None = None,
    ) -> Iterator[RawRecord]:
        """Stored rows as written (no upcasting), in log order.

        A row that is not a pivot event raises :class:`EventDecodeError`, or,
        with ``on_damaged``, is passed over after ``on_damaged(seq, message)``
        (``pivot events export --skip-damaged`` saving what can be read).
        """
        remaining = limit
        position = after
        recorder = self.backend.recorder
        while remaining is None or remaining > 0:
            size = _PAGE if remaining is None else min(_PAGE, remaining)
            batch = recorder.select_notifications(
                start=position,
                limit=size,
                stop=until,
                topics=list(types),
                inclusive_of_start=False,
            )
            if not batch:
                return
            for n in batch:
                try:
                    payload = parse(n.state.decode())
                    if type(payload.get("v")) is not int or type(payload.get("d")) is not dict:
                        raise TypeError("not a pivot event")  # noqa: TRY301 - reported below
                except Exception as exc:
                    error = row_error(n.id, n.topic, n.state, exc)
                    if on_damaged is None:
                        raise error from None
                    on_damaged(n.id, str(error))
                    continue
                yield RawRecord(
                    n.id, _hex(n.originator_id), n.originator_version, n.topic, payload["v"],
                    payload["d"],
                )  # fmt: skip
            position = batch[-1].id
            if remaining is not None:
                remaining -= len(batch)
            if len(batch) < size:
                return

    def append_raw(self, records: Sequence[RawRecord]) -> list[int]:
        """Store rows exactly as exported (their own streams and positions)."""
        from eventsourcing.persistence import StoredEvent

        stored = [
            StoredEvent(
                uuid.UUID(r.stream),
                r.position,
                r.type,
                encode_payload(int(r.version), r.data),
            )
            for r in records
        ]
        return list(self.backend.recorder.insert_events(stored) or [])

    def last_seq(self) -> int:
        """The sequence number of the newest event (0 when empty)."""
        return self.backend.max_seq()

    def close(self) -> None:
        """Release connections."""
        self.backend.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _hex(originator_id: object) -> str:
    return originator_id.hex if isinstance(originator_id, uuid.UUID) else str(originator_id)
