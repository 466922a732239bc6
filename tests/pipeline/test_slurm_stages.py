"""Stages that run as SLURM jobs, end to end: the real `pivot run` on the real single-node SLURM.

The cluster is the suite's (tests/testkit/slurm_cluster.py: sched_interval=1,
so a job starts within a second or two); the CLI finds it through
``SLURM_CONF``. Every wait polls with a generous timeout.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pivot.events.pipeline import (
    StageAdopted,
    StageCancelled,
    StageFailed,
    StageJobState,
    StageSkipped,
    StageStarted,
    StageSubmitted,
    StageSucceeded,
)

from testkit import slurm_cluster, sshd_server
from testkit.jobs_servers import slurm, sshd  # noqa: F401 - pytest fixtures
from testkit.pipeline_project import PIVOT, Project
from testkit.slurm_project import SLURM_HEADER, WAITER, slurm_project
from testkit.slurm_project import job_state as _job_state
from testkit.slurm_project import stage_events as _events
from testkit.slurm_project import wait_until as _wait
from testkit.watch_e2e import Watch

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

MIXED = (
    SLURM_HEADER
    + """
import os


@pipeline.stage
def prep(raw: Annotated[Path, Dep("raw.txt")], out: Annotated[Path, Out("a.txt")]) -> None:
    out.write_text(raw.read_text().strip())


@pipeline.stage(slurm=Slurm(time="00:05:00", mem="100M", cpus=1))
def remote(a: Annotated[Path, Dep("a.txt")], out: Annotated[Path, Out("b.txt")]) -> None:
    print("hello from job", os.environ.get("SLURM_JOB_ID", "none"), flush=True)
    out.write_text(a.read_text() + "|" + os.environ.get("SLURM_JOB_ID", "none"))


@pipeline.stage
def final(b: Annotated[Path, Dep("b.txt")], out: Annotated[Path, Out("c.txt")]) -> None:
    out.write_text(b.read_text() + "|local:" + os.environ.get("SLURM_JOB_ID", "none"))
"""
)


@pytest.fixture
def project(slurm: slurm_cluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    yield from slurm_project(slurm, monkeypatch, "pivot-slurm-stages-")


def test_mixed_pipeline_runs_in_order_with_the_slurm_stage_in_a_real_job(
    project: Project, slurm: slurm_cluster.Cluster
) -> None:
    project.write("pipeline.py", MIXED)
    project.write("raw.txt", "one\n")
    proc = project.cli("run")
    [submitted] = _events(project.root, StageSubmitted)
    assert isinstance(submitted, StageSubmitted)
    job = submitted.job_id
    assert (submitted.stage, submitted.host) == ("remote", "local")
    assert submitted.resources == {"time": "00:05:00", "mem": "100M", "cpus": 1, "host": "local"}
    # In order: prep's output reached the job, the job's reached final; only
    # the SLURM stage saw a job id, and it is the job pivot submitted.
    assert project.read("c.txt") == f"one|{job}|local:none"
    assert _job_state(slurm, job) == "COMPLETED"
    ends = {
        e.stage: e for e in _events(project.root, StageSucceeded) if isinstance(e, StageSucceeded)
    }
    assert (ends["remote"].job_id, ends["prep"].job_id) == (job, "")
    assert f"remote: submitted as SLURM job {job} on local" in proc.stdout
    assert f"remote | hello from job {job}" in proc.stdout
    assert f"hello from job {job}" in project.read(".pivot/logs/remote.log")
    # The outcome file ends a job as far as the stage goes: a job this short
    # may be over before any poll saw it, so its states are not all there.
    states = {e.state for e in _events(project.root, StageJobState) if isinstance(e, StageJobState)}
    assert states <= {"pending", "running", "completing", "completed"}
    # The script Slurm ran: the resources as #SBATCH lines, the command quoted.
    script = slurm.run("scontrol", "write", "batch_script", job, "-").stdout
    assert "#SBATCH --mem=100M\n" in script and "#SBATCH --time=00:05:00\n" in script
    assert "-m pivot.pipeline.slurm_job" in script

    # Nothing changed: nothing is submitted.
    again = project.cli("run")
    assert "everything up to date" in again.stdout
    assert len(_events(project.root, StageSubmitted)) == 1
    # A data edit upstream: prep runs, the SLURM stage is submitted again.
    project.write("raw.txt", "two\n")
    project.cli("run")
    second = _events(project.root, StageSubmitted)
    assert len(second) == 2
    assert isinstance(second[1], StageSubmitted)
    assert project.read("c.txt") == f"two|{second[1].job_id}|local:none"


def test_executor_local_runs_the_slurm_stage_here(project: Project) -> None:
    project.write("pipeline.py", MIXED)
    project.write("raw.txt", "one\n")
    project.cli("run", "--executor", "local")
    assert project.read("c.txt") == "one|none|local:none"
    assert _events(project.root, StageSubmitted) == []


def test_executor_slurm_sends_every_stage_to_slurm(project: Project) -> None:
    project.write("pipeline.py", MIXED)
    project.write("raw.txt", "one\n")
    project.write("pivot.toml", '[slurm]\ntime = "00:02:00"\n')
    project.cli("run", "--executor", "slurm", "--slurm-jobs", "1")
    subs = [e for e in _events(project.root, StageSubmitted) if isinstance(e, StageSubmitted)]
    assert [e.stage for e in subs] == ["prep", "remote", "final"]
    assert subs[0].resources == {"time": "00:02:00", "host": "local"}
    assert project.read("c.txt") == f"one|{subs[1].job_id}|local:{subs[2].job_id}"


FAILING = (
    SLURM_HEADER
    + """
