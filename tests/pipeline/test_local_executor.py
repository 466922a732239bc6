"""The local executor's own behaviour beyond the contract: crashes, restarts, routing in a wave."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path

import pytest

from pivot.events.base import Event
from pivot.events.pipeline import StageStarted, StageSucceeded
from pivot.pipeline.execute import execute
from pivot.pipeline.executor import Router, StageRun, WorkerLost
from pivot.pipeline.loader import load_fresh
from pivot.pipeline.local_executor import LocalExecutor
from pivot.pipeline.project import Project
from pivot.pipeline.spec import StageSpec
from pivot.pipeline.worker import StageTask

from testkit.pipeline_project import HEADER

pytestmark = pytest.mark.timeout(600)

STAGES = """
import os
import time
from pathlib import Path


def wait_for(go: str) -> None:
    deadline = time.monotonic() + 300
    while not Path(go).exists():
        assert time.monotonic() < deadline
        time.sleep(0.02)


def die() -> None:
    os._exit(3)
"""


def _run(root: Path, stage: str, qualname: str, **params: object) -> StageRun:
    task = StageTask(str(root), stage, "local_stages", "local_stages.py", qualname, params=params)
    spec = StageSpec(stage, task.module, task.file, qualname, 1, {}, {}, params, "f")
    return StageRun(task, spec, "wave")


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "local_stages.py").write_text(STAGES)
    return tmp_path


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in {"Z", "X"}


def test_a_dead_worker_loses_every_run_in_flight_and_fresh_workers_follow(root: Path) -> None:
    executor = LocalExecutor(2)
    try:
        waiting = executor.submit(_run(root, "waits", "wait_for", go=str(root / "never")))
        old = executor.pids()
        dying = executor.submit(_run(root, "dies", "die"))
        for future in (dying, waiting):
            with pytest.raises(WorkerLost) as lost:
                future.result(timeout=120)
            assert set(lost.value.stages) == {"waits", "dies"}
        # The broken pool's processes were gone before the runs were reported lost.
        assert not any(_alive(p) for p in old)
        go = root / "go"
        go.touch()
        again = executor.submit(_run(root, "again", "wait_for", go=str(go)))
        assert again.result(timeout=120).ok
        assert executor.generation == 2
        assert not executor.pids() & old
    finally:
        executor.close()


def test_restart_gives_new_processes_and_kills_the_old(root: Path) -> None:
    del root
    executor = LocalExecutor(1, standby=True)
    try:
        first = executor.restart()
        executor.prepare_spare()
        assert executor.wait_spare(120)
        second = executor.restart()  # the warmed spare, swapped in
        assert len(second) == 1 and not first & second
    finally:
        executor.close()  # waits for the background kill of the first ones
    assert not any(_alive(p) for p in first | second)


def test_a_closed_executor_takes_no_run(root: Path) -> None:
    executor = LocalExecutor(1)
    executor.close()
    with pytest.raises(RuntimeError, match="closed"):
        executor.submit(_run(root, "late", "wait_for", go=str(root)))


PIPELINE = (
    HEADER
    + """
import os
import time


def _meet(me: Path, other: Path) -> None:
    me.write_text(str(os.getpid()))
    deadline = time.monotonic() + 120
    while not other.exists():
        assert time.monotonic() < deadline, "the other stage never started beside me"
        time.sleep(0.02)


@pipeline.stage
def a(out: Annotated[Path, Out("a.txt")]) -> None:
    _meet(Path("a.pid"), Path("b.pid"))
    out.write_text("a")


@pipeline.stage
def b(out: Annotated[Path, Out("b.txt")]) -> None:
    _meet(Path("b.pid"), Path("a.pid"))
    out.write_text("b")


@pipeline.stage
def c(a: Annotated[Path, Dep("a.txt")], b: Annotated[Path, Dep("b.txt")],
      out: Annotated[Path, Out("c.txt")]) -> None:
    out.write_text(a.read_text() + b.read_text())
"""
)


def test_each_executor_has_its_own_capacity_and_stages_keep_dependency_order() -> None:
    # a and b only finish once both run: with one global limit of one stage
    # they would never meet. Each executor takes one; c waits for both.
    root = Path(tempfile.mkdtemp(prefix="pivot-routing-"))
    (root / "pipeline.py").write_text(PIPELINE)
    project = Project.from_spec(load_fresh(root / "pipeline.py", timeout=120))
    default, other = LocalExecutor(1), LocalExecutor(1)
    events: list[Event] = []

    def emit(batch: Sequence[Event]) -> None:
        events.extend(batch)

    try:
        result = execute(
            project.spec,
            project.graph,
            project.plan(),
            Router(default, {"b": other}),
            state=project.state,
            hasher=project.hasher,
            emit=emit,
        )
        pids = {e.stage: e.pid for e in events if isinstance(e, StageSucceeded)}
        assert result.ok, result.errors
        assert pids["b"] in other.pids() and pids["a"] in default.pids()
        assert pids["c"] in default.pids()
        started = [e.stage for e in events if isinstance(e, StageStarted)]
        assert started.index("c") > max(started.index("a"), started.index("b"))
        assert (root / "c.txt").read_text() == "ab"
    finally:
        default.close()
        other.close()
        project.close()
