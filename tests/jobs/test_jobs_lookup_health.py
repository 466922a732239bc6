"""A failing Slurm query is recorded when it starts failing and when it recovers, not per poll."""

from __future__ import annotations

from pivot.events.jobs import JobLookupFailed, JobLookupRecovered
from pivot.jobs.book import Book
from pivot.jobs.lookup_health import on_lookup_failure, on_lookup_success


def test_forty_failed_polls_are_two_events_with_the_count() -> None:
    health = None
    recorded = []
    for i in range(40):
        health, events = on_lookup_failure(health, "cluster", "squeue", f"refused {i}", 100.0 + i)
        recorded += events
    [failed] = recorded
    assert isinstance(failed, JobLookupFailed)
    assert (failed.host, failed.what, failed.error, failed.at) == (
        "cluster", "squeue", "refused 0", 100.0,
    )  # fmt: skip
    [recovered] = on_lookup_success(health, "cluster", "squeue", 200.0)
    assert isinstance(recovered, JobLookupRecovered)
    assert (recovered.failures, recovered.since, recovered.last_error) == (40, 100.0, "refused 39")
    assert on_lookup_success(None, "cluster", "squeue", 201.0) == []


def test_the_failing_state_is_folded_from_the_log() -> None:
    book = Book()
    _, [failed] = on_lookup_failure(None, "cluster", "stat", "gone", 5.0)
    book.apply(failed)
    # A restarted tailer knows it is failing: the next failure records nothing.
    health, events = on_lookup_failure(book.lookups.get(("cluster", "stat")), "cluster",
                                       "stat", "gone", 6.0)  # fmt: skip
    assert events == []
    assert health.failures == 2
    [recovered] = on_lookup_success(health, "cluster", "stat", 7.0)
    book.apply(recovered)
    assert book.lookups == {}
