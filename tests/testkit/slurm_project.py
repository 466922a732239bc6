"""A project that the suite's SLURM jobs can run in, and the pieces of its pipelines.

Jobs run as root in the project's directory, so it must be readable by
everyone (pytest's ``tmp_path`` is 0700); the CLI finds the cluster through
``SLURM_CONF``.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pivot.events.base import Event
from pivot.events.store import EventStore

from testkit import slurm_cluster
from testkit.pipeline_project import HEADER, Project

SLURM_HEADER = HEADER.replace(
    "from pivot import Dep, Out, Pipeline", "from pivot import Dep, Out, Pipeline, Slurm"
)

# One SLURM stage that prints "started", then waits for the file ``go`` and
# writes its job id to a.txt: a test looks while the job runs, then lets it end.
WAITER = (
    SLURM_HEADER
    + """
import time


@pipeline.stage(slurm=Slurm(time="00:10:00"))
def slow(out: Annotated[Path, Out("a.txt")]) -> None:
    import os
    print("started", flush=True)
    while not Path("go").exists():
        time.sleep(0.1)
    out.write_text(os.environ["SLURM_JOB_ID"])
"""
)


def slurm_project(
    slurm: slurm_cluster.Cluster, monkeypatch: pytest.MonkeyPatch, prefix: str
) -> Iterator[Project]:
    """Yield an empty project in a world-readable temporary directory; remove it after."""
    monkeypatch.setenv("SLURM_CONF", str(slurm.conf))
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    try:
        yield Project(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def stage_events(root: Path, *types: type[Event]) -> list[Event]:
    """The events of these types in the project's log, in order."""
    with EventStore.open(str(root / ".pivot/events.db")) as store:
        return [r.event for r in store.read(types=[t.TYPE for t in types])]


def job_state(slurm: slurm_cluster.Cluster, job_id: str) -> str:
    """Slurm's state of the job (``RUNNING``, ``CANCELLED``...), as scontrol shows it."""
    out = slurm.run("scontrol", "--oneliner", "show", "job", job_id).stdout
    return next((f.split("=", 1)[1] for f in out.split() if f.startswith("JobState=")), "")


def wait_until(cond: object, timeout: float = 90.0, what: str = "") -> object:
    """Poll ``cond()`` until it returns something true (returned); fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()  # type: ignore[operator]
        if got:
            return got
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
