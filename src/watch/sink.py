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

__all__ = ["EventSink", "Listener", "Store"]

log = logging.getLogger(__name__)

Listener = Callable[[Event], None]


class Store(Protocol):
    """The part of :class:`pivot.events.EventStore` the sink uses."""

    def append(self, events: list[Event]) -> list[int]: ...  # pragma: no cover


class EventSink:
    """Thread-safe: record events, then hand them to every listener in order."""

    def __init__(self, store: Store | None = None) -> None:
        self._store = store
        self._listeners: list[Listener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: Listener) -> None:
        """Call ``listener`` with every event emitted from now on."""
        with self._lock:
            self._listeners.append(listener)

    def emit(self, *events: Event) -> None:
        """Record ``events`` durably, then notify listeners."""
        if not events:
            return
        with self._lock:
            if self._store is not None:
                try:
                    self._store.append(list(events))
                except Exception:
                    # A full disk must not stop the watch; the display still shows it.
                    log.exception("could not record %d event(s)", len(events))
            self._notify(events)

    def notify(self, events: Sequence[Event]) -> None:
        """Hand events recorded elsewhere to the listeners only."""
        with self._lock:
            self._notify(events)

    def _notify(self, events: Sequence[Event]) -> None:
        listeners = list(self._listeners)
        for ev in events:
            for listener in listeners:
                try:
                    listener(ev)
                except Exception:
                    log.exception("event listener failed on %s", ev.TYPE)
