"""End to end on a real SLURM: watchers cancel and resubmit real jobs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pivot.events.jobs import JobSubmitted
from pivot.events.store import EventStore
from pivot.events.watchers import (
    ActionFailed,
    ActionSucceeded,
    WatcherCreated,
    WatcherStateChanged,
)
from pivot.jobs.config import Config
from pivot.jobs.definition import parse_watchers
from pivot.jobs.manage import add_watchers, submit_job
from pivot.jobs.runtime import start_watchers

from testkit import slurm_cluster
from testkit.jobs_e2e import OOM_WATCHER, events_of, job_state, oom_script, wait_for
from testkit.jobs_servers import job_dir, make_config, slurm, sshd, store  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_oom_line_cancels_the_real_job(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    config = make_config()
    script = job_dir / "train.sh"
    script.write_text(oom_script(job_dir))
    submitted = submit_job(store, config, str(script), script.read_text())
    add_watchers(store, parse_watchers(OOM_WATCHER), submitted.job_id)
    runtime = start_watchers(store, config, tick_seconds=0.2)
    try:
        wait_for(
            lambda: job_state(slurm, submitted.job_id) == "CANCELLED", what="cancel", store=store
        )
        wait_for(lambda: len(events_of(store, ActionSucceeded)) == 2, what="both actions")
    finally:
        runtime.stop()
    done = [e for e in events_of(store, ActionSucceeded) if isinstance(e, ActionSucceeded)]
    assert [e.action_type for e in done] == ["cancel_job", "log_event"]
    assert done[1].detail == f"OOM on {submitted.job_id}: CUDA out of memory"
    states = [
        e.new for e in events_of(store, WatcherStateChanged) if isinstance(e, WatcherStateChanged)
    ]
    assert states == ["triggered"]  # max_triggers 1: done after its one firing


def resubmit_script(job_dir: Path) -> str:
    return f"""#!/bin/bash
#SBATCH --job-name=flaky
#SBATCH --output={job_dir}/flaky-%j.out
#WATCHER_BEGIN
# name: retry on failure
# pattern: "loss=([0-9.]+)"
# captures: [loss]
# interval_seconds: 0.5
# trigger_on_job_end: true
# job_end_states: [failed]
# actions:
#   - type: resubmit
#     params:
#       modifications: {{job-name: flaky-retry, time: "00:05:00"}}
#       remaining_resubmits: 1
#   - type: log_event
#     params: {{message: "${{JOB_ID}} ended ${{JOB_STATE}} at loss $loss"}}
#WATCHER_END
echo "loss=0.42"
exit 3
"""


def test_job_end_watcher_resubmits_a_failed_job_with_a_modified_option(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    config = make_config()
    script = job_dir / "flaky.sh"
    script.write_text(resubmit_script(job_dir))
    first = submit_job(store, config, str(script), script.read_text())
    assert len(first.watcher_ids) == 1
    runtime = start_watchers(store, config, tick_seconds=0.2, retry_delay=0.2)
    try:
        resubmits = wait_for(
            lambda: [
                e for e in events_of(store, JobSubmitted)
                if isinstance(e, JobSubmitted) and e.resubmit_of == first.job_id
            ],
            what="resubmission",
            store=store,
        )  # fmt: skip
        [new] = resubmits
        info = slurm.run("scontrol", "--oneliner", "show", "job", new.job_id).stdout
        assert "JobName=flaky-retry " in info
        assert "TimeLimit=00:05:00" in info
        # The copy carries one resubmit less, and its watcher is attached too.
        assert "remaining_resubmits: 0" in new.script_text
        created = [
            e for e in events_of(store, WatcherCreated)
            if isinstance(e, WatcherCreated) and e.job_id == new.job_id
        ]  # fmt: skip
        assert len(created) == 1
        # The retried job fails too; at 0 remaining, resubmit is refused (a failure).
        wait_for(
            lambda: any(
                isinstance(e, ActionFailed) and "remaining_resubmits is 0" in e.error
                for e in events_of(store, ActionFailed)
            ),
            what="refused second resubmit",
        )
    finally:
        runtime.stop()
    logs = [
        e.detail for e in events_of(store, ActionSucceeded)
        if isinstance(e, ActionSucceeded) and e.action_type == "log_event"
    ]  # fmt: skip
    assert f"{first.job_id} ended failed at loss 0.42" in logs
    assert len(list(events_of(store, JobSubmitted))) == 2
