"""A SLURM stage's ``watchers=``: attached to each job it submits, their resubmits followed.

``@pipeline.stage(slurm=Slurm(...), watchers=["watchers/oom.yaml"])`` attaches
the watchers of those files to every job the stage submits
(``watcher.created`` events naming the job, in the stage run's wave). The job
watchers of the project run where they always run (one host per project,
:mod:`pivot.jobs.host_lease`): `pivot run` hosts them itself while it has
SLURM jobs with watchers, unless `pivot watch`, `pivot ui` or `pivot
watchers run` already does. A process that runs a watcher runtime of its
own for the project (`pivot watch`) says so with :func:`hosting_here`: its
waves then start none; their watchers attach to that runtime through the
log (one runtime per process, never one standing by behind its own).

A watcher's ``resubmit`` (out of memory -> the same script with more memory)
submits a new job for the same stage run: the job writes the same outcome
file, so its result is the run's. So a job that ended without success is
not the end of its stage run while its watchers may still act:
:func:`settled` says when they are done (no watcher of the job still live,
no action of theirs without a result), and :class:`StageWatchers` tells the
executor of a resubmission (``job.submitted`` with ``resubmit_of``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pivot.events.base import Event
from pivot.events.jobs import JobSubmitted
from pivot.events.store import EventStore
from pivot.events.watchers import WatcherCreated
from pivot.jobs.book import Book, fold
from pivot.jobs.config import Config
from pivot.jobs.definition import WatcherDefinition, parse_watchers

if TYPE_CHECKING:
    from pivot.jobs.runtime import WatcherRuntime

__all__ = [
    "SETTLE_SECONDS",
    "StageWatchers",
    "hosted_here",
    "hosting_here",
    "load_definitions",
    "settled",
]

# How long a failed job's watchers may take to act on its end before the
# stage fails without them (their host may be down or slow).
SETTLE_SECONDS = 120.0


# The event stores (by location) whose job watchers a runtime of this process
# hosts or stands by for; a count, so two registrations need two releases.
_HOSTED: dict[str, int] = {}
_HOSTED_LOCK = threading.Lock()


def hosting_here(location: str) -> Callable[[], None]:
    """Say that this process runs a watcher runtime for the store at ``location``;
    returns the function that takes it back (once the runtime stopped)."""
    with _HOSTED_LOCK:
        _HOSTED[location] = _HOSTED.get(location, 0) + 1
    released = False

    def release() -> None:
        nonlocal released
        with _HOSTED_LOCK:
            if released:
                return
            released = True
            left = _HOSTED.pop(location) - 1
            if left:
                _HOSTED[location] = left

    return release


def hosted_here(location: str) -> bool:
    """Whether this process already runs a watcher runtime for the store at ``location``."""
    with _HOSTED_LOCK:
        return location in _HOSTED


def load_definitions(root: str, files: Sequence[str]) -> list[WatcherDefinition]:
    """The watchers of a stage's files (checked when the pipeline was loaded)."""
    found: list[WatcherDefinition] = []
    for rel in files:
        found += parse_watchers((Path(root) / rel).read_text(encoding="utf-8"), rel)
    return found


def settled(book: Book, host: str, job_id: str) -> bool:
    """Whether every watcher of the job is done with it: none live, no action pending."""
    mine = [w for w in book.watchers.values() if (w.host, w.job_id) == (host, job_id)]
    return all(not w.live and not w.pending for w in mine)


class StageWatchers:
    """The watchers of this run's jobs: attach them, host them if no one does, read the log."""

    def __init__(self, store: EventStore, config: Config, actor: str = "pivot run") -> None:
        self.store, self.config, self.actor = store, config, actor
        self.book = Book()
        self._resubmits: dict[tuple[str, str], str] = {}  # (host, old job) -> new job
        self._runtime: WatcherRuntime | None = None

    def attach(
        self, definitions: Sequence[WatcherDefinition], job_id: str, host: str, correlation_id: str
    ) -> list[Event]:
        """The events attaching ``definitions`` to the job; hosts the watchers if needed."""
        self._host()
        return [
            WatcherCreated(
                watcher_id=uuid.uuid4().hex[:12], name=d.name, job_id=job_id, host=host,
                definition=d.to_dict(), actor=self.actor, correlation_id=correlation_id,
            )
            for d in definitions
        ]  # fmt: skip

    def refresh(self) -> None:
        """Fold what the log gained since the last call."""
        records = list(self.store.read(after=self.book.seq))
        fold(records, self.book)
        for rec in records:
            ev = rec.event
            if isinstance(ev, JobSubmitted) and ev.resubmit_of:
                self._resubmits[(ev.host, ev.resubmit_of)] = ev.job_id

    def resubmitted(self, host: str, job_id: str) -> str:
        """The job a watcher resubmitted ``job_id`` as, "" when none did."""
        return self._resubmits.get((host, job_id), "")

    def settled(self, host: str, job_id: str) -> bool:
        """See :func:`settled`."""
        return settled(self.book, host, job_id)

    def _host(self) -> None:
        # The process's own runtime (`pivot watch`) reads the log: it hosts these too.
        if self._runtime is None and not hosted_here(self.store.location):
            from pivot.jobs.runtime import start_watchers

            self._runtime = start_watchers(self.store, self.config, command=self.actor)

    def close(self) -> None:
        """Stop hosting the watchers (the lease goes to whoever stands by)."""
        runtime, self._runtime = self._runtime, None
        if runtime is not None:
            runtime.stop()