import os


@pipeline.stage(slurm=Slurm(time="00:05:00"))
def crash(out: Annotated[Path, Out("a.txt")]) -> None:
    os._exit(3)


@pipeline.stage
def after(a: Annotated[Path, Dep("a.txt")], out: Annotated[Path, Out("b.txt")]) -> None:
    out.write_text("never")


@pipeline.stage(slurm=Slurm(time="00:05:00"))
def raises(out: Annotated[Path, Out("c.txt")]) -> None:
    raise ValueError("bad row 3")


@pipeline.stage(slurm=Slurm(partition="nope"))
def refused(out: Annotated[Path, Out("d.txt")]) -> None:
    out.write_text("never")
"""
)


def test_failing_jobs_fail_their_stage_with_slurms_state_and_skip_downstream(
    project: Project,
) -> None:
    project.write("pipeline.py", FAILING)
    proc = project.cli("run", "--keep-going", ok=False)
    assert proc.returncode == 1
    failed = {e.stage: e for e in _events(project.root, StageFailed) if isinstance(e, StageFailed)}
    jobs = {
        e.stage: e.job_id
        for e in _events(project.root, StageSubmitted)
        if isinstance(e, StageSubmitted)
    }
    assert failed["crash"].error == f"FAILED exit 3 (SLURM job {jobs['crash']} on local)"
    # The end event names the job and how Slurm saw it end (for status, why, the page).
    crash = failed["crash"]
    assert (crash.job_id, crash.job_state, crash.exit_code) == (jobs["crash"], "failed", "3:0")
    assert (failed["raises"].job_id, failed["raises"].job_state) == (jobs["raises"], "failed")
    assert failed["refused"].job_id == ""
    assert failed["raises"].error == f"ValueError: bad row 3 (SLURM job {jobs['raises']} on local)"
    assert "ValueError: bad row 3" in failed["raises"].traceback
    assert failed["refused"].error == (
        "sbatch refused the job on local: invalid partition specified: nope; "
        "Batch job submission failed: Invalid partition name specified"
    )
    assert "refused" not in jobs
    [skipped] = [e for e in _events(project.root, StageSkipped) if isinstance(e, StageSkipped)]
    assert (skipped.stage, skipped.reason) == ("after", "upstream failed: crash")
    assert "Traceback" not in proc.stderr
    why = project.cli("why", "crash").stdout
    assert f"ran as SLURM job {jobs['crash']} on local (Slurm said: failed, exit code 3:0)" in why


SLEEPER = (
    SLURM_HEADER
    + """
import time


@pipeline.stage(slurm=Slurm(time="00:10:00"))
def slow(out: Annotated[Path, Out("a.txt")]) -> None:
    print("started", flush=True)
    time.sleep(300)
    out.write_text("late")
