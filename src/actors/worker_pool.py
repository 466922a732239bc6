"""WorkerPool: runs each wave on loky workers, restarting them after code changes.

A wave runs in a thread of its own so the actor stays responsive; the
pipeline core's executor does the work and its stage events pass through
:class:`WaveRecorder`, which counts outcomes and turns the failures of a
cancelled wave (workers killed by a restart or a shutdown) into
``stage.cancelled``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pivot.actors.base import Context, Shell
from pivot.actors.messages import RunWave, WaveDone
from pivot.events.base import Event
from pivot.events.pipeline import (
    StageCancelled,
    StageFailed,
    StageSkipped,
    StageSucceeded,
    WaveFinished,
    WaveStarted,
    WorkersRestarted,
    WorkersRestartFailed,
)
from pivot.watch.engine import Engine
from pivot.watch.sink import EventSink
from pivot.watch.workers import Workers

__all__ = ["PoolControl", "WaveRecorder", "WorkerPool"]


class WaveRecorder:
    """Forwards a wave's stage events, counting outcomes; knows what is unfinished."""

    def __init__(self, sink: EventSink, wave_id: str, stages: tuple[str, ...]) -> None:
        self.sink = sink
        self.wave_id = wave_id
        self.stages = stages
        self.cancel = threading.Event()
        self.cancel_reason = ""
        self.ended: dict[str, str] = {}
        self._lock = threading.Lock()

    def emit(self, ev: Event) -> None:
        """The callback given to the pipeline core's executor."""
        stage = getattr(ev, "stage", None)
        if self.cancel.is_set() and isinstance(ev, StageFailed):
            ev = StageCancelled(
                stage=ev.stage,
                reason=self.cancel_reason or "cancelled",
                actor=ev.actor,
                correlation_id=ev.correlation_id,
            )
        if isinstance(stage, str):
            with self._lock:
                if stage in self.ended:
                    return  # already ended (cancelled below); never report twice
                kind = {
                    StageSucceeded: "succeeded",
                    StageFailed: "failed",
                    StageSkipped: "skipped",
                    StageCancelled: "cancelled",
                }.get(type(ev))
                if kind is not None:
                    self.ended[stage] = kind
        self.sink.emit(ev)

    def finish(self, started: float) -> WaveFinished:
        """Cancel what never ended (when cancelled) and summarise the wave."""
        if self.cancel.is_set():
            for stage in self.stages:
                self.emit(
                    StageCancelled(
                        stage=stage,
                        reason=self.cancel_reason or "cancelled",
                        actor="worker_pool",
                        correlation_id=self.wave_id,
                    )
                )
        counts = list(self.ended.values())
        return WaveFinished(
            wave_id=self.wave_id,
            succeeded=counts.count("succeeded"),
            failed=counts.count("failed"),
            skipped=counts.count("skipped"),
            cancelled=counts.count("cancelled"),
            duration=time.monotonic() - started,
            actor="worker_pool",
            correlation_id=self.wave_id,
        )


class PoolControl:
    """Thread-safe handle the main thread uses to stop a wave and its workers at once."""

    def __init__(self, workers: Workers) -> None:
        self.workers = workers
        self._lock = threading.Lock()
        self.recorder: WaveRecorder | None = None

    def abort(self, reason: str) -> None:
        """Cancel the running wave, if any, and kill the workers (and their children)."""
        with self._lock:
            recorder = self.recorder
        if recorder is not None:
            recorder.cancel_reason = reason
            recorder.cancel.set()
        self.workers.kill_current()

    def set_recorder(self, recorder: WaveRecorder | None) -> None:
        with self._lock:
            self.recorder = recorder


class WorkerPool(Shell):
    """Receives waves; restarts workers when asked (or when they were killed)."""

    name = "worker_pool"

    def __init__(self, ctx: Context, engine: Engine, control: PoolControl) -> None:
        super().__init__(ctx)
        self.engine = engine
        self.control = control
        self.thread: threading.Thread | None = None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, RunWave):
            self._run(message)
        return None

    def _restart(self, reason: str, correlation_id: str) -> bool:
        workers = self.control.workers
        try:
            workers.restart()
        except Exception as exc:
            self.ctx.sink.emit(
                WorkersRestartFailed(
                    error=f"{type(exc).__name__}: {exc}",
                    actor=self.name,
                    correlation_id=correlation_id,
                )
            )
            return False
        self.ctx.sink.emit(
            WorkersRestarted(
                jobs=workers.jobs, reason=reason, actor=self.name, correlation_id=correlation_id
            )
        )
        return True

    def _run(self, msg: RunWave) -> None:
        if self.thread is not None:
            self.thread.join()  # the Coordinator sends one wave at a time; be safe anyway
        names = tuple(p.name for p in msg.plan)
        if (msg.restart or self.control.workers.executor is None) and not self._restart(
            msg.reason or "code changed", msg.correlation_id or msg.wave_id
        ):
            self.ctx.registry.tell(
                "coordinator", WaveDone(msg.wave_id, names, restart_failed=True)
            )
            return
        recorder = WaveRecorder(self.ctx.sink, msg.wave_id, names)
        self.control.set_recorder(recorder)
        self.thread = threading.Thread(
            target=self._wave, args=(msg, recorder), name="pivot-wave", daemon=True
        )
        self.thread.start()

    def _wave(self, msg: RunWave, recorder: WaveRecorder) -> None:
        started = time.monotonic()
        self.ctx.sink.emit(
            WaveStarted(
                wave_id=msg.wave_id,
                trigger=msg.trigger,
                stages=tuple(p.name for p in msg.plan),
                actor=self.name,
                correlation_id=msg.correlation_id,
            )
        )
        try:
            executor = self.control.workers.executor
            if executor is None:
                recorder.cancel.set()
            else:
                self.engine.run(
                    msg.view, list(msg.plan), executor, recorder.emit, msg.wave_id, recorder.cancel
                )
        except Exception as exc:
            if not recorder.cancel.is_set():
                for p in msg.plan:
                    recorder.emit(
                        StageFailed(
                            stage=p.name,
                            error=f"{type(exc).__name__}: {exc}",
                            actor=self.name,
                            correlation_id=msg.wave_id,
                        )
                    )
        finally:
            self.ctx.sink.emit(recorder.finish(started))
            self.control.set_recorder(None)
            self.ctx.registry.tell(
                "coordinator",
                WaveDone(msg.wave_id, recorder.stages, cancelled=recorder.cancel.is_set()),
            )

    def on_stop(self) -> None:
        self.control.abort("shutdown")
        if self.thread is not None:
            self.thread.join(10)
        super().on_stop()
