"""A project that the suite's SLURM jobs can run in, and the pieces of its pipelines.

Jobs run as root in the project's directory, so it must be readable by
everyone (pytest's ``tmp_path`` is 0700); the CLI finds the cluster through
``SLURM_CONF``.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

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
