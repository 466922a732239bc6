"""Failed Slurm lookups: record when a query starts failing and when it recovers, with a count.

An unreachable host fails on every poll; recording every attempt filled the
log (40 events in 40 s) and buried what mattered. Per host and kind of query
(``what``: ``host``, ``squeue``, ``scontrol``, ``sacct``, ``stat``,
``read``), only changes of state are events:

- the first failure after a success, or the first ever:
  ``job.lookup_failed`` with its error;
- further failures: counted, not recorded (the last error is kept);
- the first success after failures: ``job.lookup_recovered`` with the
  count, the time of the first failure and the last error.

The state is folded from the log (:class:`pivot.jobs.book.Book`), so a
restarted tailer facing a host still down records nothing new; the count in
``job.lookup_recovered`` is of the failures seen since the last record of
the failure (at least 1).
"""

from __future__ import annotations

from dataclasses import dataclass

from pivot.events.base import Event
from pivot.events.jobs import JobLookupFailed, JobLookupRecovered

__all__ = ["LookupHealth", "on_lookup_failure", "on_lookup_success"]


@dataclass(frozen=True, slots=True)
class LookupHealth:
    """A query that is failing: since when (event time), how many times, the last error."""

    since: float
    failures: int = 1
    last_error: str = ""


def on_lookup_failure(
    health: LookupHealth | None, host: str, what: str, error: str, now: float
) -> tuple[LookupHealth, list[Event]]:
    """A failed query: an event if it was not failing already, else one more in the count."""
    if health is None:
        return LookupHealth(since=now, last_error=error), [
            JobLookupFailed(host=host, what=what, error=error, at=now, actor="JobTailer")
        ]
    return LookupHealth(health.since, health.failures + 1, error), []


def on_lookup_success(health: LookupHealth | None, host: str, what: str, now: float) -> list[Event]:
    """A query that worked: ``job.lookup_recovered`` if it was failing, else nothing."""
    if health is None:
        return []
    return [
        JobLookupRecovered(
            host=host,
            what=what,
            failures=health.failures,
            since=health.since,
            last_error=health.last_error,
            at=now,
            actor="JobTailer",
        )
    ]
