"""When the tailer polls and reconnects: pure decisions over plain data.

- A host is polled at the shortest ``interval_seconds`` of its live
  watchers (or ``[watchers] poll_seconds`` when set): :func:`host_interval`.
- A watcher's files are read at each poll of its host once its own interval
  has passed since its last read (:func:`watcher_due`). There is no backoff
  of quiet files: the stat that tells whether a file grew is one command
  per host (over SSH) or a system call (here) whatever the number of
  files, so a quiet file costs next to nothing, while a backed-off one
  left the first line after a quiet spell waiting up to 8 intervals (the
  p95 of ``bench/watchers_many.py`` was that wait).
- An unreachable SSH host is tried again after 1, 2, 4... seconds, up to a
  cap (:func:`reconnect_delay`).
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["host_interval", "reconnect_delay", "watcher_due"]


def host_interval(intervals: Iterable[float], poll_seconds: float = 0.0) -> float:
    """Seconds between two polls of a host whose live watchers ask for ``intervals``."""
    if poll_seconds:
        return poll_seconds
    return min(intervals)


def watcher_due(next_due: float | None, now: float, *, force: bool = False) -> bool:
    """Whether a watcher's files are read at this poll (``next_due``: None, never read)."""
    return force or next_due is None or now >= next_due


def reconnect_delay(failures: int, cap: float) -> float:
    """Seconds before connecting again after ``failures`` failed attempts in a row."""
    return min(cap, 2.0 ** (max(failures, 1) - 1))
