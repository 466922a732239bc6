"""Where actors put their events: the event store first, then live listeners.

Appending is durable before listeners (the display, plain/json printers)
see an event, so what the user sees was recorded.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Protocol

from pivot.events.base import Event
from pivot.events.store import Recorded
from pivot.storage import StorageError

__all__ = ["EventSink", "Listener", "RecordedListener", "Store"]

log = logging.getLogger(__name__)

Listener = Callable[[Event], None]
# Gets each event with its seq in the log (0 if appending it failed).
RecordedListener = Callable[[Recorded], None]


class Store(Protocol):
    """The part of :class:`pivot.events.EventStore` the sink uses."""

    def append(self, events: list[Event]) -> list[int]: ...  # pragma: no cover


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
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every event emitted from now on."""
        with self._lock:
            self._listeners.append(listener)

    def subscribe_recorded(self, listener: RecordedListener) -> None:
        """Call ``listener`` with every event emitted from now on, and its seq."""
        with self._lock:
            self._recorded.append(listener)

    def emit(self, *events: Event) -> None:
        """Record ``events`` durably, then notify listeners."""
        if not events:
            return
        with self._lock:
            seqs: Sequence[int] = ()
            if self._store is not None:
                try:
                    seqs = self._store.append(list(events))
                except StorageError as exc:
                    if not self._storage_error:
                        self._storage_error = str(exc)
                        if self._on_storage_error is not None:
                            self._on_storage_error(str(exc))
                except Exception:
                    # Not the disk: the display still shows what was not recorded.
                    log.exception("could not record %d event(s)", len(events))
            self._notify(events, seqs)

    def notify(self, events: Sequence[Event], seqs: Sequence[int] = ()) -> None:
        """Hand events recorded elsewhere (at ``seqs``) to the listeners only."""
        with self._lock:
            self._notify(events, seqs)

    def _notify(self, events: Sequence[Event], seqs: Sequence[int]) -> None:
        listeners = list(self._listeners)
        recorded = list(self._recorded)
        known = list(seqs) if len(seqs) == len(events) else [0] * len(events)
        for ev, seq in zip(events, known, strict=True):
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
