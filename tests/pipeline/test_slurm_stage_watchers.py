"""SLURM stages with ``watchers=``, end to end: the real `pivot run` on the real single-node SLURM.

A watcher attached to a stage's job may cancel it and resubmit it (more
memory): the new job is the same stage run. Each job writes its own file,
``.pivot/logs/jobs/STAGE.JOBID.log``, so the watchers of the new job never read
what the first one wrote; ``.pivot/logs/STAGE.log`` points to the current job's.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pivot.events.jobs import JobSeen, JobSubmitted
from pivot.events.pipeline import StageFailed, StageSubmitted, StageSucceeded
from pivot.events.watchers import WatcherCreated, WatcherMatched

from testkit import slurm_cluster
from testkit.jobs_servers import slurm  # noqa: F401 - pytest fixture
from testkit.pipeline_project import PIVOT, Project
from testkit.slurm_project import SLURM_HEADER, job_state, slurm_project, stage_events, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture
def project(slurm: slurm_cluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    yield from slurm_project(slurm, monkeypatch, "pivot-slurm-watchers-")


OOM_STAGE = (
    SLURM_HEADER
    + """
import os
import time


@pipeline.stage(slurm=Slurm(time="00:05:00", mem="100M"), watchers=["watchers/oom.yaml"])
def train(out: Annotated[Path, Out("model.txt")]) -> None:
    mem = os.environ.get("SLURM_MEM_PER_NODE", "")
    print(f"job {os.environ['SLURM_JOB_ID']} with mem {mem}", flush=True)
    if mem != "200":
        print(f"RuntimeError: CUDA out of memory (mem {mem})", flush=True)
        time.sleep(60)  # the watcher cancels it; were it not to, it fails
        raise SystemExit(1)
    out.write_text(os.environ["SLURM_JOB_ID"] + " " + mem)


@pipeline.stage
def report(m: Annotated[Path, Dep("model.txt")], out: Annotated[Path, Out("report.txt")]) -> None:
    out.write_text("model " + m.read_text())
"""
)

OOM_YAML = """\
name: more memory
pattern: "CUDA out of memory"
interval_seconds: 0.5
max_triggers: 1
actions:
  - type: cancel_job
  - type: resubmit
    params: {modifications: {mem: 200M}}
"""


def test_an_oom_watcher_resubmits_with_more_memory_and_the_stage_succeeds_on_the_second_job(
    project: Project, slurm: slurm_cluster.Cluster
) -> None:
    project.write("pipeline.py", OOM_STAGE)
    project.write("watchers/oom.yaml", OOM_YAML)
    proc = project.cli("run")
    subs = [e for e in stage_events(project.root, StageSubmitted) if isinstance(e, StageSubmitted)]
    assert [(e.stage, e.resubmit_of) for e in subs] == [("train", ""), ("train", subs[0].job_id)]
    first, second = subs[0].job_id, subs[1].job_id
    # One stage run: the second job's result is the run's, downstream ran on it.
    assert project.read("model.txt") == f"{second} 200"
    assert project.read("report.txt") == f"model {second} 200"
    assert job_state(slurm, first) == "CANCELLED"
    assert f"train: submitted as SLURM job {second} on local, again for job {first}" in proc.stdout
    assert len(stage_events(project.root, StageFailed)) == 0
    ends = [e for e in stage_events(project.root, StageSucceeded) if isinstance(e, StageSucceeded)]
    assert [e.job_id for e in ends if e.stage == "train"] == [second]  # the job that counts
    # The watcher was attached to the stage's job, in the stage run's wave.
    [created, *_] = [
        e for e in stage_events(project.root, WatcherCreated) if isinstance(e, WatcherCreated)
    ]
    assert (created.job_id, created.correlation_id) == (first, subs[0].correlation_id)
    why = project.cli("why", "train").stdout  # one run, both its jobs
    assert f"ran as SLURM job {first} on local" in why, why
    assert f"resubmitted by a watcher as SLURM job {second} on local, for job {first}" in why
    assert "everything up to date" in project.cli("run").stdout
    # Each job wrote its own file; the stage's log is the job that counts.
    logs = project.root / ".pivot/logs/jobs"
    assert "CUDA out of memory" in (logs / f"train.{first}.log").read_text()
    assert (logs / f"train.{second}.log").read_text() == f"job {second} with mem 200\n"
    assert os.readlink(logs.parent / "train.log") == f"jobs/train.{second}.log"
    assert project.read(".pivot/logs/train.log") == f"job {second} with mem 200\n"
    # A new run of the stage: the first run's files go when it is submitted.
    project.cli("run", "--force", "train")
    again = _submitted(project.root)[2:]
    assert len(again) == 2, again  # (out of memory again, resubmitted again)
    assert sorted(p.name for p in logs.glob("train.*.log")) == sorted(
        f"train.{job}.log" for job in again
    )
    assert project.read(".pivot/logs/train.log") == f"job {again[1]} with mem 200\n"


def test_watcher_files_are_checked_when_the_pipeline_loads(project: Project) -> None:
    project.write("pipeline.py", OOM_STAGE)
    proc = project.cli("status", ok=False)
    assert proc.returncode == 2
    assert "stage 'train': cannot read watcher file watchers/oom.yaml" in proc.stderr
    project.write("watchers/oom.yaml", OOM_YAML.replace("pattern:", "patern:"))
    proc = project.cli("status", ok=False)
    assert "stage 'train': watchers/oom.yaml:2: " in proc.stderr, proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def _submitted(root: Path) -> list[str]:
    """The jobs of the stage's ``stage.submitted`` events, in order."""
    return [e.job_id for e in stage_events(root, StageSubmitted) if isinstance(e, StageSubmitted)]


