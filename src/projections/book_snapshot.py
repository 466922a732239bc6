"""The watchers' book as plain JSON data, so it can be stored with its log position.

:class:`pivot.jobs.book.Book` is folded from the whole log; on a log of a
million events that fold takes tens of seconds. A snapshot (the book's data
at a position, stored in ``pivot_projections`` like a projection's state)
lets a reader fold only what came after it: :func:`book_data` and
:func:`book_from_data` are exact inverses (``book_from_data(book_data(b)) ==
b``), which the tests check on folded logs.

A snapshot is only as good as the fold that made it: :func:`fold_fingerprint`
hashes the source of the modules whose code decides the fold (the book, the
definitions, the event classes...), and a snapshot stored under another
fingerprint is ignored, so a pivot whose fold changed folds the log again
rather than trusting a state its new code would not have made.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import json
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pivot.events.base import decode, encode
from pivot.events.watchers import ActionRequested
from pivot.jobs.book import Book, JobRecord, WatcherState, fold
from pivot.jobs.definition import WatcherDefinition, definition_from_dict
from pivot.jobs.lookup_health import LookupHealth
from pivot.jobs.tail import Position
from pivot.projections.live import read_row

if TYPE_CHECKING:
    from pivot.events.store import EventStore

__all__ = [
    "BOOK_MODULES",
    "BOOK_ROW",
    "book_data",
    "book_from_data",
    "fold_fingerprint",
    "stored_book",
]

BOOK_ROW = "watcher_book"  # its name in pivot_projections

# The modules whose code decides what the book's fold makes of the log.
BOOK_MODULES = (
    "pivot.jobs.book",
    "pivot.jobs.definition",
    "pivot.jobs.tail",
    "pivot.jobs.lookup_health",
    "pivot.events.base",
    "pivot.events.jobs",
    "pivot.events.watchers",
    "pivot.projections.book_snapshot",
)

# WatcherState fields that are not plain JSON data as they are.
_SPECIAL = frozenset({"definition", "positions", "recent_actions", "pending", "last_groups"})


def fold_fingerprint(modules: Iterable[str]) -> int:
    """A number that changes whenever the source of one of ``modules`` changes.

    31 bits, so it fits the ``version`` column on every backend.
    """
    digest = hashlib.sha256()
    for name in modules:
        module = importlib.import_module(name)
        where = getattr(module, "__file__", None)
        digest.update(name.encode())
        if where and Path(where).is_file():
            digest.update(Path(where).read_bytes())
    return int.from_bytes(digest.digest()[:4], "big") & 0x7FFFFFFF


def stored_book(store: EventStore) -> Book:
    """The book at the log's end: the stored snapshot, if this code made it, and the events after.

    Exactly ``fold(store.read())`` (the tests check it), without reading the
    part of the log the snapshot already holds. ``pivot ui`` stores the
    snapshot (:mod:`pivot.ui.feed_snapshot`); without one, the whole log is folded.
    """
    row = read_row(store.backend, BOOK_ROW)
    book, position = Book(), 0
    if row is not None and row[0] == fold_fingerprint(BOOK_MODULES) and row[1] <= store.last_seq():
        book, position = book_from_data(json.loads(row[2])), row[1]
    return fold(store.read(after=position), book)


def book_data(book: Book) -> dict[str, Any]:
    """The book as plain data (raises ``TypeError`` on a field that is not plain data)."""
    return {
        "seq": book.seq,
        "watchers": [_watcher_data(ws) for ws in book.watchers.values()],
        "jobs": [dataclasses.asdict(rec) for rec in book.jobs.values()],
        "lookups": [
            [host, what, h.since, h.failures, h.last_error]
            for (host, what), h in book.lookups.items()
        ],
    }


def book_from_data(data: dict[str, Any]) -> Book:
    """The book :func:`book_data` made ``data`` of."""
    definitions: dict[str, WatcherDefinition] = {}  # watchers often share one definition
    watchers = {}
    for item in data["watchers"]:
        ws = _watcher_of(item, definitions)
        watchers[ws.watcher_id] = ws
    jobs = {}
    for item in data["jobs"]:
        rec = JobRecord(**item)
        jobs[(rec.host, rec.job_id)] = rec
    lookups = {
        (host, what): LookupHealth(since=since, failures=failures, last_error=error)
        for host, what, since, failures, error in data["lookups"]
    }
    return Book(watchers=watchers, jobs=jobs, lookups=lookups, seq=int(data["seq"]))


def _watcher_data(ws: WatcherState) -> dict[str, Any]:
    out = {
        f.name: getattr(ws, f.name)
        for f in dataclasses.fields(WatcherState)
        if f.name not in _SPECIAL
    }
    out["definition"] = ws.definition.to_dict()
    out["positions"] = [dataclasses.asdict(p) for p in ws.positions.values()]
    out["recent_actions"] = list(ws.recent_actions)
    out["pending"] = [list(encode(ev)) for ev in ws.pending.values()]
    out["last_groups"] = list(ws.last_groups)
    return out


def _watcher_of(item: dict[str, Any], definitions: dict[str, WatcherDefinition]) -> WatcherState:
    plain = {k: v for k, v in item.items() if k not in _SPECIAL}
    key = json.dumps(item["definition"], sort_keys=True)
    definition = definitions.get(key)
    if definition is None:
        definition = definitions[key] = definition_from_dict(item["definition"])
    positions = {p["path"]: Position(**p) for p in item["positions"]}
    pending: dict[str, ActionRequested] = {}
    for type_name, version, fields in item["pending"]:
        ev = decode(type_name, version, fields)
        assert isinstance(ev, ActionRequested)  # only requests are pending
        pending[ev.action_id] = ev
    return WatcherState(
        **plain,
        definition=definition,
        positions=positions,
        recent_actions=deque(item["recent_actions"]),
        pending=pending,
        last_groups=tuple(item["last_groups"]),
    )
