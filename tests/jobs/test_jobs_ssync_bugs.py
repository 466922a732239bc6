"""Each bug of ssync (see DESIGN.md) as a test against the real SLURM.

The pure ones are in the unit tests: shell injection (test_jobs_injection),
eval escapes (test_jobs_condition), `$1` inside `$10` (test_jobs_substitute),
the rate limit outside timer mode (test_jobs_decide), SSH commands per
watcher (test_jobs_ssh_e2e).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pivot.events.jobs import JobLookupFailed, JobLookupRecovered, OutputRead
from pivot.events.store import EventStore
from pivot.events.watchers import MetricStored, WatcherMatched, WatcherStateChanged
from pivot.jobs.config import Config, HostConfig
from pivot.jobs.definition import parse_watchers
from pivot.jobs.manage import add_watchers, submit_job
from pivot.jobs.runtime import start_watchers

from testkit import slurm_cluster
from testkit.jobs_e2e import events_of, job_state, wait_for
from testkit.jobs_servers import job_dir, make_config, slurm, sshd, store  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def gated_job(job_dir: Path, name: str, body: str) -> str:
    """A job that runs ``body``; ``wait_gate N`` blocks until the test creates gate N."""
    return (
        f"#!/bin/bash\n#SBATCH --output={job_dir}/{name}-%j.out\n"
        f"wait_gate() {{ while [ ! -e {job_dir}/gate-$1 ]; do sleep 0.1; done; }}\n{body}\n"
    )


def matches(store: EventStore) -> list[WatcherMatched]:
    return [e for e in events_of(store, WatcherMatched) if isinstance(e, WatcherMatched)]


def metrics(store: EventStore) -> list[float]:
    return [e.value for e in events_of(store, MetricStored) if isinstance(e, MetricStored)]


COUNTER = """\
name: counter
pattern: "^row (\\\\d+)$"
interval_seconds: 0.3
max_triggers: 0
rate_limit_per_minute: 100000
actions:
  - type: store_metric
    params: {name: row, value: $1}
