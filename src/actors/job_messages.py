"""Typed messages of the job watchers' actors (JobTailer, ActionExecutor).

The action batches themselves are :class:`pivot.jobs.batch.ActionBatch`;
the inotify thread's wake-up is :class:`pivot.jobs.output_watch.OutputsGrew`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from pivot.jobs.job_lookup import JobQuery

__all__ = ["Drain", "JobsAnswered", "OutputWatchFailed", "PollTick", "WatchersStopped"]


@dataclass(frozen=True)
class PollTick:
    """Timer or handle -> JobTailer: time for a poll cycle.

    ``force``: poll every host now, whatever its interval; ``reply`` is set
    once the cycle's reads are done and its Slurm answers are recorded.
    """

    reply: threading.Event | None = None
    force: bool = False


@dataclass(frozen=True)
class JobsAnswered:
    """The event loop -> JobTailer: a host's Slurm query is back.

    ``answer`` is None when the query itself raised (``error`` says what):
    a bug, not an unreachable host (that is an answer, with its failures).
    """

    host: str
    generation: int  # the how-manieth query of this host (poll_now waits for its own)
    answer: JobQuery | None
    error: str = ""


@dataclass(frozen=True)
class OutputWatchFailed:
    """The inotify thread -> JobTailer: it stopped (the poll carries on)."""

    error: str


@dataclass(frozen=True)
class WatchersStopped:
    """JobTailer -> ActionExecutor: the watchers whose actions must not run any more
    (removed or disabled), as the tailer's fold of the log says at each tick."""

    watcher_ids: frozenset[str]


@dataclass(frozen=True)
class Drain:
    """Handle -> ActionExecutor: set ``done`` once every batch told before has run."""

    done: threading.Event
