"""Scanning a watcher's new lines: every match decided at once, folded before the next.

:class:`Scanner` is the part of the tailer between the bytes and the
decisions. It runs the watcher's compiled pattern (:mod:`pivot.jobs.patterns`,
cached per watcher and recompiled when the definition is edited) over a blob
of complete lines, calls :func:`pivot.jobs.decide.on_match` for each match
and folds the result into the book at once, so the next match of the same
read sees the new counters (``max_triggers``, the rate limit). The events
are appended later, with the read's position, by the
:class:`~pivot.jobs.output_reader.OutputReader`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

from pivot.events.base import Event
from pivot.jobs.batch import ActionBatch, batches_for
from pivot.jobs.book import Book, WatcherState
from pivot.jobs.decide import Context, on_match
from pivot.jobs.patterns import CompiledPattern

__all__ = ["Scanner"]


class _HasBook(Protocol):
    book: Book


class Scanner:
    """Matches lines of output against watchers' patterns and decides on each match."""

    def __init__(self, log: _HasBook, context: Callable[[WatcherState, float], Context]) -> None:
        self.log = log
        self.context = context
        self.lines_scanned = 0
        self._patterns: dict[str, CompiledPattern] = {}

    def scan(
        self,
        ws: WatcherState,
        blob: bytes,
        count: int,
        now: float,
        out: tuple[list[Event], list[ActionBatch]],
    ) -> None:
        """Scan ``count`` lines in ``blob``; the decisions' events and batches go to ``out``."""
        events, batches = out
        self.lines_scanned += count
        if ws.state != "active":
            return
        pattern = self._patterns.get(ws.watcher_id)
        if pattern is None or pattern.source != ws.definition.pattern:  # new, or edited
            pattern = self._patterns[ws.watcher_id] = ws.definition.compiled()
        ctx = self.context(ws, now)
        book = self.log.book
        for m in pattern.scan(blob):
            if ws.state != "active":
                break
            evs: Sequence[Event] = on_match(ws, m, ctx)
            book.apply_all(evs)
            events.extend(evs)
            batches.extend(batches_for(book, ws, evs))
