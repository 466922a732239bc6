"""WorkerPool: runs each wave on the local executor, restarting its workers after code changes.

A thin shell over :class:`pivot.pipeline.local_executor.LocalExecutor` and
`pivot run`'s wave (:func:`pivot.pipeline.execute.execute`, on the loaded
:class:`pivot.pipeline.project.Project` the wave's view carries): a wave runs
in a thread of its own so the actor stays responsive, under the run lock; it
routes SLURM stages to a :class:`pivot.pipeline.slurm_executor.SlurmJobs` of
its own; its events pass through :class:`WaveRecorder`, which counts outcomes.
What it reports (a failure in a cancelled wave is a cancellation; each
stage's end once) and whether a wave is planned again after waiting for the
lock are the pure decisions of
:mod:`pivot.watch.wave_report`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pivot.actors.base import ActorContext, Shell
from pivot.actors.watch_messages import CancelStaleRuns, RunWave, WaveDone
from pivot.events.actors import WaveWaiting
from pivot.events.base import Event
from pivot.events.pipeline import (
    StageCancelled,
    StageFailed,
    WaveFinished,
    WaveStarted,
    WorkersRestarted,
    WorkersRestartFailed,
)
from pivot.pipeline.cancel import CancelToken
from pivot.pipeline.execute import execute
from pivot.pipeline.executor import Router
from pivot.pipeline.interrupted import Takeover
from pivot.pipeline.local_executor import LocalExecutor
from pivot.pipeline.lock import Holder, LockWaitCancelled, run_lock
from pivot.pipeline.plan import Decision, Plan
from pivot.pipeline.stale_runs import StaleRuns
from pivot.storage import StorageError
from pivot.watch.watched_pipeline import PlannedStage, WatchedPipeline
from pivot.watch.wave_report import as_reported, end_of, is_repeat, needs_replan, still_to_run

if TYPE_CHECKING:
    from pivot.events.store import EventStore
    from pivot.pipeline.hashing import FileHasher
    from pivot.pipeline.slurm_executor import SlurmJobs
    from pivot.pipeline.spec import PipelineSpec

__all__ = ["PoolControl", "WaveRecorder", "WorkerPool", "record_own_writes"]


class WaveRecorder:
    """Forwards a wave's events, counting outcomes; reports each stage's end once.

    The pipeline core emits the wave's own ``wave.started``/``wave.finished``;
    when it could not (it raised), :meth:`finish` emits the summary instead.
    """

    def __init__(self, store: EventStore, wave_id: str, stages: tuple[str, ...]) -> None:
        self.store = store
        self.wave_id = wave_id
        self.stages = stages
        self.cancel = CancelToken()
        self.stale = StaleRuns()  # SLURM stages whose code changed while the wave ran
        self.ended: dict[str, str] = {}
        self.started_seen = False
        self.finished_seen = False
        self.before_finish: Callable[[], None] | None = None  # runs before wave.finished
        self._lock = threading.Lock()

    def emit(self, *events: Event) -> None:
        """The callback given to the pipeline core's executor: a batch, one append.

        ``before_finish`` runs just before the batch holding ``wave.finished`` is
        appended; the batch is appended even if it raises (then the error goes on).
        """
        kept = [ev for ev in (self._filter(e) for e in events) if ev is not None]
        if not kept:
            return
        hook = self.before_finish
        try:
            if hook is not None and any(isinstance(e, WaveFinished) for e in kept):
                # Before anyone hears the wave ended: an edit after wave.finished is not its own.
                hook()
        finally:
            # _filter has taken these as seen: finish() would not emit them again.
            self.store.emit(*kept)

    def _filter(self, ev: Event) -> Event | None:
        # Workers killed by a shutdown or restart look like failures to the wave.
        cancelled = (self.cancel.reason or "cancelled") if self.cancel.requested else ""
        ev = as_reported(ev, cancelled)
        with self._lock:
            if isinstance(ev, WaveStarted):
                self.started_seen = True
            elif isinstance(ev, WaveFinished):
                self.finished_seen = True
            if is_repeat(ev, self.ended):
                return None  # never report one stage's end twice
            end = end_of(ev)
            if end is not None:
                self.ended[end[0]] = end[1]
        return ev

    def finish(self, started: float, trigger: str, correlation_id: str) -> None:
        """Close the wave's record when the executor could not."""
        if self.cancel.requested:
            for stage in self.stages:
                self.emit(
                    StageCancelled(
                        stage=stage,
                        reason=self.cancel.reason or "cancelled",
                        actor="worker_pool",
                        correlation_id=self.wave_id,
                    )
                )
        if not self.started_seen:
            self.emit(
                WaveStarted(
                    wave_id=self.wave_id,
                    trigger=trigger,
                    stages=self.stages,
                    actor="worker_pool",
                    correlation_id=correlation_id,
                )
            )
        if self.finished_seen:
            return
        counts = list(self.ended.values())
        self.emit(
            WaveFinished(
                wave_id=self.wave_id,
                succeeded=counts.count("succeeded"),
                failed=counts.count("failed"),
                skipped=counts.count("skipped"),
                cancelled=counts.count("cancelled"),
                duration=time.monotonic() - started,
                actor="worker_pool",
                correlation_id=correlation_id,
            )
        )


