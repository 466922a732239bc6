"""The page's read models stored with their log position, so ``pivot ui`` starts in seconds.

Folding a million events takes ``pivot ui`` most of a minute. The feed
(:mod:`pivot.ui.feed`) therefore stores what it folded, next to the log in
the store's ``pivot_projections`` table, each with the position it reflects,
all in one transaction:

- ``watcher_recent``, ``watcher_stats``, ``pipeline_status``: the
  projections' own rows (the CLI's ``pivot stats`` reads them too);
- ``watcher_book``: the watchers' book (:mod:`pivot.projections.book_snapshot`);
- ``ui_series``: the ``store_metric`` series and each watcher's last read.

At start the feed reads each stored model and folds only the events after
its position (events appended while no ``pivot ui`` ran included). A model
stored under another version (a projection's ``version``, or for the book
and the series a fingerprint of the code that folds them) is folded from
the start instead. Rows are only ever moved forward: a fold's state at a
position is the same whoever computed it.

When to store is :func:`snapshot_due`: after :data:`SNAPSHOT_EVENTS` new
events, at most every :data:`SNAPSHOT_SECONDS`, and when the server stops.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pivot.events.base import Event
from pivot.projections.book_snapshot import (
    BOOK_MODULES,
    BOOK_ROW,
    book_data,
    book_from_data,
    fold_fingerprint,
)
from pivot.projections.live import ensure_table, read_row, write_row

if TYPE_CHECKING:
    from pivot.events.store import EventStore, Recorded
    from pivot.jobs.book import Book
    from pivot.projections.base import Projection, State

__all__ = [
    "BOOK_ROW",
    "SERIES_LIMIT",
    "SERIES_ROW",
    "SNAPSHOT_EVENTS",
    "SNAPSHOT_SECONDS",
    "Snapshot",
    "fold_series",
    "load_snapshot",
    "save_snapshot",
    "snapshot_due",
]

log = logging.getLogger("pivot.ui")

SERIES_ROW = "ui_series"
SNAPSHOT_EVENTS = 10_000  # new events before the next snapshot
SNAPSHOT_SECONDS = (
    60.0  # at most one snapshot a minute (each costs a second or two on 10k watchers)
)
SERIES_LIMIT = 10_000  # newest points kept per metric series
# The modules whose code decides the series' fold (fold_series is here).
_SERIES_MODULES = ("pivot.ui.feed_snapshot", "pivot.events.base", "pivot.events.watchers",
                   "pivot.events.jobs")  # fmt: skip

Series = dict[str, dict[str, list[tuple[float, float]]]]

# Plain JSON data, never cyclic (see pivot.projections.live).
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def fold_series(metrics: Series, last_read: dict[str, float], rec: Recorded) -> None:
    """Fold one event into the ``store_metric`` series and the watchers' last reads."""
    from pivot.events.jobs import OutputRead
    from pivot.events.watchers import MetricStored

    e = rec.event
    if isinstance(e, MetricStored):
        series = metrics.setdefault(e.watcher_id, {}).setdefault(e.name, [])
        series.append((e.at, float(e.value)))
        if len(series) > SERIES_LIMIT:
            del series[: len(series) - SERIES_LIMIT]
    elif isinstance(e, OutputRead) and e.watcher_id:
        last_read[e.watcher_id] = e.at


def snapshot_due(unsaved: int, seconds_since: float, *, stopping: bool = False) -> bool:
    """Whether to store the read models now.

    ``unsaved``: events folded since the last snapshot; ``seconds_since``:
    since it was stored (infinite if never in this process). Stopping stores
    whatever is new, so the next start reads only what comes after.
    """
    if unsaved <= 0:
        return False
    if stopping:
        return True
    return unsaved >= SNAPSHOT_EVENTS and seconds_since >= SNAPSHOT_SECONDS


@dataclass
class Snapshot:
    """What was stored, each model with its position (0 and empty: fold from the start)."""

    states: dict[str, State] = field(default_factory=dict)
    positions: dict[str, int] = field(default_factory=dict)
    book: Book | None = None
    book_position: int = 0
    metrics: Series = field(default_factory=dict)
    last_read: dict[str, float] = field(default_factory=dict)
    series_position: int = 0

    @property
    def oldest(self) -> int:
        """The position the log must be read from to bring every model up to date."""
        return min([*self.positions.values(), self.book_position, self.series_position])


def load_snapshot(store: EventStore, projections: dict[str, Projection]) -> Snapshot:
    """Every stored model that is usable (right version, not past the log's end)."""
    backend = store.backend
    ensure_table(backend)
    end = store.last_seq()
    snap = Snapshot()
    for name, projection in projections.items():
        row = read_row(backend, name)
        if row is not None and row[0] == projection.version and row[1] <= end:
            snap.states[name], snap.positions[name] = json.loads(row[2]), row[1]
        else:
            snap.states[name], snap.positions[name] = projection.initial(), 0
    row = read_row(backend, BOOK_ROW)
    if row is not None and row[0] == fold_fingerprint(BOOK_MODULES) and row[1] <= end:
        snap.book, snap.book_position = book_from_data(json.loads(row[2])), row[1]
    row = read_row(backend, SERIES_ROW)
    if row is not None and row[0] == fold_fingerprint(_SERIES_MODULES) and row[1] <= end:
        data = json.loads(row[2])
        snap.metrics = {
            wid: {name: list(zip(s["at"], s["value"], strict=True)) for name, s in named.items()}
            for wid, named in data["metrics"].items()
        }
        snap.last_read, snap.series_position = data["last_read"], row[1]
    return snap


def encode_snapshot(
    states: dict[str, State],
    projections: dict[str, Projection],
    book: Book,
    metrics: Series,
    last_read: dict[str, float],
) -> list[tuple[str, int, str]]:
    """The rows to store: ``(name, version, document)`` (the caller keeps the models still).

    Raises ``TypeError`` if a model holds something that is not plain data.
    """
    rows = [(name, projections[name].version, _ENCODER.encode(state))
            for name, state in states.items()]  # fmt: skip
    rows.append((BOOK_ROW, fold_fingerprint(BOOK_MODULES), _ENCODER.encode(book_data(book))))
    # Columns, not pairs: a list of numbers parses several times faster than
    # as many two-element lists.
    series = {
        wid: {name: {"at": [p[0] for p in s], "value": [p[1] for p in s]}
              for name, s in named.items()}
        for wid, named in metrics.items()
    }  # fmt: skip
    document = _ENCODER.encode({"metrics": series, "last_read": last_read})
    rows.append((SERIES_ROW, fold_fingerprint(_SERIES_MODULES), document))
    return rows


def save_snapshot(store: EventStore, position: int, rows: list[tuple[str, int, str]]) -> None:
    """Store the rows at ``position`` in one transaction (each only if it moves forward)."""
    backend = store.backend
    ensure_table(backend)
    with backend.transaction() as cur:
        for name, version, document in rows:
            write_row(backend, cur, name, version=version, position=position, document=document,
                      expected="older")  # fmt: skip
    log.debug("read models stored at seq %d", position)


def book_types() -> list[str]:
    """Every event type the book may fold (those of the watcher and job domains)."""
    from pivot.events import jobs, watchers

    found = {
        obj.TYPE
        for module in (jobs, watchers)
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, Event) and obj is not Event
    }
    return sorted(found)


def describe(snap: Snapshot) -> dict[str, Any]:
    """Where each model started from (``GET /api/status``'s ``loaded``)."""
    return {"book": snap.book_position, "series": snap.series_position, **snap.positions}
