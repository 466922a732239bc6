"""What every request handler reads: the store, the configuration, the feed."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivot.events.store import EventStore
from pivot.jobs.book import Book
from pivot.jobs.config import Config
from pivot.ui.feed import Feed

__all__ = ["UiContext"]


@dataclass
class UiContext:
    """One ``pivot ui`` server's world.

    ``token``: the bearer token every API and WebSocket request must carry
    ("" = none, only allowed on loopback). ``runtime``: the project's job
    watchers started here; it hosts them, or stands by while another process
    does (one host per project) and takes over when that one stops.
    """

    store: EventStore
    config: Config
    feed: Feed
    root: Path
    token: str = ""
    runtime: Any = None  # the job watchers' handle (pivot.jobs.runtime), None with --no-watchers
    bind: str = "127.0.0.1"  # the address it listens on (decides which Host names it answers)

    @property
    def hosting(self) -> bool:
        """Whether this process hosts the project's job watchers now."""
        return self.runtime is not None and bool(self.runtime.hosting)

    def job_book(self, watcher_id: str) -> Book:
        """A private copy of the watchers and record of one watcher's job (for ``trigger``).

        Running a watcher's actions takes seconds; the feed keeps folding
        meanwhile, so the command works on a copy of just what it reads.
        """
        from pivot.jobs.manage import find

        with self.feed.lock:
            book = self.feed.book
            ws = find(book, watcher_id)
            key = (ws.host, ws.job_id)
            return Book(
                watchers={
                    wid: copy.deepcopy(w)
                    for wid, w in book.watchers.items()
                    if (w.host, w.job_id) == key
                },
                jobs={key: copy.deepcopy(book.job(*key))},
                seq=book.seq,
            )