def record_own_writes(
    hasher: FileHasher, outs: Sequence[str], after_wave: dict[str, str | None]
) -> None:
    """What a wave left at ``outs``, its own writes, into ``after_wave`` (for the next batch).

    It runs before the wave's ``wave.finished``, so an unreadable output must not raise:
    one that cannot be hashed (a FIFO its failed stage made) is recorded as unreadable,
    so the wave's own FIFO does not run its stage again, and a file put in its place does.
    """
    after_wave.update((out, hasher.hash_or_unreadable(out)) for out in outs)


class PoolControl:
    """Thread-safe handle the main thread uses to stop a wave and its workers at once."""

    def __init__(self, workers: LocalExecutor) -> None:
        self.workers = workers
        self._lock = threading.Lock()
        self.recorder: WaveRecorder | None = None

    def abort(self, reason: str) -> None:
        """Cancel the running wave, if any, and kill the workers (and their children).

        The token first: the wave then takes its killed stages for cancelled, not crashed.
        """
        with self._lock:
            recorder = self.recorder
        if recorder is not None:
            recorder.cancel.cancel(reason)
        self.workers.cancel(reason)

    def set_recorder(self, recorder: WaveRecorder | None) -> None:
        with self._lock:
            self.recorder = recorder


class WorkerPool(Shell):
    """Receives waves; restarts workers when asked (or when they were killed)."""

    name = "worker_pool"

    def __init__(
        self,
        ctx: ActorContext,
        pipeline: WatchedPipeline,
        control: PoolControl,
    ) -> None:
        super().__init__(ctx)
        self.pipeline = pipeline
        self.control = control
        self.thread: threading.Thread | None = None

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, RunWave):
            self._run(message)
        elif isinstance(message, CancelStaleRuns):
            recorder = self.control.recorder
            if recorder is not None and recorder.wave_id == message.wave_id:
                recorder.stale.mark(message.stages, message.reason)
        return None

    def _restart(self, reason: str, correlation_id: str) -> bool:
        workers = self.control.workers
        try:
            workers.restart()
        except Exception as exc:
            self.ctx.store.emit(
                WorkersRestartFailed(
                    error=f"{type(exc).__name__}: {exc}",
                    actor=self.name,
                    correlation_id=correlation_id,
                )
            )
            return False
        self.ctx.store.emit(
            WorkersRestarted(
                jobs=workers.jobs, reason=reason, actor=self.name, correlation_id=correlation_id
            )
        )
        return True

    def _run(self, msg: RunWave) -> None:
        if self.thread is not None:
            self.thread.join()  # the Coordinator sends one wave at a time; be safe anyway
        names = tuple(p.name for p in msg.stages)
        fresh = not self.control.workers.started
        reason = msg.reason or ("code changed" if msg.restart else "start")
        if (msg.restart or fresh) and not self._restart(reason, msg.correlation_id or msg.wave_id):
            self.ctx.registry.tell("coordinator", WaveDone(msg.wave_id, names, restart_failed=True))
            return
        recorder = WaveRecorder(self.ctx.store, msg.wave_id, names)
        self.control.set_recorder(recorder)
        self.thread = threading.Thread(
            target=self._wave, args=(msg, recorder), name="pivot-wave", daemon=True
        )
        self.thread.start()

    def _wave(self, msg: RunWave, recorder: WaveRecorder) -> None:
        started = time.monotonic()
        waited: list[str] = []

        def on_wait(holder: str) -> None:
            waited.append(holder)
            self.ctx.store.emit(
                WaveWaiting(
                    wave_id=msg.wave_id,
                    holder=holder,
                    stages=recorder.stages,
                    actor=self.name,
                    correlation_id=msg.correlation_id,
                )
            )

        takeover = Takeover(self.name)
        try:
            # One run at a time per project: a `pivot run` in another terminal
            # and a watch wave never run the project's stages together.
            with run_lock(
                self.pipeline.root,
                on_wait=on_wait,
                cancelled=lambda: recorder.cancel.requested,
                on_leftover=takeover.on_leftover,
            ) as previous:
                if takeover.needed(previous):  # the holder before us was killed
                    self._record_takeover(takeover, previous)
                stages = list(msg.stages)
                if needs_replan(bool(waited), msg.trigger):
                    stages = self._replan(msg)  # the run we waited for may have done the work
                self.run_stages(msg, stages, recorder)
        except LockWaitCancelled:
            pass  # finish() reports the wave's stages as cancelled
        except StorageError as exc:
            # The records cannot be written (full disk, unwritable .pivot/):
            # running more would only redo work that cannot be recorded.
            self.ctx.shutdown.request(str(exc))
        except Exception as exc:
            if not recorder.cancel.requested:
                for p in msg.stages:
                    recorder.emit(
                        StageFailed(
                            stage=p.name,
                            error=f"{type(exc).__name__}: {exc}",
                            actor=self.name,
                            correlation_id=msg.wave_id,
                        )
                    )
        finally:
            try:
                recorder.finish(started, msg.trigger, msg.correlation_id)
            finally:  # even if that raised: the Coordinator waits for WaveDone to go on
                self.control.set_recorder(None)
                if not recorder.cancel.requested:
                    self.control.workers.prepare_spare()
                self.ctx.registry.tell(
                    "coordinator",
                    WaveDone(msg.wave_id, recorder.stages, cancelled=recorder.cancel.requested),
                )

    def run_stages(self, msg: RunWave, stages: list[PlannedStage], recorder: WaveRecorder) -> None:
        """`pivot run`'s wave over ``stages``: on this pool's workers, SLURM stages as SLURM
        jobs; every event as it happens, the wave's batches one append each."""
        project = msg.view.project
        if project is None:
            raise TypeError("a view without a loaded project")

        def emit_all(events: Sequence[Event]) -> None:
            recorder.emit(*events)  # as one batch: one append to the store

        outs = [o for p in stages for o in project.spec.stage(p.name).outs]
        after_wave = msg.view.after_wave
        recorder.before_finish = lambda: record_own_writes(project.hasher, outs, after_wave)
        slurm, on_slurm = self._slurm(project.spec, stages)
        routes = dict.fromkeys(on_slurm, slurm) if slurm is not None else {}
        try:
            execute(
                project.spec,
                project.graph,
                Plan(tuple(Decision(p.name, True, p.reasons) for p in stages)),
                Router(self.control.workers, routes),
                state=project.state,
                hasher=project.hasher,
                emit=emit_all,
                cancel=recorder.cancel,
                trigger=msg.trigger,
                correlation_id=msg.correlation_id,
                actor="pivot watch",
                stale_runs=recorder.stale,  # a wave of pivot watch cancels stale runs
                wave_id=msg.wave_id,  # the Coordinator's: its checks and cancels name it
            )
        finally:
            if slurm is not None:
                slurm.close()

    def _slurm(
        self, spec: PipelineSpec, stages: list[PlannedStage]
    ) -> tuple[SlurmJobs | None, dict[str, dict[str, Any]]]:
        """The wave's SLURM stages (as declared) and the executor for them, if any."""
        from pivot.pipeline.slurm_resources import placement

        wanted = {p.name for p in stages}
        on_slurm = placement({s.name: s.slurm for s in spec.stages if s.name in wanted}, None, {})
        if not on_slurm:
            return None, {}
        from pivot.jobs.config import load_config
        from pivot.pipeline import slurm_adopt
        from pivot.pipeline.slurm_executor import SlurmJobs

        # The jobs a killed pivot left are taken over; the log also follows their watchers.
        store = self.ctx.store
        adoptable = slurm_adopt.candidates(r.event for r in store.read(types=slurm_adopt.TYPES))
        root = self.pipeline.root
        jobs = SlurmJobs(
            load_config(root), on_slurm, actor="pivot watch", adoptable=adoptable, store=store
        )
        return jobs, on_slurm

    def _record_takeover(self, takeover: Takeover, previous: Holder) -> None:
        from pivot.events.location import open_project_store

        with open_project_store(self.pipeline.root) as store:
            found = takeover.events(store, previous)
        self.ctx.store.emit(*found)

    def _replan(self, msg: RunWave) -> list[PlannedStage]:
        project = msg.view.project
        if project is None:
            raise TypeError("a view without a loaded project")
        decided = project.plan(sorted(p.name for p in msg.stages))  # `pivot run`'s own plan
        project.save_cache()
        return still_to_run(msg.stages, {d.stage for d in decided.decisions if d.run})

    def on_stop(self) -> None:
        self.control.abort("shutdown")
        if self.thread is not None:
            self.thread.join(10)
        super().on_stop()
