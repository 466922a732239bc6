"""Read models of the event log: pipeline status and stats, watcher history and stats.

Each projection is a deterministic fold over the log (see
:mod:`pivot.projections.base`), stored in the store's own database with the
log position it reflects, and brought up to date on demand. Typical use::

    from pivot.events import EventStore
    from pivot.projections import open_projection

    store = EventStore.open(".pivot/events.db")
    stats = open_projection(store, "watcher_stats")
    stats.catch_up()            # fold the events appended since last time
    print(stats.view())         # {"total_watchers": ..., "top_watchers": [...]}
    stats.state                 # the raw folded state (plain JSON data)

``catch_up()`` is cheap when nothing is new (one ``MAX(seq)`` query); call it
before every read, or once per display refresh. Names: ``pipeline_status``,
``pipeline_stats``, ``watcher_history``, ``watcher_stats`` (:data:`PROJECTIONS`). The shape of
each state and view is documented in its module.

:func:`rebuild` folds the log from the start into fresh states (in memory,
nothing stored): ``pivot replay`` and ``pivot replay --verify`` use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pivot.projections.base import Projection, State

if TYPE_CHECKING:
    from pivot.events.store import EventStore, Recorded
    from pivot.projections.live import LiveProjection

    PROJECTIONS: dict[str, Projection]

__all__ = [
    "PROJECTIONS",
    "LiveProjection",
    "Projection",
    "State",
    "UnknownProjectionError",
    "get_projection",
    "open_projection",
    "rebuild",
]

# name -> (module, attribute). A projection's module (and the event domain it
# reads) is imported when the projection is first asked for, so `pivot stats`
# loads only the watcher-stats fold. PROJECTIONS (every one) loads them all.
_WHERE = {
    "pipeline_status": ("pivot.projections.pipeline_status", "PIPELINE_STATUS"),
    "pipeline_stats": ("pivot.projections.pipeline_stats", "PIPELINE_STATS"),
    "watcher_history": ("pivot.projections.watcher_history", "WATCHER_HISTORY"),
    "watcher_stats": ("pivot.projections.watcher_stats", "WATCHER_STATS"),
}
NAMES = tuple(_WHERE)


class UnknownProjectionError(KeyError):
    """A projection name that does not exist."""

    def __str__(self) -> str:
        return f"unknown projection {self.args[0]!r} (known: {', '.join(sorted(_WHERE))})"


def get_projection(name: str) -> Projection:
    """The projection called ``name``; :class:`UnknownProjectionError` if none."""
    where = _WHERE.get(name)
    if where is None:
        raise UnknownProjectionError(name)
    projection: Projection = getattr(importlib.import_module(where[0]), where[1])
    return projection


def __getattr__(name: str) -> Any:
    if name == "PROJECTIONS":
        every = {n: get_projection(n) for n in NAMES}
        globals()[name] = every
        return every
    if name == "LiveProjection":
        from pivot.projections.live import LiveProjection

        return LiveProjection
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_projection(store: EventStore, name: str) -> LiveProjection:
    """The stored projection ``name`` of this store (call ``catch_up()`` before reading)."""
    from pivot.projections.live import LiveProjection

    return LiveProjection(store, get_projection(name))


def rebuild(
    store: EventStore,
    names: Iterable[str] | None = None,
    *,
    until: int | None = None,
    records: Iterable[Recorded] | None = None,
) -> dict[str, State]:
    """Fold the log (up to seq ``until``) into fresh states, reading it once.

    ``records`` replaces reading the store (e.g. a filtered stream for a
    point in time).
    """
    chosen = [get_projection(n) for n in (names if names is not None else NAMES)]
    states = {p.name: p.initial() for p in chosen}
    routes: dict[str, list[Projection]] = {}
    for p in chosen:
        for type_name in p.types:
            routes.setdefault(type_name, []).append(p)
    if records is None:
        records = store.read(types=sorted(routes), until=until)
    for rec in records:
        for p in routes.get(rec.event.TYPE, ()):
            states[p.name] = p.apply(states[p.name], rec)
    return states
