"""A watched job's end as the JobTailer records it, on the real SLURM.

``squeue --states=all`` still lists a job that just ended, but gives no exit
code: the tailer asks ``scontrol`` for it, so ``job.ended`` says how the job
ended (``pivot watchers show``, the page and the stats read it there).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pivot.events.jobs import JobEnded
from pivot.events.store import EventStore
from pivot.jobs.config import Config
from pivot.jobs.definition import parse_watchers
from pivot.jobs.manage import add_watchers, submit_job
from pivot.jobs.runtime import start_watchers

from testkit import slurm_cluster
from testkit.jobs_e2e import events_of, job_state, wait_for
from testkit.jobs_servers import job_dir, make_config, slurm, store  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_job_ended_carries_the_exit_code_while_squeue_still_lists_the_job(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    config = make_config()
    gate = job_dir / "gate"
    script = (
        f"#!/bin/bash\n#SBATCH --output={job_dir}/e-%j.out\n"
        f"while [ ! -e {gate} ]; do sleep 0.1; done\nexit 3\n"
    )
    job = submit_job(store, config, "e.sh", script)
    add_watchers(store, parse_watchers("name: w\npattern: never\ninterval_seconds: 3600\n"
                                 "actions: [{type: cancel_job}]\n"),
                 job.job_id)  # fmt: skip
    wait_for(lambda: job_state(slurm, job.job_id) == "RUNNING", what="the job to start")
    runtime = start_watchers(store, config, tick_seconds=3600)
    try:
        assert runtime.poll_now()  # the tailer has seen the job running
        gate.touch()
        wait_for(lambda: job_state(slurm, job.job_id) == "FAILED", what="the job to fail")
        listed = slurm.run("squeue", "--noheader", "--states=all", f"--jobs={job.job_id}")
        assert job.job_id in listed.stdout  # the case: squeue lists it, without an exit code
        assert runtime.poll_now()
    finally:
        runtime.stop()
    [ended] = [e for e in events_of(store, JobEnded) if isinstance(e, JobEnded)]
    assert (ended.state, ended.exit_code) == ("failed", "3:0")


def test_a_watcher_added_after_its_job_ended_completes_and_slurm_is_asked_squeue_only(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    from pivot.jobs.book import fold

    config = make_config()
    script = f"#!/bin/bash\n#SBATCH --output={job_dir}/late-%j.out\necho done\n"
    job = submit_job(store, config, "late.sh", script)
    rule = "name: w\npattern: never\ninterval_seconds: 3600\nactions: [{type: cancel_job}]\n"
    add_watchers(store, parse_watchers(rule), job.job_id)
    wait_for(lambda: job_state(slurm, job.job_id) == "COMPLETED", what="the job to end")
    runtime = start_watchers(store, config, tick_seconds=3600)
    try:
        assert runtime.poll_now()  # the end is in the log; the first watcher completed
        [late] = add_watchers(store, parse_watchers(rule.replace("w\n", "late\n")), job.job_id)
        before = runtime.counters()["local"]
        for _ in range(3):
            assert runtime.poll_now()
        after = runtime.counters()["local"]
    finally:
        runtime.stop()
    asked = {c: after[c] - before[c] for c in ("cmd:squeue", "cmd:scontrol", "cmd:sacct")}
    assert asked["cmd:scontrol"] == asked["cmd:sacct"] == 0, asked
    assert fold(store.read()).watchers[late].state == "completed"
    assert len(events_of(store, JobEnded)) == 1  # the end is not recorded again
