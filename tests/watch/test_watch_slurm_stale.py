"""`pivot watch` with SLURM stages on the real single-node SLURM: a code edit of a
stage whose job runs cancels the job; the next wave submits it with the new code.

The cluster is the suite's (tests/testkit/slurm_cluster.py); every wait polls
with a generous timeout (jobs wait for the suite's one busy node).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from testkit import slurm_cluster
from testkit.jobs_servers import slurm  # noqa: F401 - pytest fixture
from testkit.pipeline_project import Project
from testkit.slurm_project import SLURM_HEADER, slurm_project
from testkit.watch_e2e import Watch

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

PIPELINE = (
    SLURM_HEADER
    + """
import inspect
import os
import time

from helpers import VERSION

if any(f.function == "exec_pipeline" for f in inspect.stack(0)):  # a load, not a stage's run
    with Path(".pivot/test-loads.log").open("a") as log:
        print("loaded", file=log)


@pipeline.stage(slurm=Slurm(time="00:05:00"))
def remote(raw: Annotated[Path, Dep("raw.txt")], out: Annotated[Path, Out("b.txt")]) -> None:
    if VERSION == "old":
        print("sleeping", flush=True)
        time.sleep(300)
    out.write_text(VERSION + "|" + os.environ.get("SLURM_JOB_ID", "none"))


@pipeline.stage
def other(raw: Annotated[Path, Dep("raw.txt")], out: Annotated[Path, Out("o.txt")]) -> None:
    out.write_text("other 1")
"""
)


@pytest.fixture
def project(slurm: slurm_cluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    yield from slurm_project(slurm, monkeypatch, "pivot-watch-slurm-")


def _job_state(slurm: slurm_cluster.Cluster, job_id: str) -> str:
    out = slurm.run("scontrol", "--oneliner", "show", "job", job_id).stdout
    return next((f.split("=", 1)[1] for f in out.split() if f.startswith("JobState=")), "")


def _sleeping(watch: Watch, project: Project) -> bool:
    # Not only "running": Slurm says so before Python starts; the stage must be asleep.
    log = project.root / ".pivot/logs/remote.log"
    running = any(e["state"] == "running" for e in watch.events("stage.job_state"))
    return running and log.exists() and "sleeping" in log.read_text()


def _loads(project: Project) -> int:
    # How many times the pipeline was loaded (pipeline.py counts its loads, see PIPELINE).
    return project.read(".pivot/test-loads.log").count("loaded")


def test_a_code_edit_while_the_job_runs_cancels_it_and_the_next_wave_runs_the_new_code(
    project: Project, slurm: slurm_cluster.Cluster
) -> None:
    project.write("pipeline.py", PIPELINE)
    project.write("helpers.py", 'VERSION = "old"\n')
    project.write("raw.txt", "x\n")
    watch = Watch(project.root)
    try:
        watch.wait_for(lambda _: _sleeping(watch, project), timeout=180)
        [old] = watch.events("stage.submitted")
        # An edit of another stage's code does not touch the job.
        mark = watch.mark()
        project.write("pipeline.py", PIPELINE.replace('"other 1"', '"other 2"'))
        [checked] = watch.wait_for(lambda _: watch.events("wave.code_checked", mark), timeout=120)
        assert checked["stale"] == [], "\n".join(map(str, watch.items))
        [wave] = watch.events("wave.started")  # the check names the wave it checked
        assert checked["wave_id"] == wave["wave_id"], "\n".join(map(str, watch.items))
        assert _job_state(slurm, old["job_id"]) == "RUNNING", "\n".join(map(str, watch.items))
        # An edit of a helper the SLURM stage reaches makes its running job stale.
        project.write("helpers.py", 'VERSION = "new"\n')
        watch.wait_for(lambda _: len(watch.events("wave.code_checked", mark)) == 2, timeout=120)
        loaded = _loads(project)  # the boot's load and the two checks'
        watch.wait_for(
            lambda _: any(e["stage"] == "remote" for e in watch.events("stage.succeeded")),
            timeout=240,
        )
        story = "\n".join(map(str, watch.items))  # shown when an assertion fails
        checks = [e["stale"] for e in watch.events("wave.code_checked", mark)]
        assert checks[-1] == ["remote"], story
        # The next wave ran on the last check's load: loaded once, not twice.
        assert len(watch.events("pipeline.reloaded", mark)) == 1, story
        assert (loaded, _loads(project)) == (3, 3), story
        [cancelled] = [e for e in watch.events("stage.cancelled") if e["stage"] == "remote"]
        assert cancelled["reason"] == (
            "its code changed while its job ran: submitted again in the next wave"
        ), story
        assert _job_state(slurm, old["job_id"]) == "CANCELLED", story
        subs = watch.events("stage.submitted")
        assert [e["stage"] for e in subs] == ["remote", "remote"], story
        assert subs[1]["job_id"] != old["job_id"], story
        assert project.read("b.txt") == f"new|{subs[1]['job_id']}", story
        # The stage ends on the job's outcome file; Slurm may still say COMPLETING.
        watch.wait_for(lambda _: _job_state(slurm, subs[1]["job_id"]) == "COMPLETED", 60)
        assert watch.interrupt() == 130
    finally:
        watch.close()
