"""The watchers' book: every watcher's and job's state, folded from the event log.

:func:`fold` is the only way state is built: at start-up from the whole log,
then event by event as the runtime appends or reads new ones. Nothing else
is persisted, so what the log says is what a restarted pivot does.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field

from pivot.events.base import Event
from pivot.events.jobs import (
    JobEnded,
    JobLookupFailed,
    JobLookupRecovered,
    JobSeen,
    JobStateChanged,
    JobSubmitted,
    OutputRead,
)
from pivot.events.store import Recorded
from pivot.events.watchers import (
    ActionFailed,
    ActionInterrupted,
    ActionRequested,
    ActionSucceeded,
    ActionSuppressed,
    VariablesCaptured,
    WatcherCreated,
    WatcherEdited,
    WatcherMatched,
    WatcherPaused,
    WatcherRemoved,
    WatcherResumed,
    WatcherStateChanged,
    WatcherTimerFired,
)
from pivot.jobs.action_spec import OUTSIDE_ACTIONS
from pivot.jobs.definition import WatcherDefinition, definition_from_dict
from pivot.jobs.lookup_health import LookupHealth
from pivot.jobs.tail import Position

__all__ = ["Book", "JobRecord", "WatcherState", "fold"]

RATE_WINDOW_SECONDS = 60.0


@dataclass
class WatcherState:
    """Everything the runtime needs to know about one watcher."""

    watcher_id: str
    name: str
    job_id: str
    host: str
    definition: WatcherDefinition
    state: str = "active"
    created_at: float = 0.0
    trigger_count: int = 0
    match_count: int = 0
    consecutive_failures: int = 0
    variables: dict[str, str] = field(default_factory=dict)
    last_whole: str = ""
    last_groups: tuple[str, ...] = ()
    first_fired_at: float = 0.0
    last_timer_at: float = 0.0
    positions: dict[str, Position] = field(default_factory=dict)
    recent_actions: deque[float] = field(default_factory=deque)
    pending: dict[str, ActionRequested] = field(default_factory=dict)
    actions_succeeded: int = 0
    actions_failed: int = 0
    actions_suppressed: int = 0

    @property
    def live(self) -> bool:
        """Still watching output (active or paused, not finished or removed)."""
        return self.state in ("active", "paused")


@dataclass
class JobRecord:
    """What the log says about one job on one host."""

    host: str
    job_id: str
    state: str = ""
    ended: bool = False
    name: str = ""
    user: str = ""
    stdout: str = ""
    stderr: str = ""
    workdir: str = ""
    script_text: str = ""
    seen: bool = False


@dataclass
class Book:
    """All watchers and jobs, and the log position they reflect."""

    watchers: dict[str, WatcherState] = field(default_factory=dict)
    jobs: dict[tuple[str, str], JobRecord] = field(default_factory=dict)
    # Queries failing now, by (host, what): see pivot.jobs.lookup_health.
    lookups: dict[tuple[str, str], LookupHealth] = field(default_factory=dict)
    seq: int = 0

    def job(self, host: str, job_id: str) -> JobRecord:
        """The job's record, created empty when first asked for."""
        key = (host, job_id)
        rec = self.jobs.get(key)
        if rec is None:
            rec = self.jobs[key] = JobRecord(host=host, job_id=job_id)
        return rec

    def apply(self, ev: Event) -> None:
        """Fold one event in (unknown event types are ignored)."""
        _apply(self, ev)

    def apply_all(self, events: Iterable[Event]) -> None:
        """Fold several events in."""
        for ev in events:
            _apply(self, ev)


def fold(records: Iterable[Recorded], book: Book | None = None) -> Book:
    """Fold recorded events into ``book`` (a new one when None); returns it."""
    book = book if book is not None else Book()
    for rec in records:
        _apply(book, rec.event)
        book.seq = max(book.seq, rec.seq)
    return book


