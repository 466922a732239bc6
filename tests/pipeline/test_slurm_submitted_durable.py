"""A SLURM job's id is durable as soon as sbatch answered, whatever the wave is doing.

``stage.submitted`` is the only record of a job id: a pivot killed before it
is committed leaves a job that a restarted pivot can neither adopt nor
cancel. It comes from the SLURM executor's thread, often while the wave is
busy with a stage that finished (hashing its outputs) and holds its own events
for one append: it must not wait for that append.

Here the wave's hashing of a local stage's output is held (a hook on the
project's hasher) until the job id can be read from a fresh store handle, and
the SLURM stage's sbatch (a wrapper first on PATH) waits until that hashing
has begun, so the job id arrives while the wave is blocked.
"""

from __future__ import annotations

import os
import shutil
import stat
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from pivot.events.base import Event
from pivot.events.pipeline import StageSubmitted, StageSucceeded
from pivot.events.store import EventStore
from pivot.pipeline.project import Project as PipelineProject

from testkit import slurm_cluster
from testkit.jobs_servers import slurm  # noqa: F401 - pytest fixture
from testkit.pipeline_project import Project
from testkit.slurm_project import SLURM_HEADER, slurm_project, stage_events, wait_until

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

BESIDE = (
    SLURM_HEADER
    + """
@pipeline.stage
def loc(out: Annotated[Path, Out("loc.txt")]) -> None:
    out.write_text("local")


@pipeline.stage(slurm=Slurm(time="00:05:00"))
def remote(out: Annotated[Path, Out("remote.txt")]) -> None:
    out.write_text("remote")
"""
)

# sbatch once the wave hashes loc's output (the flag), then the real one.
SBATCH_AFTER_FLAG = """#!/bin/sh
i=0
while [ ! -e {flag} ] && [ $i -lt 1200 ]; do sleep 0.1; i=$((i + 1)); done
exec {real} "$@"
"""


@pytest.fixture
def project(slurm: slurm_cluster.Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    yield from slurm_project(slurm, monkeypatch, "pivot-slurm-durable-")


def _submitted_in_store(db: Path) -> StageSubmitted | None:
    with EventStore.open(str(db)) as fresh:
        found = [r.event for r in fresh.read(types=[StageSubmitted.TYPE])]
    return found[0] if found and isinstance(found[0], StageSubmitted) else None


def test_the_job_id_is_committed_while_the_wave_hashes_a_finished_stage(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    project.write("pipeline.py", BESIDE)
    flag = project.root / "hashing-loc"
    wrappers = tmp_path / "bin"
    wrappers.mkdir()
    real = shutil.which("sbatch")
    assert real is not None
    sbatch = wrappers / "sbatch"
    sbatch.write_text(SBATCH_AFTER_FLAG.format(flag=flag, real=real))
    sbatch.chmod(sbatch.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{wrappers}{os.pathsep}{os.environ['PATH']}")

    db = project.root / ".pivot/events.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    seen_while_hashing: list[StageSubmitted] = []
    pipeline = PipelineProject.open(project.root / "pipeline.py")
    real_hash = pipeline.hasher.hash
    armed = threading.Event()  # the plan hashes too: only the wave's hashing waits

    def hash_after_looking(rel: str) -> str | None:
        if rel == "loc.txt" and armed.is_set() and not flag.exists():
            flag.touch()  # sbatch may go now; the wave stays here until its answer is durable
            try:
                got = wait_until(lambda: _submitted_in_store(db), 60, "a durable stage.submitted")
                assert isinstance(got, StageSubmitted)
                seen_while_hashing.append(got)
            except AssertionError:
                pass  # reported below, once the wave is done
        return real_hash(rel)

    monkeypatch.setattr(pipeline.hasher, "hash", hash_after_looking)
    with EventStore.open(str(db)) as store:

        def emit(events: Sequence[Event]) -> None:
            store.append(events)

        try:
            plan = pipeline.plan()
            armed.set()
            result = pipeline.run(plan, emit, jobs=1, store=store)
        finally:
            pipeline.close()
    assert result.ok, result.errors
    assert seen_while_hashing, "the job id was not in the store while loc's output was hashed"
    [succeeded] = [
        e for e in stage_events(project.root, StageSucceeded) if getattr(e, "stage", "") == "remote"
    ]
    assert isinstance(succeeded, StageSucceeded)
    assert seen_while_hashing[0].stage == "remote"
    assert seen_while_hashing[0].job_id == succeeded.job_id != ""
