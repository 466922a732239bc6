"""Typed events and the append-only event store.

The four domains' event classes live in :mod:`pivot.events.pipeline`,
:mod:`~pivot.events.watchers`, :mod:`~pivot.events.jobs` and
:mod:`~pivot.events.actors`. They are imported on first use, not with this
package: a command such as ``pivot stats`` that only needs one domain (or
none) does not pay for defining every dataclass. Decoding a stored event of
a type not registered yet, and :func:`pivot.events.base.event_types`, load
the whole catalogue, so every stored event can be read without importing
anything by hand.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from pivot.events.base import Event, decode, encode, event, new_correlation_id, upcaster

if TYPE_CHECKING:
    from pivot.events import actors, jobs, pipeline, watchers
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

_LAZY = {
    "actors": ("pivot.events.actors", None),
    "jobs": ("pivot.events.jobs", None),
    "pipeline": ("pivot.events.pipeline", None),
    "watchers": ("pivot.events.watchers", None),
    "EventStore": ("pivot.events.store", "EventStore"),
    "Recorded": ("pivot.events.store", "Recorded"),
}


def __getattr__(name: str) -> Any:
    where = _LAZY.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = importlib.import_module(where[0])
    value = module if where[1] is None else getattr(module, where[1])
    globals()[name] = value
    return value
