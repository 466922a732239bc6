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

Example::

    store = EventStore.open(".pivot/events.db")   # or a postgresql:// URL
    [seq] = store.append([StageStarted(stage="train")])
    for rec in store.read(after=seq - 1):
        print(rec.seq, rec.event)
    store.close()
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pivot.events.backends import LOG, open_backend
from pivot.events.base import Event, EventDecodeError, decode, encode
from pivot.events.group_commit import GroupCommitter
from pivot.storage import storage_error

if TYPE_CHECKING:
    from pivot.events.backends import Backend

__all__ = ["EventStore", "RawRecord", "Recorded"]

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


_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)
_DECODER = json.JSONDecoder()
# The decoder's C scanner (set by JSONDecoder.__init__; the stubs omit it).
_SCAN = _DECODER.scan_once  # type: ignore[attr-defined]


def encode_state(ev: Event) -> tuple[str, bytes]:
    """The topic and stored bytes (``{"v": version, "d": fields}``) of an event."""
    type_name, version, data = encode(ev)
    # One reused encoder: json.dumps builds a new one per call with these options.
    return type_name, f'{{"v":{version},"d":{_ENCODER.encode(data)}}}'.encode()


class EventStore:
    """Append events durably; read them back in log order."""

    def __init__(self, backend: Backend, location: str) -> None:
        self.backend = backend
        self.location = location
        self._stream = uuid.uuid4()
        self._version = 0
        self._committer: GroupCommitter[tuple[str, bytes], int] = GroupCommitter(self._write)

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

    def append(self, events: Sequence[Event]) -> list[int]:
        """Append events; returns their sequence numbers once they are durable.

        Safe to call from many threads at once: concurrent calls share one
        transaction. Either all events of a call are stored, or none is.
        """
        if not events:
            return []
        items = [encode_state(ev) for ev in events]
        try:
            return self._committer.submit(items)
        except Exception as exc:
            # A full disk or a file made unwritable while running: one line
            # naming the log, not eventsourcing's wrapped "disk I/O error".
            error = storage_error(exc, self.location, LOG) if self.kind == "sqlite" else None
            if error is None:
                raise
            raise error from exc

    def _write(self, items: list[tuple[str, bytes]]) -> list[int]:
        # Only ever called by one thread at a time (the group-commit leader).
        from eventsourcing.persistence import StoredEvent  # first write only (start-up)

        first = self._version + 1
        stored = [
            StoredEvent(self._stream, first + i, topic, state)
            for i, (topic, state) in enumerate(items)
        ]
        ids = self.backend.recorder.insert_events(stored)
        self._version += len(items)
        return list(ids or [])

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
                yield Recorded(seq, _event_of(seq, topic, state))

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
                    payload = _parse(state.decode())
                    version, data = payload["v"], payload["d"]
                    if type(version) is not int or type(data) is not dict:
                        raise TypeError("not a pivot event")  # noqa: TRY301 - reported below
                except Exception as exc:
                    raise _row_error(seq, topic, state, exc) from None
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
                yield Recorded(seq, _event_of(seq, topic, state))
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
                    payload = _parse(n.state.decode())
                    if type(payload.get("v")) is not int or type(payload.get("d")) is not dict:
                        raise TypeError("not a pivot event")  # noqa: TRY301 - reported below
                except Exception as exc:
                    error = _row_error(n.id, n.topic, n.state, exc)
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
                f'{{"v":{int(r.version)},"d":{_ENCODER.encode(r.data)}}}'.encode(),
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


def _parse(text: str) -> Any:
    """``json.loads(text)``, faster for what :func:`encode_state` writes.

    ``JSONDecoder.decode`` runs two whitespace regexes around the C scanner
    on every call; stored payloads have no surrounding whitespace, so the
    scanner alone reads them. Anything else (whitespace, trailing garbage)
    takes the full decoder, which accepts or rejects it exactly as before.
    """
    try:
        value, end = _SCAN(text, 0)
    except StopIteration:
        return _DECODER.decode(text)
    if end != len(text):
        return _DECODER.decode(text)
    return value


def _event_of(seq: int, topic: str, state: bytes) -> Event:
    """The event a stored row holds (an :class:`EventDecodeError` naming it if none)."""
    try:
        payload = _parse(state.decode())
        return decode(topic, payload["v"], payload["d"])
    except Exception as exc:
        raise _row_error(seq, topic, state, exc) from None


def _row_error(seq: int, topic: str, state: bytes, exc: Exception) -> Exception:
    """What to raise for a stored row that did not read: which event, and why.

    A row that is not ``{"v": int, "d": {...}}`` JSON (a damaged file, a row
    written by something else) is a clear :class:`EventDecodeError` naming its
    seq, so commands print one line; any other exception is a bug and stays
    itself.
    """
    if isinstance(exc, EventDecodeError):
        return EventDecodeError(f"event #{seq}: {exc}")
    try:
        payload = json.loads(state)
    except ValueError:  # also invalid UTF-8
        payload = None
    if not (
        isinstance(payload, dict)
        and type(payload.get("v")) is int
        and isinstance(payload.get("d"), dict)
    ):
        return EventDecodeError(
            f"event #{seq} ({topic}): the stored data is not a pivot event "
            "(a damaged store, or a row written by another program); "
            "`pivot events export --skip-damaged FILE` saves every event that reads"
        )
    return exc


def _hex(originator_id: object) -> str:
    return originator_id.hex if isinstance(originator_id, uuid.UUID) else str(originator_id)
