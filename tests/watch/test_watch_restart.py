"""Coordinator + WorkerPool on real loky workers, with a small pipeline of our own.

A restart that fails is reported, nothing runs, and the next wave retries it
with what the failed wave would have run; a data change never restarts.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pykka
import pytest

from pivot.actors.base import ActorContext
from pivot.actors.coordinator import Coordinator
from pivot.actors.watch_messages import Batch, Boot, ForceAll, Ping, RunWave
from pivot.actors.worker_pool import PoolControl, WaveRecorder, WorkerPool
from pivot.events.actors import ChangesPending
from pivot.events.pipeline import (
    StageStarted,
    StageSucceeded,
    WaveFinished,
    WaveStarted,
    WorkersRestarted,
    WorkersRestartFailed,
)
from pivot.pipeline.local_executor import LocalExecutor
from pivot.watch.watched_pipeline import LoadError, PipelineView, PlannedStage, StageInfo

from testkit.watch_helpers import (  # noqa: F401 - watch_context: a fixture
    WatchContext,
    tiny_project,
    watch_context,
)

pytestmark = pytest.mark.timeout(120)


class TinyPipeline:
    """Two independent stages, never recorded (so always stale); planned by `pivot run`'s
    own plan, on a real project."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pipeline_file = root / "pipeline.py"
        self.pids: list[int] = []
        self.project = tiny_project(root, {n: ([f"{n}.in"], [f"{n}.out"]) for n in ("a", "b")})

    def load(self) -> PipelineView | LoadError:
        stages = {
            n: StageInfo(n, (self.root / f"{n}.in",), (self.root / f"{n}.out",), "f")
            for n in ("a", "b")
        }
        return PipelineView(stages, project=self.project)

    def close(self) -> None:
        self.project.close()


class TinyPool(WorkerPool):
    """Runs each stage of a wave really in a worker process: asks it its pid."""

    def __init__(self, ctx: ActorContext, pipeline: TinyPipeline, control: PoolControl) -> None:
        super().__init__(ctx, pipeline, control)
        self.pids = pipeline.pids

    def run_stages(self, msg: RunWave, stages: list[PlannedStage], recorder: WaveRecorder) -> None:
        emit, local, wave_id = recorder.emit, self.control.workers, msg.correlation_id
        emit(WaveStarted(wave_id=wave_id, trigger=msg.trigger, stages=()))
        for p in stages:
            emit(StageStarted(stage=p.name))
            self.pids.append(local.call(os.getpid).result(timeout=60))
            emit(StageSucceeded(stage=p.name, duration=0.0))
        emit(WaveFinished(wave_id=wave_id, succeeded=len(stages)))


class FlakyWorkers(LocalExecutor):
    """Fails to start fresh workers once, when told to."""

    def __init__(self) -> None:
        super().__init__(jobs=1, standby=False)
        self.fail_next = threading.Event()

    def restart(self) -> set[int]:
        if self.fail_next.is_set():
            self.fail_next.clear()
            raise OSError("cannot fork: resource temporarily unavailable")
        return super().restart()


@pytest.fixture(autouse=True)
def _stop_actors() -> Any:
    yield
    pykka.ActorRegistry.stop_all()


