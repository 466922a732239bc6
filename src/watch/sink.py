"""Where actors put their events: the event store first, then live listeners.

Appending is durable before listeners (the display, plain/json printers)
see an event, so what the user sees was recorded.

Calls from many threads are merged (group commit, the store's own
:class:`pivot.events.group_commit.GroupCommitter`): the thread that finds
the sink idle appends everything emitted meanwhile in *one* call to the
store, then notifies the listeners of it in order, so listeners see events
in the order of their seqs and a burst of events from several actors costs
one transaction rather than one each.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from pivot.events.base import Event
from pivot.events.group_commit import GroupCommitter
from pivot.events.store import Recorded
from pivot.storage import StorageError

__all__ = ["EmitEvents", "EventSink", "Listener", "RecordedListener", "Store"]

log = logging.getLogger(__name__)

Listener = Callable[[Event], None]
# Gets each event with its seq in the log (0 if appending it failed).
RecordedListener = Callable[[Recorded], None]


class EmitEvents(Protocol):
    """Where a wave's events go: ``emit(*events)``, one call per batch (one append)."""

    def __call__(self, *events: Event) -> None: ...  # pragma: no cover


class Store(Protocol):
    """The part of :class:`pivot.events.EventStore` the sink uses."""

    def append(self, events: list[Event]) -> list[int]: ...  # pragma: no cover


@dataclass(frozen=True, slots=True)
class _Item:
    event: Event
    record: bool  # append it to the store (False: recorded elsewhere at ``seq``)
    seq: int = 0


class EventSink:
    """Thread-safe: record events, then hand them to every listener in order."""

    def __init__(
        self, store: Store | None = None, on_storage_error: Callable[[str], None] | None = None
    ) -> None:
        self._store = store
        # A full disk or an unwritable log: told once (one line), not per event.
        self._on_storage_error = on_storage_error
        self._storage_error = ""
        self._listeners: list[Listener] = []
        self._recorded: list[RecordedListener] = []
        self._lock = threading.Lock()  # guards the listener lists only
        self._committer: GroupCommitter[_Item, int] = GroupCommitter(self._write)

    @property
    def appends(self) -> int:
        """How many batches were handed to the store (for tests and benches)."""
        return self._committer.transactions

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every event emitted from now on."""
        with self._lock:
            self._listeners.append(listener)

    def subscribe_recorded(self, listener: RecordedListener) -> None:
        """Call ``listener`` with every event emitted from now on, and its seq."""
        with self._lock:
            self._recorded.append(listener)

    def emit(self, *events: Event) -> None:
        """Record ``events`` durably (in one append, maybe with other threads'), then
        notify listeners; returns once both are done."""
        if events:
            self._committer.submit([_Item(ev, True) for ev in events])

    def notify(self, events: Sequence[Event], seqs: Sequence[int] = ()) -> None:
        """Hand events recorded elsewhere (at ``seqs``) to the listeners only."""
        known = list(seqs) if len(seqs) == len(events) else [0] * len(events)
        if events:
            self._committer.submit(
                [_Item(ev, False, q) for ev, q in zip(events, known, strict=True)]
            )

    def _write(self, items: list[_Item]) -> list[int]:
        # One thread at a time (the committer's leader), so notifications keep seq order.
        to_record = [it.event for it in items if it.record]
        seqs: Sequence[int] = ()
        if to_record and self._store is not None:
            try:
                seqs = self._store.append(to_record)
            except StorageError as exc:
                if not self._storage_error:
                    self._storage_error = str(exc)
                    if self._on_storage_error is not None:
                        self._on_storage_error(str(exc))
            except Exception:
                # Not the disk: the display still shows what was not recorded.
                log.exception("could not record %d event(s)", len(to_record))
        recorded = iter(list(seqs) if len(seqs) == len(to_record) else [0] * len(to_record))
        out = [next(recorded) if it.record else it.seq for it in items]
        self._notify([it.event for it in items], out)
        return out

    def _notify(self, events: Sequence[Event], seqs: Sequence[int]) -> None:
        with self._lock:
            listeners = list(self._listeners)
            recorded = list(self._recorded)
        for ev, seq in zip(events, seqs, strict=True):
            for listener in listeners:
                try:
                    listener(ev)
                except Exception:
                    log.exception("event listener failed on %s", ev.TYPE)
            for with_seq in recorded:
                try:
                    with_seq(Recorded(seq, ev))
                except Exception:
                    log.exception("event listener failed on %s", ev.TYPE)
