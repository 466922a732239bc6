"""Following the event log for the page: in-memory read models and live subscribers.

SQLite has no ``subscribe()``, and events come from any process (a
``pivot watch`` or ``pivot watchers run`` in another terminal), so one
thread polls the store's last seq every :data:`POLL_SECONDS`, reads what is
new in log order, folds it into the read models the API serves, and hands
the WebSocket messages it makes to every subscriber.

Read models (all kept in memory; at start each is loaded from its stored
snapshot and brought up to date with the events after it, see
:mod:`pivot.ui.feed_snapshot`):

- the watchers' :class:`~pivot.jobs.book.Book` (definitions, states,
  counts), the same fold the runtime uses;
- the projections ``watcher_recent`` (each watcher's last trigger),
  ``watcher_stats`` and ``pipeline_status``, folded here event by event;
- per watcher, the numeric series of ``store_metric`` and the time it last
  read output.

The snapshot is stored again every :data:`~pivot.ui.feed_snapshot.SNAPSHOT_EVENTS`
events (at most once a minute) and when the server stops.

A subscriber gets every message with ``seq`` > the position it subscribed
at; :meth:`Feed.subscribe` returns that position atomically with the
registration, so a client that replays the log up to it from the store and
then drains its queue sees every event exactly once (see :mod:`pivot.ui.ws`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pivot.events.store import EventStore, Recorded
from pivot.jobs.book import Book
from pivot.projections import get_projection
from pivot.projections.base import Projection, State
from pivot.projections.watcher_history import WATCHER_RECENT
from pivot.ui.feed_snapshot import fold_series
from pivot.ui.messages import Message, messages_for

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["POLL_SECONDS", "Feed", "Subscription"]

log = logging.getLogger("pivot.ui")

POLL_SECONDS = 0.02
QUEUE_LIMIT = 20_000  # messages a slow client may lag behind before it is cut off
_PROJECTIONS = ("watcher_stats", "pipeline_status")


@dataclass
class Subscription:
    """One live client: messages arrive on ``queue`` as lists, in log order.

    ``overflowed`` is set (and nothing more is queued) when the client lags
    more than :data:`QUEUE_LIMIT` messages; it must reconnect and resume.
    """

    loop: asyncio.AbstractEventLoop
    accept: Callable[[Message], bool]
    queue: asyncio.Queue[list[Message]] = field(default_factory=asyncio.Queue)
    queued: int = 0
    overflowed: bool = False

    def _deliver(self, batch: list[Message]) -> None:
        # Runs on the subscriber's event loop.
        if self.overflowed:
            return
        self.queued += len(batch)
        if self.queued > QUEUE_LIMIT:
            self.overflowed = True
            self.queue.put_nowait([])  # wakes the sender, which sees the flag
            return
        self.queue.put_nowait(batch)

    def taken(self, count: int) -> None:
        """The sender took ``count`` messages off the queue."""
        self.queued -= count


class Feed:
    """The log as the page sees it, kept current by a polling thread."""

    def __init__(self, store: EventStore, *, poll_seconds: float = POLL_SECONDS) -> None:
        self.store = store
        self.poll_seconds = poll_seconds
        self.lock = threading.RLock()
        self.book = Book()
        # watcher_recent is the page's own (watcher_history's fold, short lists): not one
        # of the log's catalogued projections, which `pivot replay --verify` checks.
        self.projections: dict[str, Projection] = {
            WATCHER_RECENT.name: WATCHER_RECENT,
            **{n: get_projection(n) for n in _PROJECTIONS},
        }
        self.states: dict[str, State] = {}
        self.metrics: dict[str, dict[str, list[tuple[float, float]]]] = {}
        self.last_read: dict[str, float] = {}
        self.touched: set[str] = set()  # watchers an event changed since the listing looked
        self.seq = 0
        self._subscribers: list[Subscription] = []
        self._poll_lock = threading.Lock()  # one reader of the tail at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: str = ""
        self._views: dict[str, tuple[tuple[str, int, int], dict[str, Any]]] = {}
        self.loaded: dict[str, int] = {}  # where start-up read the log from, and how much
        self._saved_seq = 0  # the position of the last snapshot stored (or loaded)
        self._saved_at = -math.inf  # when it was stored (monotonic)
        from pivot.ui.listing import Listing

        self.listing = Listing(self)

    # -- start-up -----------------------------------------------------------

    def load(self) -> None:
        """Bring the read models up to the log's end, from their stored snapshot.

        One read of the log from the oldest stored position, each event
        routed to every read model whose position it is past (see
        :mod:`pivot.ui.feed_snapshot`); with nothing stored, that is the
        whole log.
        """
        from pivot.ui.feed_snapshot import book_types, load_snapshot

        target = self.store.last_seq()
        snap = load_snapshot(self.store, self.projections)
        positions, states = snap.positions, snap.states
        book = snap.book if snap.book is not None else Book()
        self.metrics, self.last_read = snap.metrics, snap.last_read
        routes: dict[str, list[tuple[str, Projection]]] = {}
        for name, projection in self.projections.items():
            for type_name in projection.types:
                routes.setdefault(type_name, []).append((name, projection))
        types = sorted({*routes, *book_types()})
        read = 0
        for rec in self.store.read(snap.oldest, types=types, until=target):
            read += 1
            for name, projection in routes.get(rec.event.TYPE, ()):
                if rec.seq > positions[name]:
                    states[name] = projection.apply(states[name], rec)
            if rec.seq > snap.book_position:
                book.apply(rec.event)
            if rec.seq > snap.series_position:
                self._metric(rec)
        book.seq = target
        self.book = book
        self.states = states
        self.touched = set(book.watchers)
        self.seq = target
        self.loaded = {"from": snap.oldest, "events_read": read}
        self._saved_seq = min(snap.oldest, target)
        self.listing.refresh()  # the first list request need not encode them all

    def start(self) -> None:
        """Load, then follow the log in a daemon thread until :meth:`stop`."""
        self.load()
        self._thread = threading.Thread(target=self._run, name="pivot-ui-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop following (idempotent), storing the read models if anything is new."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.snapshot(stopping=True)

    def snapshot(self, *, stopping: bool = False, force: bool = False) -> bool:
        """Store the read models if due (:func:`~pivot.ui.feed_snapshot.snapshot_due`).

        The models are encoded while no event is folded (the poll lock);
        readers go on meanwhile, and the write happens after. A model that
        cannot be stored (not plain data) is logged, not fatal: the next
        start folds more.
        """
        from pivot.ui.feed_snapshot import encode_snapshot, save_snapshot, snapshot_due

        since = time.monotonic() - self._saved_at
        with self._poll_lock:
            position = self.seq
            if not force and not snapshot_due(position - self._saved_seq, since, stopping=stopping):
                return False
            try:
                rows = encode_snapshot(self.states, self.projections, self.book, self.metrics,
                                       self.last_read)  # fmt: skip
            except (TypeError, ValueError) as exc:
                log.warning("pivot ui: read models not stored (%s)", exc)
                self._saved_at = time.monotonic()
                return False
        try:
            save_snapshot(self.store, position, rows)
        except Exception as exc:  # a busy or read-only store: the next start folds more
            log.warning("pivot ui: read models not stored (%s)", exc)
            return False
        finally:
            self._saved_at = time.monotonic()
        self._saved_seq = position
        return True

    # -- following ----------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
                self.snapshot()
                self.error = ""
            except Exception as exc:  # a store hiccup must not end the feed
                self.error = f"{type(exc).__name__}: {exc}"
                self._stop.wait(1.0)
            self._stop.wait(self.poll_seconds)

    def poll(self) -> int:
        """Fold and publish what was appended since the last poll; returns how many.

        Also called by a request handler right after it appended, so that
        the answer (and the next GET) already shows the change.
        """
        with self._poll_lock:
            last = self.store.last_seq()
            if last <= self.seq:
                return 0
            records = list(self.store.read(after=self.seq, until=last))
            with self.lock:
                batch = self.apply(records)
                self.seq = max(self.seq, last)
                subscribers = list(self._subscribers)
            self._publish(subscribers, batch)
        return len(records)

    def _publish(self, subscribers: list[Subscription], batch: list[Message]) -> None:
        for sub in subscribers:
            chosen = [m for m in batch if sub.accept(m)]
            if chosen:
                with contextlib.suppress(RuntimeError):  # its loop closed meanwhile
                    sub.loop.call_soon_threadsafe(sub._deliver, chosen)

    def apply(self, records: Sequence[Recorded]) -> list[Message]:
        """Fold records into every read model; returns their messages (caller holds the lock)."""
        out: list[Message] = []
        wanted = {name: set(p.types) for name, p in self.projections.items()}
        for rec in records:
            type_name = rec.event.TYPE
            for name, projection in self.projections.items():
                if type_name in wanted[name]:
                    self.states[name] = projection.apply(self.states[name], rec)
            self.book.apply(rec.event)
            self.book.seq = max(self.book.seq, rec.seq)
            self._metric(rec)
            watcher_id = getattr(rec.event, "watcher_id", "")
            if watcher_id:
                self.touched.add(watcher_id)
            out.extend(messages_for(rec, self.book))
        return out

    def _metric(self, rec: Recorded) -> None:
        fold_series(self.metrics, self.last_read, rec)

    # -- subscribers --------------------------------------------------------

    def subscribe(self, accept: Callable[[Message], bool]) -> tuple[Subscription, int]:
        """Register a live client (on the running loop); returns it and the seq it starts after."""
        sub = Subscription(asyncio.get_running_loop(), accept)
        with self.lock:
            self._subscribers.append(sub)
            return sub, self.seq

    def unsubscribe(self, sub: Subscription) -> None:
        """Forget a client."""
        with self.lock, contextlib.suppress(ValueError):
            self._subscribers.remove(sub)

    def replay(self, after: int, until: int) -> list[Message]:
        """The messages of the events with ``after < seq <= until``, from the store."""
        scratch = _Lookup(self.book)
        out: list[Message] = []
        for rec in self.store.read(after=after, until=until):
            out.extend(messages_for(rec, scratch))
        return out

    def view(self, name: str) -> dict[str, Any]:
        """A projection's view now (``watcher_stats``: counts with the last hour)."""
        now = time.time()
        # A view depends on the state and on the minute of `now` only (the last
        # hour is counted in whole minutes), so it is kept until either moves.
        key = (name, self.seq, int(now // 60))
        with self.lock:
            kept = self._views.get(name)
            if kept is not None and kept[0] == key:
                return kept[1]
            view = self.projections[name].view(self.states[name], now)
            self._views[name] = (key, view)
            return view


class _Lookup:
    """The current book, read-only, for messages of older events (job ids of watchers)."""

    def __init__(self, book: Book) -> None:
        self.watchers = book.watchers