def test_failed_restart_is_reported_and_the_next_wave_retries(
    tmp_path: Path, watch_context: WatchContext
) -> None:
    ctx, events = watch_context
    pipeline = TinyPipeline(tmp_path)
    workers = FlakyWorkers()
    try:
        ctx.registry.set("worker_pool", TinyPool.start(ctx, pipeline, PoolControl(workers)))
        coordinator = Coordinator.start(ctx, pipeline)
        ctx.registry.set("coordinator", coordinator)
        coordinator.tell(Boot())
        events.wait_for(lambda items: len([e for e in items if isinstance(e, WaveFinished)]) == 1)
        first = set(pipeline.pids)

        # A data change: same workers, no restart.
        coordinator.tell(Batch(frozenset({str(tmp_path / "a.in")}), 1))
        events.wait_for(lambda items: len([e for e in items if isinstance(e, WaveFinished)]) == 2)
        assert len(events.of(WorkersRestarted)) == 1  # the start
        assert pipeline.pids[-1] in first

        # A code change whose restart fails: reported, nothing runs.
        workers.fail_next.set()
        coordinator.tell(Batch(frozenset({str(tmp_path / "helpers.py")}), 1))
        events.wait_for(lambda items: any(isinstance(e, WorkersRestartFailed) for e in items))
        failed = events.of(WorkersRestartFailed)
        assert "cannot fork" in failed[0].error
        assert len(events.of(WaveFinished)) == 2

        # The next change (data, touching only b) retries the restart, and runs
        # what the failed wave would have run as well, on new processes.
        coordinator.tell(Batch(frozenset({str(tmp_path / "b.in")}), 1))
        events.wait_for(lambda items: len([e for e in items if isinstance(e, WaveFinished)]) == 3)
        assert len(events.of(WorkersRestarted)) == 2
        last = [e.stage for e in events.of(StageStarted)][-2:]
        assert sorted(last) == ["a", "b"]
        assert not set(pipeline.pids[-2:]) & first

        # Force from the display: every stage, no restart needed.
        coordinator.tell(ForceAll())
        events.wait_for(lambda items: len([e for e in items if isinstance(e, WaveFinished)]) == 4)
        assert len(events.of(WorkersRestarted)) == 2
    finally:
        pykka.ActorRegistry.stop_all()
        workers.close()
        pipeline.close()


class SlowLoadPipeline(TinyPipeline):
    """Its second load (the first reload) waits until released."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.loads = 0
        self.loading = threading.Event()
        self.release = threading.Event()

    def load(self) -> PipelineView | LoadError:
        self.loads += 1
        if self.loads == 2:
            self.loading.set()
            assert self.release.wait(60)
        return super().load()


def test_the_coordinator_answers_while_a_reload_runs(
    tmp_path: Path, watch_context: WatchContext
) -> None:
    ctx, events = watch_context
    pipeline = SlowLoadPipeline(tmp_path)
    workers = LocalExecutor(jobs=1, standby=False)
    try:
        ctx.registry.set("worker_pool", TinyPool.start(ctx, pipeline, PoolControl(workers)))
        coordinator = Coordinator.start(ctx, pipeline)
        ctx.registry.set("coordinator", coordinator)
        coordinator.tell(Boot())
        events.wait_for(lambda items: any(isinstance(e, WaveFinished) for e in items))

        coordinator.tell(Batch(frozenset({str(tmp_path / "helpers.py")}), 1))
        assert pipeline.loading.wait(30)
        # The load blocks, the actor does not: it takes the next batch at once
        # (a load on the actor's thread would keep this ask waiting).
        coordinator.tell(Batch(frozenset({str(tmp_path / "b.in")}), 1))
        coordinator.ask(Ping(), timeout=10)
        events.wait_for(lambda items: any(isinstance(e, ChangesPending) for e in items))
        assert len(events.of(WaveFinished)) == 1

        pipeline.release.set()  # the reload's wave, then exactly one for what waited
        events.wait_for(lambda items: len([e for e in items if isinstance(e, WaveFinished)]) == 3)
        assert [e.stage for e in events.of(StageStarted)][-1] == "b"
    finally:
        pipeline.release.set()
        pykka.ActorRegistry.stop_all()
        workers.close()
        pipeline.close()


def test_a_shutdown_does_not_wait_for_a_reload(tmp_path: Path, watch_context: WatchContext) -> None:
    ctx, _ = watch_context
    pipeline = SlowLoadPipeline(tmp_path)
    pipeline.loads = 1  # the boot's load is the slow one
    try:
        coordinator = Coordinator.start(ctx, pipeline)
        coordinator.tell(Boot())
        assert pipeline.loading.wait(30)
        coordinator.stop(block=True, timeout=10)  # pykka.Timeout if the load held it
        assert not coordinator.is_alive()
    finally:
        pipeline.release.set()
        pipeline.close()