"""


def test_restart_mid_stream_loses_and_repeats_nothing(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    # Rows 1-50, a row split across polls, then (after the restart) 52-100.
    body = (
        'for i in $(seq 1 50); do echo "row $i"; done\n'
        "printf 'row 5'\nwait_gate 1\nprintf '1\\n'\n"
        'wait_gate 2\nfor i in $(seq 52 100); do echo "row $i"; done\nwait_gate 3\n'
    )
    config = make_config()
    job = submit_job(store, config, "rows.sh", gated_job(job_dir, "rows", body))
    add_watchers(store, parse_watchers(COUNTER), job.job_id)
    runtime = start_watchers(store, config, tick_seconds=0.1)
    try:
        wait_for(lambda: len(metrics(store)) == 50, what="50 rows", store=store)
        assert runtime.poll_now()  # the partial "row 5" has been seen, not matched
        (job_dir / "gate-1").touch()
        wait_for(lambda: len(metrics(store)) == 51, what="row 51", store=store)
    finally:
        runtime.stop()
    (job_dir / "gate-2").touch()
    out = job_dir / f"rows-{job.job_id}.out"  # exists: 51 rows were read from it
    wait_for(lambda: out.read_bytes().endswith(b"row 100\n"), what="rows written")
    runtime = start_watchers(store, config, tick_seconds=0.1)
    try:
        wait_for(lambda: len(metrics(store)) >= 100, what="100 rows", store=store)
        assert runtime.poll_now()
        (job_dir / "gate-3").touch()
        wait_for(lambda: job_state(slurm, job.job_id) == "COMPLETED", what="job end")
        wait_for(
            lambda: any(
                isinstance(e, WatcherStateChanged) and e.new == "completed"
                for e in events_of(store, WatcherStateChanged)
            ),
            what="completed",
            store=store,
        )
    finally:
        runtime.stop()
    assert metrics(store) == [float(i) for i in range(1, 101)]


def test_megabytes_between_polls_are_all_scanned(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    # ssync read at most 1 MiB per poll: 5.5 MB in one poll must all be scanned.
    body = (
        "wait_gate 1\n"
        "python3 -c \"import sys; sys.stdout.write(''.join(f'filler line {i:09d} ' + 'x' * 70 "
        "+ '\\\\n' for i in range(60000)))\"\n"
        "echo 'MARK end of burst'\nsleep 300\n"
    )
    config = make_config()
    job = submit_job(store, config, "burst.sh", gated_job(job_dir, "burst", body))
    watcher = (
        "name: mark\npattern: 'MARK (.*)'\ninterval_seconds: 3600\n"
        "actions: [{type: log_event, params: {message: $1}}]\n"
    )
    add_watchers(store, parse_watchers(watcher), job.job_id)
    runtime = start_watchers(store, config, tick_seconds=3600)
    try:
        wait_for(lambda: job_state(slurm, job.job_id) == "RUNNING", what="running")
        assert runtime.poll_now()  # sees the job, empty output
        (job_dir / "gate-1").touch()
        # Slurm reports RUNNING before the step has created the output file:
        # wait for the file by its known name, never assume it is there yet.
        out = job_dir / f"burst-{job.job_id}.out"
        wait_for(
            lambda: out.exists() and out.read_bytes().endswith(b"MARK end of burst\n"),
            what="burst",
        )
        assert runtime.poll_now()  # ONE poll
        # Taken before scancel, which appends slurmstepd's "CANCELLED" line.
        size = out.stat().st_size
    finally:
        runtime.stop()
        slurm.run("scancel", job.job_id)
    [m] = matches(store)
    assert m.captures == {} and m.groups == ("end of burst",)
    reads = [e for e in events_of(store, OutputRead) if isinstance(e, OutputRead)]
    assert reads[-1].offset == size > 5_000_000


def test_replacement_is_detected_without_shrinking(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    # ssync noticed rotation only when a file shrank.
    body = "echo 'first version of the log, line one'\nsleep 300\n"
    config = make_config()
    job = submit_job(store, config, "rot.sh", gated_job(job_dir, "rot", body))
    watcher = (
        "name: v\npattern: '^(second|third) (.*)'\ninterval_seconds: 3600\nmax_triggers: 0\n"
        "actions: [{type: log_event, params: {message: $1}}]\n"
    )
    add_watchers(store, parse_watchers(watcher), job.job_id)
    runtime = start_watchers(store, config, tick_seconds=3600)
    try:
        out = job_dir / f"rot-{job.job_id}.out"
        wait_for(lambda: out.exists() and out.stat().st_size > 0, what="output")
        assert runtime.poll_now()
        size = out.stat().st_size
        # Same size, same inode, different content (cat new > log).
        same = b"second version, same size"
        out.write_bytes(same + b"x" * (size - len(same) - 1) + b"\n")
        assert out.stat().st_size == size
        assert runtime.poll_now()
        # A new file (new inode), larger than before.
        tmp = job_dir / "new.out"
        tmp.write_bytes(b"third version, a new and longer file than before\n" * 3)
        os.replace(tmp, out)
        assert runtime.poll_now()
    finally:
        runtime.stop()
        slurm.run("scancel", job.job_id)
    assert [m.groups[0] for m in matches(store)] == ["second", "third", "third", "third"]
    resets = [
        e.reset_reason for e in events_of(store, OutputRead)
        if isinstance(e, OutputRead) and e.reset_reason
    ]  # fmt: skip
    assert resets == ["replaced (different first bytes)", "replaced (new inode)"]


def test_lookup_failure_never_ends_a_watcher(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    # ssync marked a watcher completed when one squeue failed.
    good = make_config()
    job = submit_job(store, good, "l.sh", gated_job(job_dir, "l", "wait_gate 1\n"))
    watcher = "name: w\npattern: x\ninterval_seconds: 3600\nactions: [{type: cancel_job}]\n"
    add_watchers(store, parse_watchers(watcher), job.job_id)
    # With its config missing, every squeue fails: it times out (retrying to reach a
    # controller) or exits at once, depending on what else it finds on the machine.
    broken = Config(
        hosts={
            "local": HostConfig("local", env={"SLURM_CONF": "/nonexistent"}, command_timeout=1.0)
        }
    )
    runtime = start_watchers(store, broken, tick_seconds=3600)
    try:
        for _ in range(3):
            assert runtime.poll_now()
    finally:
        runtime.stop()
    failures = [e for e in events_of(store, JobLookupFailed) if isinstance(e, JobLookupFailed)]
    # Recorded when it starts failing, not on every poll (it was 3 events for 3 polls).
    assert [e.what for e in failures] == ["squeue"]
    assert "timed out" in failures[0].error or "squeue exited" in failures[0].error
    assert events_of(store, WatcherStateChanged) == []
    # Slurm reachable again: only its word ends the watcher.
    (job_dir / "gate-1").touch()
    wait_for(lambda: job_state(slurm, job.job_id) == "COMPLETED", what="job end")
    runtime = start_watchers(store, good, tick_seconds=3600)
    try:
        assert runtime.poll_now()
    finally:
        runtime.stop()
    [changed] = events_of(store, WatcherStateChanged)
    assert isinstance(changed, WatcherStateChanged)
    assert (changed.new, changed.reason) == ("completed", "job ended: completed")
    # The recovery is recorded once too, with what failed (the state came from the log).
    [recovered] = events_of(store, JobLookupRecovered)
    assert isinstance(recovered, JobLookupRecovered)
    assert (recovered.what, recovered.failures) == ("squeue", 1)
    assert recovered.last_error == failures[0].error


def test_stderr_and_both_keep_working_after_a_restart(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    body = (
        "echo 'out 1'; echo 'err 1' >&2\nwait_gate 1\necho 'out 2'; echo 'err 2' >&2\nwait_gate 2\n"
    )
    script = gated_job(job_dir, "split", body).replace(
        "#SBATCH --output", f"#SBATCH --error={job_dir}/split-%j.err\n#SBATCH --output"
    )
    config = make_config()
    job = submit_job(store, config, "split.sh", script)
    for kind in ("stderr", "both"):
        watcher = (
            f"name: {kind}\npattern: '^(out|err) (\\d)$'\noutput_type: {kind}\n"
            "interval_seconds: 0.3\nmax_triggers: 0\n"
            "actions: [{type: store_metric, params: {name: $1, value: $2}}]\n"
        )
        add_watchers(store, parse_watchers(watcher), job.job_id)

    def seen() -> list[tuple[str, float]]:
        return sorted(
            (e.name, e.value) for e in events_of(store, MetricStored) if isinstance(e, MetricStored)
        )

    runtime = start_watchers(store, config, tick_seconds=0.1)
    try:
        wait_for(lambda: len(seen()) == 3, what="first lines", store=store)
    finally:
        runtime.stop()
    (job_dir / "gate-1").touch()
    err = job_dir / f"split-{job.job_id}.err"
    wait_for(lambda: err.read_bytes().endswith(b"err 2\n"), what="second lines written")
    runtime = start_watchers(store, config, tick_seconds=0.1)
    try:
        wait_for(lambda: len(seen()) == 6, what="second lines", store=store)
        (job_dir / "gate-2").touch()
        wait_for(lambda: job_state(slurm, job.job_id) == "COMPLETED", what="end")
        assert runtime.poll_now()
    finally:
        runtime.stop()
    # stderr watcher: err 1, err 2; both: out 1, err 1, out 2, err 2; each exactly once.
    assert seen() == [
        ("err", 1.0), ("err", 1.0), ("err", 2.0), ("err", 2.0), ("out", 1.0), ("out", 2.0),
    ]  # fmt: skip
