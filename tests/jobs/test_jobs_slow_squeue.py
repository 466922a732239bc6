"""A slow Slurm delays no read: lines are acted on while the host's squeue hangs.

The squeue on the PATH of the watchers' host here is the real one behind a
gate: while the file ``hold`` exists, a call says so (``asked``) and waits.
That is what an overloaded slurmctld does to every poll. The query runs on
the event loop and its answer comes back as a message, so the JobTailer
reads the outputs meanwhile (inotify's and the poll's reads alike); when
its thread waited for squeue, the line below waited with it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from pivot.events.store import EventStore
from pivot.events.watchers import ActionSucceeded
from pivot.jobs.config import Config, HostConfig
from pivot.jobs.definition import parse_watchers
from pivot.jobs.manage import add_watchers
from pivot.jobs.runtime import start_watchers

from testkit import slurm_cluster
from testkit.jobs_e2e import wait_for
from testkit.jobs_servers import job_dir, quiet_job, slurm  # noqa: F401 - pytest fixtures
from testkit.watched_job import ALERT_EVERY_SECOND

pytestmark = [pytest.mark.slurm]

GATE = """#!/bin/sh
# squeue behind a gate: while {gate}/hold exists, wait (a slurmctld that does not answer).
while [ -e "{gate}/hold" ]; do
  touch "{gate}/asked"
  sleep 0.05
done
exec {squeue} "$@"
"""


@pytest.fixture
def store(job_dir: Path) -> Iterator[EventStore]:
    s = EventStore.open(job_dir / "events.db")
    yield s
    s.close()


def logged(store: EventStore) -> list[str]:
    return [
        r.event.detail
        for r in store.read(types=[ActionSucceeded.TYPE])
        if isinstance(r.event, ActionSucceeded)
    ]


def test_lines_are_acted_on_while_the_hosts_squeue_hangs(
    slurm: slurm_cluster.Cluster, job_dir: Path, store: EventStore
) -> None:
    squeue = shutil.which("squeue")
    assert squeue is not None, "slurm-client's squeue is not on the PATH"
    gate = job_dir / "gate"
    gate.mkdir()
    (gate / "squeue").write_text(GATE.format(gate=gate, squeue=squeue))
    (gate / "squeue").chmod(0o755)
    env = {"SLURM_CONF": str(slurm.conf), "PATH": f"{gate}:/usr/bin:/bin"}
    config = Config(hosts={"local": HostConfig("local", env=env)})
    job_id = quiet_job(slurm, job_dir)
    output = job_dir / f"out-{job_id}.out"
    output.write_text("ALERT 1\n")
    add_watchers(store, parse_watchers(ALERT_EVERY_SECOND), job_id)
    handle = start_watchers(store, config, tick_seconds=0.1)
    try:
        wait_for(lambda: logged(store) == ["1"], what="the first poll's line", store=store)
        (gate / "hold").touch()
        wait_for((gate / "asked").exists, what="a squeue held at the gate")
        with output.open("a") as fh:
            fh.write("ALERT 2\n")
        wait_for(lambda: logged(store) == ["1", "2"], what="the line's action", store=store)
        assert (gate / "hold").exists()  # squeue is still waiting: nothing waited for it
        (gate / "hold").unlink()
        assert handle.poll_now()  # and its answer is recorded once it comes
        assert handle.running
    finally:
        (gate / "hold").unlink(missing_ok=True)
        handle.stop()