"""
)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_cancels_the_real_job_and_waits_for_its_end(
    project: Project, slurm: slurm_cluster.Cluster, signum: int
) -> None:
    project.write("pipeline.py", SLEEPER)
    proc = subprocess.Popen(
        [*PIVOT, "run"], cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ},
    )  # fmt: skip
    try:

        def running_job() -> str:
            if not (project.root / ".pivot/events.db").exists():
                return ""
            seen = [
                e.job_id
                for e in _events(project.root, StageJobState)
                if isinstance(e, StageJobState) and e.state == "running"
            ]
            log = project.root / ".pivot/logs/slow.log"
            return seen[0] if seen and log.exists() and "started" in log.read_text() else ""

        job = str(_wait(running_job, what="the job to run"))
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 128 + signum, err
    assert "Traceback" not in err
    # pivot returned only once Slurm said the job ended.
    assert _job_state(slurm, job) == "CANCELLED"
    assert "slow: cancelled" in out
    states = [
        (e.job_id, e.state)
        for e in _events(project.root, StageJobState)
        if isinstance(e, StageJobState)
    ]
    assert states[-1] == (job, "cancelled")
    [cancelled] = _events(project.root, StageCancelled)
    assert isinstance(cancelled, StageCancelled) and cancelled.job_id == job


def _running_job(root: Path) -> str:
    if not (root / ".pivot/events.db").exists():
        return ""
    seen = [
        e.job_id
        for e in _events(root, StageJobState)
        if isinstance(e, StageJobState) and e.state == "running"
    ]
    return seen[0] if seen else ""


def _kill_9_while_its_job_runs(project: Project, timeout: float = 90.0) -> str:
    """Start `pivot run` of WAITER, ``kill -9`` it once its job runs; the job's id.

    SIGKILL: no scancel and no record of the end, so the job goes on (it is the
    cluster's) for the next pivot to find.
    """
    project.write("pipeline.py", WAITER)
    first = subprocess.Popen(
        [*PIVOT, "run"], cwd=project.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        job = _wait(lambda: _running_job(project.root), timeout=timeout, what="the job to run")
        return str(job)
    finally:
        first.kill()
        first.wait()


def test_after_kill_9_the_next_run_adopts_the_running_job_without_submitting_again(
    project: Project, slurm: slurm_cluster.Cluster
) -> None:
    job = _kill_9_while_its_job_runs(project)
    assert _job_state(slurm, job) == "RUNNING"  # the job is the cluster's: it goes on
    second = subprocess.Popen(
        [*PIVOT, "run"], cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _wait(
            lambda: any(isinstance(e, StageAdopted) for e in _events(project.root, StageAdopted)),
            what="the job to be adopted",
        )
        (project.root / "go").write_text("")
        out, err = second.communicate(timeout=120)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, err
    assert f"slow: adopted SLURM job {job} on local" in out
    assert project.read("a.txt") == job
    assert len(_events(project.root, StageSubmitted)) == 1  # never submitted twice
    assert "up to date" in project.cli("status").stdout
    assert "everything up to date" in project.cli("run").stdout


def test_a_left_job_whose_inputs_changed_is_cancelled_and_a_new_one_submitted(
    project: Project, slurm: slurm_cluster.Cluster
) -> None:
    old = _kill_9_while_its_job_runs(project)
    # The stage's code changes while its job runs: that job's result would be stale.
    project.write("pipeline.py", WAITER.replace('print("started"', 'print("started again"'))
    second = subprocess.Popen(
        [*PIVOT, "run"], cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        _wait(lambda: len(_events(project.root, StageSubmitted)) == 2, what="a new job")
        assert _wait(lambda: _job_state(slurm, old) == "CANCELLED", what="the old job cancelled")
        (project.root / "go").write_text("")
        _, err = second.communicate(timeout=120)
    finally:
        if second.poll() is None:
            second.kill()
    assert second.returncode == 0, err
    subs = [e for e in _events(project.root, StageSubmitted) if isinstance(e, StageSubmitted)]
    assert subs[0].job_id == old
    assert _events(project.root, StageAdopted) == []
    assert project.read("a.txt") == subs[1].job_id


WATCHED = (
    SLURM_HEADER
    + """
import os
import time


@pipeline.stage(slurm=Slurm(time="00:05:00"))
def remote(raw: Annotated[Path, Dep("raw.txt")], out: Annotated[Path, Out("b.txt")]) -> None:
    if raw.read_text().strip() == "slow":
        print("sleeping", flush=True)
        time.sleep(300)
    out.write_text(raw.read_text().strip() + "|" + os.environ.get("SLURM_JOB_ID", "none"))
"""
)


def test_pivot_watch_runs_a_slurm_stage_as_a_job_and_ctrl_c_cancels_it(
    project: Project, slurm: slurm_cluster.Cluster
) -> None:
    project.write("pipeline.py", WATCHED)
    project.write("raw.txt", "one\n")
    watch = Watch(project.root)
    try:
        watch.wave_done(0)
        subs = watch.events("stage.submitted")
        assert [e["stage"] for e in subs] == ["remote"]
        assert project.read("b.txt") == f"one|{subs[0]['job_id']}"
        # A data edit: the next wave submits the stage again.
        mark = watch.mark()
        project.write("raw.txt", "two\n")
        watch.wave_done(mark)
        [again] = watch.events("stage.submitted", mark)
        assert project.read("b.txt") == f"two|{again['job_id']}"
        # Ctrl-C while a job runs: it is cancelled, and Slurm says so before pivot exits.
        mark = watch.mark()
        project.write("raw.txt", "slow\n")
        watch.wait_for(
            lambda _: any(e["state"] == "running" for e in watch.events("stage.job_state", mark)),
            timeout=180,
        )
        [slow] = watch.events("stage.submitted", mark)
        assert watch.interrupt() == 130, watch.stderr
        assert _job_state(slurm, slow["job_id"]) == "CANCELLED"
    finally:
        watch.close()


@pytest.mark.ssh
def test_a_stage_on_another_host_is_submitted_and_followed_over_ssh(
    project: Project, slurm: slurm_cluster.Cluster, sshd: sshd_server.Sshd
) -> None:
    project.write("pipeline.py", MIXED.replace('mem="100M", cpus=1', 'host="cluster"'))
    project.write("raw.txt", "one\n")
    project.write(
        "pivot.toml",
        f"""
        [hosts.cluster]
        hostname = "127.0.0.1"
        port = {sshd.port}
        username = "{sshd.user}"
        known_hosts = "{sshd.known_hosts}"
        identity_file = "{sshd.client_key}"
        env = {{SLURM_CONF = "{slurm.conf}"}}
        """,
    )
    # Not through this process's environment: only the host's env finds the cluster.
    env_conf = os.environ.pop("SLURM_CONF")
    try:
        proc = project.cli("run")
    finally:
        os.environ["SLURM_CONF"] = env_conf
    [submitted] = _events(project.root, StageSubmitted)
    assert isinstance(submitted, StageSubmitted)
    assert submitted.host == "cluster"
    assert project.read("c.txt") == f"one|{submitted.job_id}|local:none"
    assert f"remote: submitted as SLURM job {submitted.job_id} on cluster" in proc.stdout
    assert _job_state(slurm, submitted.job_id) == "COMPLETED"


def test_slurm_jobs_limits_the_jobs_in_flight_but_not_the_local_stages(project: Project) -> None:
    stages = "".join(
        f"""

@pipeline.stage(slurm=Slurm(time="00:05:00"))
def s{i}(out: Annotated[Path, Out("s{i}.txt")]) -> None:
    out.write_text("{i}")
"""
        for i in range(3)
    )
    project.write("pipeline.py", SLURM_HEADER + stages)
    project.cli("run", "--slurm-jobs", "1")

    order = [
        (type(e).__name__, e.stage)
        for e in _events(project.root, StageStarted, StageSucceeded)
        if isinstance(e, StageStarted | StageSucceeded)
    ]
    # One job at a time: each stage starts only once the one before it ended.
    assert [kind for kind, _ in order] == ["StageStarted", "StageSucceeded"] * 3
    assert sorted(name for _, name in order) == ["s0", "s0", "s1", "s1", "s2", "s2"]


def test_in_watch_a_change_while_the_job_runs_cancels_it_and_the_next_wave_submits_anew(
    project: Project, slurm: slurm_cluster.Cluster
) -> None:
    project.write("pipeline.py", WATCHED)
    project.write("raw.txt", "slow\n")
    watch = Watch(project.root)
    try:
        # Generous timeouts: jobs wait for the suite's one busy node. Not only
        # "running": the stage must have read its input (Slurm says running
        # before Python starts; a job that read the new input would complete).
        log = project.root / ".pivot/logs/remote.log"
        watch.wait_for(
            lambda _: (
                any(e["state"] == "running" for e in watch.events("stage.job_state"))
                and log.exists()
                and "sleeping" in log.read_text()
            ),
            timeout=180,
        )
        [old] = watch.events("stage.submitted")
        project.write("raw.txt", "fast\n")  # the running job's result would be stale
        watch.wait_for(lambda _: len(watch.events("wave.finished")) >= 2, timeout=180)
        story = "\n".join(map(str, watch.items))  # shown when an assertion fails
        cancels = [e for e in watch.events("stage.cancelled") if e["stage"] == "remote"]
        assert len(cancels) == 1, story
        [cancelled] = cancels
        assert cancelled["reason"] == (
            "its input changed while its job ran (raw.txt): submitted again in the next wave"
        ), story
        assert _job_state(slurm, old["job_id"]) == "CANCELLED", story
        subs = watch.events("stage.submitted")
        assert len(subs) == 2, story
        assert project.read("b.txt") == f"fast|{subs[1]['job_id']}", story
        assert watch.interrupt() == 130
    finally:
        watch.close()


def test_after_kill_9_pivot_watch_adopts_the_running_job_too(
    project: Project, slurm: slurm_cluster.Cluster
) -> None:
    job = _kill_9_while_its_job_runs(project, timeout=180)
    watch = Watch(project.root)
    try:
        [adopted] = watch.wait_for(lambda _: watch.events("stage.adopted"), timeout=120)
        assert adopted["job_id"] == job
        (project.root / "go").write_text("")
        watch.wait_for(lambda _: watch.events("stage.succeeded"), timeout=120)
        assert project.read("a.txt") == job
        assert len(_events(project.root, StageSubmitted)) == 1
        assert watch.interrupt() == 130
    finally:
        watch.close()