def _waiting_resubmit(root: Path) -> str:
    """The job a watcher resubmitted, once the job watchers' tailer saw it pending."""
    resubmitted = {
        e.job_id for e in stage_events(root, JobSubmitted)
        if isinstance(e, JobSubmitted) and e.resubmit_of
    }  # fmt: skip
    seen = [
        e.job_id for e in stage_events(root, JobSeen)
        if isinstance(e, JobSeen) and e.job_id in resubmitted and e.state == "pending"
    ]  # fmt: skip
    return seen[0] if seen else ""


def test_a_resubmitted_job_waiting_in_the_queue_is_not_cancelled_for_its_predecessors_output(
    project: Project, slurm: slurm_cluster.Cluster
) -> None:
    # On a busy cluster the job with more memory waits in the queue, while
    # the stage's log still holds the first job's "CUDA out of memory": its
    # watcher, reading that, cancelled the new job (a flake here when the
    # new job was pending for a moment). It waits here until the test lets it go.
    project.write("pipeline.py", OOM_STAGE)
    project.write(
        "watchers/oom.yaml", OOM_YAML.replace("{mem: 200M}", "{mem: 200M, begin: now+3600}")
    )
    proc = subprocess.Popen(
        [*PIVOT, "run"], cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        second = str(
            wait_until(lambda: _waiting_resubmit(project.root), what="the new job, pending")
        )
        # The tailer of the watchers saw it pending; the old job's line is in
        # the old job's file, the new job (not started) has none yet.
        first = subs[0] if (subs := _submitted(project.root)) else ""
        assert "CUDA out of memory" in project.read(f".pivot/logs/jobs/train.{first}.log")
        assert not (project.root / f".pivot/logs/jobs/train.{second}.log").exists()
        slurm.run("scontrol", "update", f"JobId={second}", "StartTime=now")
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out + err
    assert project.read("model.txt") == f"{second} 200"
    assert stage_events(project.root, StageFailed) == []
    created = [
        e for e in stage_events(project.root, WatcherCreated) if isinstance(e, WatcherCreated)
    ]
    [new_watcher] = [e.watcher_id for e in created if e.job_id == second]
    matched = [
        e for e in stage_events(project.root, WatcherMatched) if isinstance(e, WatcherMatched)
    ]
    assert [e.watcher_id for e in matched if e.watcher_id == new_watcher] == []
    assert len(matched) == 1  # the first job's line, by the first job's watcher
    assert job_state(slurm, second) == "COMPLETED"
    assert project.read(".pivot/logs/train.log") == f"job {second} with mem 200\n"
    assert "CUDA" not in project.read(f".pivot/logs/jobs/train.{second}.log")
