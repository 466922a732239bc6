"""``GET /api/watchers`` fast on 10,000 watchers: each watcher's JSON kept encoded.

Building and encoding every watcher's object on every request costs
~0.2 ms a watcher (2 s for 10,000); almost none changed since the previous
request. The feed marks the watchers an event touched
(:attr:`pivot.ui.feed.Feed.touched`); :meth:`Listing.body` re-encodes only
those and joins the cached bytes, newest first; the whole body of a query
is kept too until a watcher changes (the page and scripts ask again and
again while nothing moved).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pivot.ui.jsonenc import encode
from pivot.ui.shapes import watcher_json

if TYPE_CHECKING:
    from pivot.ui.feed import Feed

__all__ = ["Listing"]


@dataclass(frozen=True, slots=True)
class _Entry:
    data: bytes
    state: str
    job_id: str
    order: tuple[float, str]  # sorts newest first, then by id


class Listing:
    """Encoded watchers of one feed (call with the feed's lock held)."""

    def __init__(self, feed: Feed) -> None:
        self.feed = feed
        self._entries: dict[str, _Entry] = {}
        self._order: list[str] = []
        self._sorted = True
        # Whole bodies by query, until a watcher changes: the page and scripts
        # ask the same question again and again while nothing moved.
        self._bodies: dict[tuple[str, str, int | None], bytes] = {}

    def refresh(self) -> None:
        """Encode the watchers touched since the last call (the feed calls it after loading)."""
        self._refresh()

    def _refresh(self) -> None:
        feed = self.feed
        touched = feed.touched
        if not touched:
            return
        self._bodies.clear()
        history = feed.states["watcher_recent"]["watchers"]
        for wid in touched:
            ws = feed.book.watchers.get(wid)
            if ws is None:
                continue
            doc = watcher_json(ws, history.get(wid), feed.last_read.get(wid))
            if wid not in self._entries:
                self._order.append(wid)
                self._sorted = False
            self._entries[wid] = _Entry(
                encode(doc).encode(), ws.state, ws.job_id, (-(ws.created_at or 0.0), wid)
            )
        touched.clear()
        if not self._sorted:
            self._order.sort(key=lambda w: self._entries[w].order)
            self._sorted = True

    def body(self, state: str = "", job_id: str = "", limit: int | None = None) -> bytes:
        """``{"watchers": [...], "count": n}`` (``"job_id"`` too when one is asked), encoded.

        Without ``state``, removed watchers are left out (as in ``pivot watchers list``).
        """
        self._refresh()
        key = (state, job_id, limit)
        cached = self._bodies.get(key)
        if cached is not None:
            return cached
        chunks: list[bytes] = []
        entries = self._entries
        for wid in self._order:
            e = entries[wid]
            if (state and e.state != state) or (not state and e.state == "removed"):
                continue
            if job_id and e.job_id != job_id:
                continue
            chunks.append(e.data)
            if limit is not None and len(chunks) >= limit:
                break
        head = b'{"job_id":' + encode(job_id).encode() + b"," if job_id else b"{"
        tail = b'],"count":%d}' % len(chunks)
        body = b"".join((head, b'"watchers":[', b",".join(chunks), tail))
        if len(self._bodies) > 64:  # many different job ids asked: keep memory bounded
            self._bodies.clear()
        self._bodies[key] = body
        return body
