"""`pivot watch` with SLURM stages that declare ``watchers=``: one watcher runtime per process.

On the suite's real single-node SLURM (tests/testkit/slurm_cluster.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pivot.events.store import EventStore
from pivot.events.watchers import HostingStandby, HostingStarted

from testkit import slurm_cluster
from testkit.jobs_servers import slurm  # noqa: F401 - pytest fixture
from testkit.pipeline_project import Project
from testkit.slurm_project import SLURM_HEADER, slurm_project
from testkit.watch_e2e import Watch

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture
def project(slurm: slurm_cluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    yield from slurm_project(slurm, monkeypatch, "pivot-watch-slurm-")


WATCHED = (
    SLURM_HEADER
    + """
import os


@pipeline.stage(slurm=Slurm(time="00:05:00"), watchers=["watchers/never.yaml"])
def remote(raw: Annotated[Path, Dep("raw.txt")], out: Annotated[Path, Out("b.txt")]) -> None:
    out.write_text(raw.read_text().strip() + "|" + os.environ.get("SLURM_JOB_ID", "none"))
"""
)

NEVER_YAML = """\
name: never
pattern: "this line is never printed"
actions:
  - type: cancel_job
"""


def test_watch_runs_one_watcher_runtime_and_the_slurm_stages_watchers_attach_to_it(
    project: Project,
) -> None:
    project.write("pipeline.py", WATCHED)
    project.write("watchers/never.yaml", NEVER_YAML)
    project.write("raw.txt", "one\n")
    watch = Watch(project.root)
    try:
        watch.wave_done(0)
        mark = watch.mark()
        project.write("raw.txt", "two\n")  # a second wave, a second job with watchers
        watch.wave_done(mark)
        story = "\n".join(map(str, watch.items))
        assert len(watch.events("stage.submitted")) == 2, story
        created = watch.events("watcher.created")
        assert [e["name"] for e in created] == ["never", "never"], story
        assert {e["actor"] for e in created} == {"pivot watch"}, story  # who attached them
        assert watch.interrupt() == 130
    finally:
        watch.close()
    with EventStore.open(str(project.root / ".pivot/events.db")) as store:
        types = [HostingStarted.TYPE, HostingStandby.TYPE]
        mine = [r.event for r in store.read(types=types) if r.event.pid == watch.proc.pid]  # type: ignore[attr-defined]
    # One runtime in the process: it took the lease once and never stood by behind itself.
    assert [type(e).__name__ for e in mine] == ["HostingStarted"], mine
