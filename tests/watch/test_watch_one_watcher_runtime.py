"""One watcher runtime per process: the registry `pivot watch` and its waves share."""

from __future__ import annotations

from pivot.pipeline.slurm_watchers import hosted_here, hosting_here


def test_a_registration_holds_until_released_and_counts_each_holder() -> None:
    location = "/tmp/no-such-project/.pivot/events.db"
    assert not hosted_here(location)
    first = hosting_here(location)
    second = hosting_here(location)
    first()
    first()  # releasing twice takes back one registration only
    assert hosted_here(location)
    second()
    assert not hosted_here(location)
    assert not hosted_here("/tmp/another/.pivot/events.db")
