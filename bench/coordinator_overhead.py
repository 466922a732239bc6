"""What the Coordinator itself adds between a batch and its wave.

The Coordinator runs its pure decision (:func:`pivot.watch.coordination.step`)
and hands the work that touches files (examining the batch, loading,
planning) to a thread of its own, whose results come back as messages: a few
thread hops per wave. This measures Batch -> RunWave through the real actor
with a pipeline that loads at once and one stage (the plan is `pivot run`'s
own, over one stage; what is left is the actor's own cost, with the appends
of its events to a real log), for a data batch and for a
code batch (a reload), next to the peer: one bare pykka ``tell`` round trip
between two actors, in the same run.

Run: ``uv run python bench/coordinator_overhead.py [--waves 200]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import pykka

from pivot.actors.base import ActorContext, Registry, Shutdown
from pivot.actors.coordinator import Coordinator
from pivot.actors.watch_messages import Batch, Boot, RunWave, WaveDone
from pivot.events.store import EventStore
from pivot.pipeline.project import Project
from pivot.pipeline.spec import PipelineSpec, StageSpec
from pivot.watch.watched_pipeline import LoadError, PipelineView, StageInfo


class InstantPipeline:
    """One stage, never recorded (stale each time); loads at once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.pipeline_file = root / "pipeline.py"
        stage = StageSpec(
            name="a", module="pipeline", file="pipeline.py", qualname="a", line=1,
            dep_args={"dep": "a.in"}, out_args={"out": "a.out"}, params={}, fingerprint="a",
        )  # fmt: skip
        self.project = Project.from_spec(PipelineSpec(str(root), "pipeline.py", (stage,)))

    def load(self) -> PipelineView | LoadError:
        stages = {"a": StageInfo("a", (self.root / "a.in",), (self.root / "a.out",))}
        return PipelineView(stages, project=self.project)


class Waves:
    """Stands in for the WorkerPool: notes when each RunWave arrives."""

    def __init__(self) -> None:
        self.got: list[tuple[float, RunWave]] = []
        self.cond = threading.Condition()

    def add(self, run: RunWave) -> None:
        with self.cond:
            self.got.append((time.perf_counter(), run))
            self.cond.notify_all()

    def wait(self, n: int, timeout: float = 30) -> tuple[float, RunWave]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.got) < n:
                if not self.cond.wait(max(0.0, deadline - time.monotonic())):
                    raise TimeoutError(f"wave {n} never came")
            return self.got[n - 1]


class _Pool(pykka.ThreadingActor):
    def __init__(self, waves: Waves) -> None:
        super().__init__()
        self.waves = waves

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, RunWave):
            self.waves.add(message)
        return None


def coordinator_ms(root: Path, waves_n: int, code: bool) -> list[float]:
    # A real log, as in `pivot watch`: the Coordinator's own events are appended on its
    # thread (ChangesDetected before each plan), so their commit is part of its cost.
    store = EventStore.open(root / "events.db")
    ctx = ActorContext(store, Registry(), Shutdown())
    waves = Waves()
    ctx.registry.set("worker_pool", _Pool.start(waves))
    pipeline = InstantPipeline(root)
    coordinator = Coordinator.start(ctx, pipeline)
    ctx.registry.set("coordinator", coordinator)
    try:
        coordinator.tell(Boot())
        _, first = waves.wait(1)
        coordinator.tell(WaveDone(first.wave_id))
        out = []
        path = root / ("lib.py" if code else "a.in")
        for i in range(waves_n):
            if code:
                path.write_text(f"X = {i}\n")  # a real edit: unchanged code reloads nothing
            start = time.perf_counter()
            coordinator.tell(Batch(frozenset({str(path)}), 1))
            at, run = waves.wait(i + 2)
            out.append((at - start) * 1000)
            coordinator.tell(WaveDone(run.wave_id))
        return out
    finally:
        pykka.ActorRegistry.stop_all()
        store.close()
        pipeline.project.close()


class _Echo(pykka.ThreadingActor):
    def __init__(self, back: threading.Event) -> None:
        super().__init__()
        self.back = back

    def on_receive(self, message: Any) -> Any:
        self.back.set()
        return None


def tell_round_trip_ms(n: int) -> list[float]:
    back = threading.Event()
    echo = _Echo.start(back)
    out = []
    try:
        for _ in range(n):
            back.clear()
            start = time.perf_counter()
            echo.tell(None)
            back.wait(10)
            out.append((time.perf_counter() - start) * 1000)
    finally:
        echo.stop()
    return out


def fmt(name: str, values: list[float]) -> str:
    values = sorted(values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return (
        f"{name:<44} n={len(values):4d}  p50={statistics.median(values):7.3f} ms  p95={p95:7.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--waves", type=int, default=200)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = coordinator_ms(root, args.waves, code=False)
        code = coordinator_ms(root, args.waves, code=True)
    peer = tell_round_trip_ms(args.waves)
    print(fmt("data batch -> RunWave (Coordinator)", data))
    print(fmt("code batch -> RunWave (Coordinator, reload)", code))
    print(fmt("peer: one pykka tell, actor to actor", peer))
    base = statistics.median(peer)
    print(
        f"ratio to one tell (p50): data {statistics.median(data) / base:.1f}, "
        f"code {statistics.median(code) / base:.1f}"
    )


if __name__ == "__main__":
    main()
