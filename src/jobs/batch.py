"""What the tailer hands the ActionExecutor: one watcher's intents, with their job."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pivot.events.base import Event
from pivot.events.watchers import ActionRequested
from pivot.jobs.actions import JobContext
from pivot.jobs.book import Book, WatcherState

__all__ = ["ActionBatch", "batch_for", "batches_for"]


@dataclass(frozen=True)
class ActionBatch:
    """Intents of one watcher, in order, for the ActionExecutor."""

    requests: tuple[ActionRequested, ...]
    job: JobContext
    max_failures: int
    consecutive_failures: int
    record_first: bool = False  # a retry: the first intent is not in the log yet
    # The watcher's state once the decision was folded (a firing may have made it
    # `triggered`): the `old` of a later state change, such as `disabled`.
    watcher_state: str = "active"


def batch_for(book: Book, ws: WatcherState, reqs: Sequence[ActionRequested]) -> ActionBatch:
    """The batch running ``reqs`` of ``ws``, with what its actions need to know of the job."""
    rec = book.job(ws.host, ws.job_id)
    others = tuple(
        (w.name, w.definition.to_dict())
        for w in book.watchers.values()
        if w.job_id == ws.job_id and w.host == ws.host and w.state != "removed"
    )
    job = JobContext(
        host=ws.host,
        job_id=ws.job_id,
        script_text=rec.script_text,
        workdir=rec.workdir,
        watchers=others,
    )
    return ActionBatch(
        tuple(reqs),
        job,
        ws.definition.max_failures,
        ws.consecutive_failures,
        watcher_state=ws.state,
    )


def batches_for(book: Book, ws: WatcherState, events: Sequence[Event]) -> list[ActionBatch]:
    """A batch for the intents among ``events`` (none if there are none)."""
    reqs = [e for e in events if isinstance(e, ActionRequested)]
    return [batch_for(book, ws, reqs)] if reqs else []
