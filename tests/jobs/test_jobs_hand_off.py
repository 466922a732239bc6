"""A file's action batches leave the tailer as soon as they are durable, mid-cycle."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pivot.events.store import EventStore
from pivot.events.watchers import ActionRequested
from pivot.jobs.batch import ActionBatch
from pivot.jobs.config import Config
from pivot.jobs.definition import parse_watchers
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.manage import add_watchers
from pivot.jobs.tailer import Tailer
from pivot.jobs.transport import make_transports

from testkit import slurm_cluster
from testkit.jobs_servers import io, job_dir, make_config, quiet_job, slurm  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.slurm]

WATCHER = """\
name: alert
pattern: "ALERT ([0-9]+)"
interval_seconds: 0.5
max_triggers: 0
actions:
  - type: log_event
    params: {message: "$1"}
"""


def test_batches_are_handed_off_durable_before_the_cycle_ends(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    make_config: Callable[..., Config],
    io: IoLoop,
) -> None:
    config = make_config()
    store = EventStore.open(job_dir / "events.db")
    jobs = [quiet_job(slurm, job_dir) for _ in range(3)]
    for job_id in jobs:
        add_watchers(store, parse_watchers(WATCHER), job_id)
    handed: list[tuple[ActionBatch, set[str]]] = []

    def hand_off(batch: ActionBatch) -> None:
        # What the log holds at the moment of the hand-off.
        durable = {
            r.event.action_id
            for r in store.read(types=[ActionRequested.TYPE])
            if isinstance(r.event, ActionRequested)
        }
        handed.append((batch, durable))

    tailer = Tailer(store, config, make_transports(config), io, hand_off=hand_off)
    assert tailer.cycle(force=True) == []  # sees the jobs; nothing written yet
    for n, job_id in enumerate(jobs):
        with (job_dir / f"out-{job_id}.out").open("a") as fh:
            fh.write(f"noise\nALERT {n}\nALERT {n}0\n")
    returned = tailer.cycle(force=True)
    store.close()

    assert returned == []  # every batch left mid-cycle, none waited for the end
    assert len(handed) == 6
    for batch, durable in handed:
        assert {r.action_id for r in batch.requests} <= durable
    by_job: dict[str, list[str]] = {}
    for batch, _ in handed:
        by_job.setdefault(batch.job.job_id, []).extend(
            str(r.params["message"]) for r in batch.requests
        )
    assert by_job == {job_id: [f"{n}", f"{n}0"] for n, job_id in enumerate(jobs)}


def test_without_a_hand_off_the_cycle_returns_the_batches(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    make_config: Callable[..., Config],
    io: IoLoop,
) -> None:
    config = make_config()
    store = EventStore.open(job_dir / "events.db")
    job_id = quiet_job(slurm, job_dir)
    add_watchers(store, parse_watchers(WATCHER), job_id)
    tailer = Tailer(store, config, make_transports(config), io)
    tailer.cycle(force=True)
    (job_dir / f"out-{job_id}.out").write_text("ALERT 7\n")
    returned = tailer.cycle(force=True)
    store.close()
    assert [r.params["message"] for b in returned for r in b.requests] == ["7"]
