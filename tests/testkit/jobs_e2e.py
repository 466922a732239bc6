"""Helpers the job-watcher end-to-end tests share (real SLURM, real CLI).

Every wait polls with a generous timeout; on a timeout :func:`wait_for`
shows the event log so far, to see where it stopped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pivot.events.base import Event
from pivot.events.store import EventStore

from testkit import slurm_cluster

__all__ = [
    "ALERT_WHEN_ASKED",
    "OOM_WATCHER",
    "PIVOT",
    "Proc",
    "events_of",
    "job_state",
    "oom_script",
    "payloads",
    "pivot",
    "procs",
    "submit",
    "wait_for",
]

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


# Logs the number of every `ALERT N` line; looked at only when the test asks for a poll
# (every 600 s otherwise).
ALERT_WHEN_ASKED = """\
name: alert
pattern: "ALERT ([0-9]+)"
interval_seconds: 600
max_triggers: 0
actions:
  - type: log_event
    params: {message: "$1"}
"""


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


class Proc:
    """A pivot command running in the background; its output collected as it comes."""

    def __init__(self, project: Path, *args: str, env: dict[str, str]) -> None:
        self.out: list[str] = []
        self.err: list[str] = []
        self.proc = subprocess.Popen(
            [*PIVOT, *args], cwd=project, env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        )  # fmt: skip
        self._threads = [
            threading.Thread(target=self._drain, args=(self.proc.stdout, self.out), daemon=True),
            threading.Thread(target=self._drain, args=(self.proc.stderr, self.err), daemon=True),
        ]
        for t in self._threads:
            t.start()

    @staticmethod
    def _drain(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def text(self) -> str:
        return "\n".join(self.out + self.err)

    def interrupt(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        code = self.proc.wait(90)
        for t in self._threads:
            t.join(10)
        return code

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(30)


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:
        p.close()


def submit(root: Path, env: dict[str, str], script: str = "steps.sh") -> tuple[str, str]:
    """Submit ``script`` with its embedded watcher: (job id, watcher id)."""
    r = subprocess.run(
        [*PIVOT, "jobs", "submit", script, "--json"], cwd=root, env=env,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    [watcher] = out["watchers"]
    return str(out["job_id"]), str(watcher)


def payloads(store: EventStore, type_name: str) -> list[dict[str, Any]]:
    return [d for _, _, _, d in store.read_payloads(types=[type_name])]
