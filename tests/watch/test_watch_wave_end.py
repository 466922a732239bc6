"""A wave always ends: the WorkerPool records its ``wave.finished`` and tells the
Coordinator ``WaveDone`` even when what runs before ``wave.finished`` raises.

A real WorkerPool on a real event store and real loky workers; the Coordinator
is a probe that records what it is told.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pykka
import pytest

from pivot.actors.watch_messages import RunWave, WaveDone
from pivot.actors.worker_pool import PoolControl, WaveRecorder, WorkerPool
from pivot.events.pipeline import StageStarted, StageSucceeded, WaveFinished, WaveStarted
from pivot.pipeline.local_executor import LocalExecutor
from pivot.watch.watched_pipeline import PipelineView, PlannedStage, StageInfo

from testkit.watch_helpers import (  # noqa: F401 - watch_context: a fixture
    Collector,
    Probe,
    WatchContext,
    watch_context,
)

pytestmark = pytest.mark.timeout(120)


class Pipeline:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.pipeline_file = root / "pipeline.py"


class HookRaises(WorkerPool):
    """Runs stage ``a`` (events only); the hook before its ``wave.finished`` raises, as
    hashing a FIFO output did."""

    def run_stages(self, msg: RunWave, stages: list[PlannedStage], recorder: WaveRecorder) -> None:
        def own_writes() -> None:
            raise OSError("cannot read data/out.fifo")

        recorder.before_finish = own_writes
        recorder.emit(WaveStarted(wave_id=msg.wave_id, trigger=msg.trigger, stages=("a",)))
        recorder.emit(StageStarted(stage="a"))
        recorder.emit(StageSucceeded(stage="a", duration=0.0))
        # No wave.finished of its own: the pool's finish() writes it, and the hook runs then.


@pytest.fixture(autouse=True)
def _stop_actors() -> Any:
    yield
    pykka.ActorRegistry.stop_all()


def test_wave_done_is_told_even_when_the_hook_before_wave_finished_raises(
    tmp_path: Path,
    watch_context: WatchContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crashed: list[BaseException | None] = []
    # The wave thread's error still surfaces (a bug to see), here instead of on stderr.
    monkeypatch.setattr(threading, "excepthook", lambda args: crashed.append(args.exc_value))
    ctx, events = watch_context
    told = Collector()
    ctx.registry.set("coordinator", Probe.start(told))
    workers = LocalExecutor(jobs=1, standby=False)
    try:
        pool = HookRaises.start(ctx, Pipeline(tmp_path), PoolControl(workers))
        view = PipelineView({"a": StageInfo("a")})
        for wave_id in ("w1", "w2"):  # the second wave shows the pool took the next one
            pool.tell(RunWave(wave_id, view, (PlannedStage("a", ("never run",)),)))
            told.wait_for(lambda items: bool(items) and items[-1] == WaveDone(wave_id, ("a",)))
        assert [m.wave_id for m in told.of(WaveDone)] == ["w1", "w2"]
        finished = events.wait_for(
            lambda items: len([e for e in items if isinstance(e, WaveFinished)]) == 2
        )
        assert [e.succeeded for e in finished if isinstance(e, WaveFinished)] == [1, 1]
        assert [str(e) for e in crashed] == ["cannot read data/out.fifo"] * 2
    finally:
        pykka.ActorRegistry.stop_all()
        workers.close()