def _apply(book: Book, ev: Event) -> None:  # noqa: PLR0912, PLR0915 - one branch per event type
    if isinstance(ev, WatcherCreated):
        book.watchers[ev.watcher_id] = WatcherState(
            watcher_id=ev.watcher_id,
            name=ev.name,
            job_id=ev.job_id,
            host=ev.host,
            definition=definition_from_dict(ev.definition),
            created_at=ev.at,
        )
        book.job(ev.host, ev.job_id)
        return
    if isinstance(ev, JobSeen | JobStateChanged | JobEnded | JobSubmitted):
        _apply_job(book, ev)
        return
    if isinstance(ev, JobLookupFailed):
        book.lookups[(ev.host, ev.what)] = LookupHealth(since=ev.at, last_error=ev.error)
        return
    if isinstance(ev, JobLookupRecovered):
        book.lookups.pop((ev.host, ev.what), None)
        return
    ws = book.watchers.get(getattr(ev, "watcher_id", ""))
    if ws is None:
        return
    if isinstance(ev, WatcherStateChanged):
        ws.state = ev.new
    elif isinstance(ev, WatcherEdited):
        ws.name = ev.name
        ws.definition = definition_from_dict(ev.definition)
    elif isinstance(ev, WatcherPaused):
        if ws.state == "active":
            ws.state = "paused"
    elif isinstance(ev, WatcherResumed):
        if ws.state == "paused":
            ws.state = "active"
    elif isinstance(ev, WatcherRemoved):
        ws.state = "removed"
    elif isinstance(ev, WatcherMatched):
        ws.match_count += 1
        ws.last_whole = ev.whole
        ws.last_groups = tuple(ev.groups)
        if ev.fired:
            ws.trigger_count += 1
            ws.first_fired_at = ws.first_fired_at or ev.at
    elif isinstance(ev, VariablesCaptured):
        ws.variables.update(ev.variables)
    elif isinstance(ev, ActionRequested):
        ws.pending[ev.action_id] = ev
        if ev.attempt == 1 and ev.action_type in OUTSIDE_ACTIONS:
            ws.recent_actions.append(ev.at)
            while ws.recent_actions and ws.recent_actions[0] <= ev.at - RATE_WINDOW_SECONDS:
                ws.recent_actions.popleft()
    elif isinstance(ev, ActionSucceeded):
        ws.pending.pop(ev.action_id, None)
        ws.consecutive_failures = 0
        ws.actions_succeeded += 1
    elif isinstance(ev, ActionFailed):
        ws.pending.pop(ev.action_id, None)
        if not ev.refused:  # a refused argument is the match's error, not the watcher's
            ws.consecutive_failures += 1
        ws.actions_failed += 1
    elif isinstance(ev, ActionInterrupted):
        if not ev.retried:
            ws.pending.pop(ev.action_id, None)
    elif isinstance(ev, WatcherTimerFired):
        ws.last_timer_at = ev.at
    elif isinstance(ev, OutputRead):
        ws.positions[ev.path] = Position(
            path=ev.path,
            offset=ev.offset,
            inode=ev.inode,
            head_len=ev.head_len,
            head_hash=ev.head_hash,
        )
    elif isinstance(ev, ActionSuppressed):
        ws.actions_suppressed += 1
        if ev.action_id:
            ws.pending.pop(ev.action_id, None)


def _apply_job(book: Book, ev: JobSeen | JobStateChanged | JobEnded | JobSubmitted) -> None:
    rec = book.job(ev.host, ev.job_id)
    if isinstance(ev, JobSeen):
        rec.seen = True
        rec.state = ev.state or rec.state
        rec.name, rec.user = ev.name, ev.user
        rec.stdout, rec.stderr, rec.workdir = ev.stdout, ev.stderr, ev.workdir
    elif isinstance(ev, JobStateChanged):
        rec.state = ev.new
    elif isinstance(ev, JobEnded):
        rec.state = ev.state
        rec.ended = True
    else:
        rec.script_text = ev.script_text
