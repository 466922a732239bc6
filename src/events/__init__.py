"""Typed events and the append-only event store.

Importing this package registers every event class of every domain, so the
store can decode any stored event.
"""

from __future__ import annotations

from pivot.events import actors, jobs, pipeline, watchers
from pivot.events.base import Event, decode, encode, event, new_correlation_id, upcaster
from pivot.events.store import EventStore, Recorded

__all__ = [
    "Event",
    "EventStore",
    "Recorded",
    "actors",
    "decode",
    "encode",
    "event",
    "jobs",
    "new_correlation_id",
    "pipeline",
    "upcaster",
    "watchers",
]
