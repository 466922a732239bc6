"""The same over SSH: a real sshd on loopback, host key verified, key auth."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from pivot.events.jobs import JobSubmitted
from pivot.events.store import EventStore
from pivot.events.watchers import ActionSucceeded, WatcherStateChanged
from pivot.jobs.config import Config, HostConfig
from pivot.jobs.definition import parse_watchers
from pivot.jobs.manage import add_watchers, submit_job
from pivot.jobs.runtime import start_watchers
from pivot.jobs.transport import SshTransport, TransportError

from testkit import slurm_cluster, sshd_server
from testkit.jobs_e2e import (
    ALERT_WHEN_ASKED,
    OOM_WATCHER,
    events_of,
    job_state,
    oom_script,
    wait_for,
)
from testkit.jobs_servers import job_dir, make_config, quiet_job, slurm, sshd, store  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.slurm, pytest.mark.ssh, pytest.mark.slow]


def test_oom_cancels_over_ssh(
    slurm: slurm_cluster.Cluster,
    sshd: sshd_server.Sshd,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    config = make_config(sshd)
    script = oom_script(job_dir)
    job = submit_job(store, config, "train.sh", script, host="cluster")
    add_watchers(store, parse_watchers(OOM_WATCHER), job.job_id, host="cluster")
    runtime = start_watchers(store, config, tick_seconds=0.2)
    try:
        wait_for(lambda: job_state(slurm, job.job_id) == "CANCELLED", what="cancel", store=store)
        wait_for(lambda: len(events_of(store, ActionSucceeded)) == 2, what="actions")
        counters = runtime.counters()["cluster"]
    finally:
        runtime.stop()
    assert counters["connects"] == 1  # one connection, reused for every command and read
    assert counters["cmd:squeue"] >= 1


def test_resubmit_over_ssh_of_a_job_pivot_did_not_submit(
    slurm: slurm_cluster.Cluster,
    sshd: sshd_server.Sshd,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    config = make_config(sshd)
    script = job_dir / "plain.sh"
    script.write_text(
        f"#!/bin/bash\n#SBATCH --output={job_dir}/plain-%j.out\n#SBATCH --mem=100M\n"
        "echo 'Killed: out of memory'\nexit 1\n"
    )
    r = slurm.run("sbatch", "--parsable", str(script))
    assert r.returncode == 0, r.stderr
    job_id = r.stdout.strip()
    watcher = (
        "name: more memory\npattern: 'out of memory'\ninterval_seconds: 0.5\n"
        "trigger_on_job_end: true\njob_end_states: [failed]\nactions:\n"
        "  - type: resubmit\n    params: {modifications: {mem: 200M}}\n"
    )
    add_watchers(store, parse_watchers(watcher), job_id, host="cluster")
    runtime = start_watchers(store, config, tick_seconds=0.2)
    try:
        [new] = wait_for(
            lambda: [e for e in events_of(store, JobSubmitted) if isinstance(e, JobSubmitted)],
            what="resubmission",
            store=store,
        )
    finally:
        runtime.stop()
    # The script came from Slurm (scontrol write batch_script), over SSH.
    assert "#SBATCH --mem=200M" in new.script_text
    assert "echo 'Killed: out of memory'" in new.script_text
    info = slurm.run("scontrol", "--oneliner", "show", "job", new.job_id).stdout
    assert "MinMemoryNode=200M" in info


def test_unknown_host_key_is_refused(sshd: sshd_server.Sshd, tmp_path: Path) -> None:
    other = tmp_path / "known_hosts"
    other.write_text(
        f"[127.0.0.1]:{sshd.port} ssh-ed25519 "
        "AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n"
    )
    host = HostConfig(
        "cluster",
        hostname="127.0.0.1",
        port=sshd.port,
        username="root",
        known_hosts=str(other),
        identity_file=str(sshd.client_key),
    )

    async def attempt() -> None:
        t = SshTransport(host)
        try:
            await t.run(["true"])
        finally:
            await t.close()

    with pytest.raises(TransportError, match="cannot connect"):
        asyncio.run(attempt())


def test_commands_per_poll_cycle_are_per_host_not_per_watcher(
    slurm: slurm_cluster.Cluster,
    sshd: sshd_server.Sshd,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    config = make_config(sshd)
    jobs = []
    for i in range(5):
        script = f"#!/bin/bash\n#SBATCH --output={job_dir}/many-%j.out\necho start {i}\nsleep 300\n"
        jobs.append(submit_job(store, config, f"j{i}.sh", script, host="cluster").job_id)
    quiet = (
        "name: w{n}\npattern: 'never matches {n}'\ninterval_seconds: 1\n"
        "actions: [{{type: cancel_job}}]\n"
    )
    for job_id in jobs:
        for n in range(4):  # 20 watchers on 5 jobs
            add_watchers(store, parse_watchers(quiet.format(n=n)), job_id, host="cluster")
    runtime = start_watchers(store, config, tick_seconds=3600)  # cycles only when asked
    try:
        assert runtime.poll_now()
        wait_for(lambda: all(job_state(slurm, j) == "RUNNING" for j in jobs), what="jobs running")
        # RUNNING comes before the script runs: wait for the one line each job writes, so
        # nothing grows during the measured cycle (docs/solutions/slurm-running-is-not-started.md).
        outputs = [job_dir / f"many-{j}.out" for j in jobs]
        expected = [f"start {i}\n" for i in range(len(jobs))]
        wait_for(
            lambda: [p.read_text() if p.is_file() else "" for p in outputs] == expected,
            what="each job's first line",
        )
        assert runtime.poll_now()  # first sight of outputs and states
        before = runtime.counters()["cluster"].copy()
        assert runtime.poll_now()
        after = runtime.counters()["cluster"]
    finally:
        runtime.stop()
        for j in jobs:
            slurm.run("scancel", j)
    per_cycle = {k: after[k] - before[k] for k in after if after[k] != before[k]}
    # One squeue and one batched stat for 20 watchers; no read (nothing grew: a file that
    # grew once, at the cycle before, is not read ahead: test_jobs_read_ahead.py).
    assert per_cycle == {"commands": 2, "cmd:squeue": 1, "cmd:stat": 1}
    assert not list(events_of(store, WatcherStateChanged))


def test_kept_sftp_handles_follow_rotation_and_replacement(
    slurm: slurm_cluster.Cluster,
    sshd: sshd_server.Sshd,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
) -> None:
    job_id = quiet_job(slurm, job_dir, prefix="quiet")
    out = job_dir / f"quiet-{job_id}.out"
    out.write_text("ALERT 1\n")
    add_watchers(store, parse_watchers(ALERT_WHEN_ASKED), job_id, host="cluster")
    runtime = start_watchers(store, make_config(sshd), tick_seconds=3600)  # cycles when asked

    def logged() -> list[str]:
        return [
            e.detail for e in events_of(store, ActionSucceeded) if isinstance(e, ActionSucceeded)
        ]

    def step(expected: list[str]) -> None:
        assert runtime.poll_now()
        wait_for(lambda: logged() == expected, what=f"actions {expected}", store=store)

    try:
        step(["1"])
        with out.open("a") as fh:
            fh.write("noise\nALERT 2\n")
        step(["1", "2"])
        opens = runtime.counters()["cluster"]["opens"]
        with out.open("a") as fh:
            fh.write("ALERT 3\n")
        step(["1", "2", "3"])
        assert runtime.counters()["cluster"]["opens"] == opens  # the same handle, kept
        out.rename(out.with_suffix(".out.1"))  # rotated: the kept handle is on the old file
        out.write_text("ALERT 4\n")
        step(["1", "2", "3", "4"])
        tmp = out.with_suffix(".tmp")
        tmp.write_text("ALERT 5\n")  # same size, atomic replace
        tmp.replace(out)
        step(["1", "2", "3", "4", "5"])
        out.write_text("ALERT 6\n")  # rewritten in place: same inode, new first bytes
        step(["1", "2", "3", "4", "5", "6"])
    finally:
        runtime.stop()
        slurm.run("scancel", job_id)
