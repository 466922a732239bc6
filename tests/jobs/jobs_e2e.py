"""Helpers the job-watcher end-to-end tests share (real SLURM, real CLI).

Every wait polls with a generous timeout; on a timeout :func:`wait_for`
shows the event log so far, to see where it stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import slurm_cluster

from pivot.events.base import Event
from pivot.events.store import EventStore

__all__ = ["OOM_WATCHER", "PIVOT", "events_of", "job_state", "oom_script", "pivot", "wait_for"]

T = TypeVar("T")


def wait_for(
    cond: Callable[[], T],
    timeout: float = 90.0,
    what: str = "",
    store: EventStore | None = None,
) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.2)
    log = ""
    if store is not None:  # the story so far, to see where it stopped
        log = "\n".join(f"{r.seq} {r.event!r}"[:400] for r in store.read())
    raise AssertionError(f"timed out after {timeout}s waiting for {what}\n{log}")


def events_of(store: EventStore, cls: type[Event]) -> list[Event]:
    return [r.event for r in store.read(types=[cls.TYPE])]


def job_state(slurm: slurm_cluster.Cluster, job_id: str) -> str:
    out = slurm.run("squeue", "--noheader", "--states=all", "--format=%T", f"--jobs={job_id}")
    return out.stdout.strip()


PIVOT = [str(Path(sys.executable).with_name("pivot"))]


def pivot(project: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PIVOT_EVENT_STORE"}
    env["XDG_CONFIG_HOME"] = str(project / "no-user-config")
    r = subprocess.run(
        [*PIVOT, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120,
        check=False,
    )  # fmt: skip
    assert "Traceback" not in r.stderr, r.stderr
    if ok:
        assert r.returncode == 0, (r.stdout, r.stderr)
    return r


OOM_WATCHER = """\
name: CUDA OOM
pattern: "(CUDA out of memory|OutOfMemoryError)"
captures: [error]
interval_seconds: 0.5
max_triggers: 1
actions:
  - type: cancel_job
  - type: log_event
    params: {message: "OOM on ${JOB_ID}: $error"}
"""


def oom_script(job_dir: Path) -> str:
    return f"""#!/bin/bash
#SBATCH --job-name=train
#SBATCH --output={job_dir}/train-%j.out
echo "epoch 1 loss=0.9"
sleep 1
echo "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
sleep 300
"""
