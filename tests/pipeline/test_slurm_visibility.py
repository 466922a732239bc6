"""A SLURM stage's job is named by `pivot status`, `why` and `events`, on the real SLURM.

The job ids come from real jobs of the suite's single-node cluster
(tests/testkit/slurm_cluster.py); the stage waits for a file, so the test
looks while the job runs and again after it ended.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pivot.events.pipeline import StageAdopted, StageJobState
from pivot.events.store import EventStore

from testkit import slurm_cluster
from testkit.jobs_servers import slurm  # noqa: F401 - pytest fixture
from testkit.pipeline_project import PIVOT, Project
from testkit.slurm_project import WAITER, slurm_project

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture
def project(slurm: slurm_cluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    for project in slurm_project(slurm, monkeypatch, "pivot-slurm-vis-"):
        project.write("pipeline.py", WAITER)
        yield project


def _wait(cond: Callable[[], Any], timeout: float = 90.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _seen(root: Path, cls: type[StageJobState] | type[StageAdopted]) -> list[Any]:
    if not (root / ".pivot/events.db").exists():
        return []
    with EventStore.open(str(root / ".pivot/events.db")) as store:
        return [r.event for r in store.read(types=[cls.TYPE])]


def _running_job(root: Path) -> str:
    return next((e.job_id for e in _seen(root, StageJobState) if e.state == "running"), "")


def _start_run(project: Project) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PIVOT, "run"], cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip


def _status_job(project: Project) -> dict[str, Any]:
    doc = json.loads(project.cli("status", "--json").stdout)
    [row] = doc["stages"]
    assert row["runs_on"] == "slurm@local (00:10:00)"
    job: dict[str, Any] = row["job"]
    return job


def _finish(project: Project, run: subprocess.Popen[str]) -> None:
    (project.root / "go").write_text("")
    try:
        _, err = run.communicate(timeout=120)
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 0, err


def test_status_why_and_events_name_the_real_job_while_it_runs_and_after(
    project: Project,
) -> None:
    run = _start_run(project)
    try:
        job = _wait(lambda: _running_job(project.root), what="the job to run")
        running = _status_job(project)
        assert (running["job_id"], running["host"], running["state"]) == (job, "local", "running")
        assert not running["ended"]
        assert f"[SLURM job {job} on local: running]" in project.cli("status").stdout
    finally:
        _finish(project, run)
    assert project.read("a.txt") == job  # the id pivot shows is the job's own
    over = _status_job(project)
    assert (over["job_id"], over["ended"]) == (job, True)
    assert "SLURM job" not in project.cli("status").stdout  # no job in flight: no note
    why = project.cli("why", "slow").stdout
    assert f"ran as SLURM job {job} on local" in why, why
    [named] = json.loads(project.cli("why", "slow", "--json").stdout)["jobs"]
    assert (named["job_id"], named["host"], named["how"]) == (job, "local", "submitted")
    events = project.cli("events").stdout
    assert f"SLURM job {job} on local (00:10:00)" in events, events
    assert ".pivot/slurm/" not in events  # the run file is left to --json


def test_why_names_the_job_a_killed_pivot_left_and_the_run_that_adopted_it(
    project: Project,
) -> None:
    first = subprocess.Popen(
        [*PIVOT, "run"], cwd=project.root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        job = _wait(lambda: _running_job(project.root), what="the job to run")
    finally:
        first.kill()  # SIGKILL: nothing scancels the job; it runs on
        first.wait()
    assert f"[SLURM job {job} on local: running]" in project.cli("status").stdout
    second = _start_run(project)
    try:
        _wait(lambda: _seen(project.root, StageAdopted), what="the job to be adopted")
        adopted = _status_job(project)
        assert (adopted["job_id"], adopted["adopted"]) == (job, True)
    finally:
        _finish(project, second)
    why = project.cli("why", "slow").stdout
    assert f"adopted SLURM job {job} on local, submitted in wave" in why, why
    killed = json.loads(project.cli("why", "slow", "--run", "2", "--json").stdout)
    assert killed["outcome"] == "cancelled"
    assert [(j["job_id"], j["how"]) for j in killed["jobs"]] == [(job, "submitted")]
    assert os.path.exists(project.root / "a.txt")
