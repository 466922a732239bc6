"""Running a plan: stages in dependency order, independent ones in parallel.

:func:`execute` hands each stage of a :class:`~pivot.pipeline.plan.Plan` to
the executor a :class:`~pivot.pipeline.executor.Router` picks for it (local
workers, SLURM jobs; the caller owns them), as soon as everything upstream of
it succeeded, at most :attr:`~pivot.pipeline.executor.Executor.capacity` at
a time on each executor, so local and SLURM stages interleave in dependency
order. Every transition is an event handed to ``emit`` (append it to the
store, show it): ``WaveStarted``, ``StageQueued`` (with the reasons),
``StageSkipped``, ``StageStarted``, ``StageSucceeded`` / ``StageFailed`` /
``StageCancelled``, ``WaveFinished``; stage events, and those an executor adds
(``stage.submitted``), carry the wave id as ``correlation_id``.

``StageStarted`` is durable right before a stage is handed to its executor, when it
starts (never more stages in flight than the executor's capacity: a local stage goes to an
idle worker, or one still starting); a submit that raises closes its own and the round's
later starts as ``StageCancelled`` "not started". The worker reports its pid with the
outcome. Order and batches of ``emit``'s calls: :mod:`pivot.pipeline.wave_outbox`.

After a stage succeeds its record (code, dep hashes taken when it was submitted, params,
output hashes) is saved, with those of the stages that finished in the same poll, before
their end events are appended, so an interrupted run keeps what finished. A stage fails when
it raises, exits, crashes its worker (segfault, ``os._exit``: the executor reports every
run lost with the worker, and :mod:`pivot.pipeline.crash_recovery` says which to fail
and which to re-run alone to find the culprit), or does not write one of its outputs.
Without ``keep_going`` nothing new starts after a failure; with it, only the failed
stages' downstream is skipped. Cancellation (the
:class:`~pivot.pipeline.cancel.CancelToken`, or Ctrl-C reaching this thread) cancels
every executor (local workers and their children killed, SLURM jobs scancelled and
waited for) and reports running and waiting stages cancelled.
"""

from __future__ import annotations

import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pivot.events.base import Event, new_correlation_id
from pivot.events.pipeline import (
    StageCancelled,
    StageFailed,
    StageQueued,
    StageSkipped,
    StageStarted,
    StageSucceeded,
    WaveFinished,
    WaveStarted,
)
from pivot.pipeline.cancel import CancelToken
from pivot.pipeline.crash_recovery import after_crash, crash_message, may_start
from pivot.pipeline.dag import StageGraph
from pivot.pipeline.executor import CancelsOneRun, Emit, Executor, Router, StageRun, WorkerLost
from pivot.pipeline.hashing import FileHasher, recorded_params
from pivot.pipeline.plan import Plan
from pivot.pipeline.spec import PipelineSpec, StageSpec
from pivot.pipeline.stage_log import empty_log, log_path
from pivot.pipeline.stale_runs import STALE_CHECK_SECONDS, StaleRuns, changed_deps
from pivot.pipeline.state import StageRecord, StateStore
from pivot.pipeline.wave_frontier import Frontier
from pivot.pipeline.wave_outbox import WaveOutbox
from pivot.pipeline.wave_result import WaveResult
from pivot.pipeline.worker import StageOutcome, StageTask, job_id_of

__all__ = ["execute"]


class _Cancelled(Exception): ...


@dataclass
class _Running:
    stage: StageSpec
    started: float
    deps: dict[str, str | None]
    executor: Executor


def execute(
    spec: PipelineSpec,
    graph: StageGraph,
    plan: Plan,
    executors: Router | Executor,
    *,
    state: StateStore,
    hasher: FileHasher,
    emit: Emit,
    keep_going: bool = False,
    cancel: CancelToken | None = None,
    trigger: str = "run",
    correlation_id: str = "",
    actor: str = "pivot run",
    stale_runs: StaleRuns | None = None,
    wave_id: str = "",
) -> WaveResult:
    """Run the stages of ``plan`` that must run on ``executors`` (one for every stage, or a
    router); ``correlation_id`` links the wave to its cause (a change batch in watch
    mode); ``trigger`` is recorded in ``WaveStarted``. With ``stale_runs`` (`pivot watch`), a
    run whose deps change meanwhile, or marked there, is cancelled if its executor can
    (:mod:`pivot.pipeline.stale_runs`); ``wave_id``: the caller's id of the wave (a new one
    when empty). See the module docstring."""
    router = executors if isinstance(executors, Router) else Router(executors)
    wave = _Wave(spec, graph, plan, router, state, hasher, emit, keep_going, cancel, actor)
    wave.marks, wave.result.wave_id = stale_runs, wave_id or wave.result.wave_id
    return wave.run(trigger, correlation_id)


class _Wave:
    """The bookkeeping of one execution; see :func:`execute`."""

    def __init__(  # noqa: PLR0917 - private; execute() is keyword-only
        self,
        spec: PipelineSpec,
        graph: StageGraph,
        plan: Plan,
        router: Router,
        state: StateStore,
        hasher: FileHasher,
        emit: Emit,
        keep_going: bool,
        cancel: CancelToken | None,
        actor: str,
    ) -> None:
        self.spec, self.plan, self.router = spec, plan, router
        self.state, self.hasher = state, hasher
        self.outbox = WaveOutbox(emit)
        self.emit, self.flush = self.outbox.emit, self.outbox.flush
        self.keep_going, self.actor = keep_going, actor
        self.cancel = cancel if cancel is not None else CancelToken()
        self.by_name = {s.name: s for s in spec.stages}
        self.to_run = list(plan.to_run)
        run_set = set(self.to_run)
        self.ups = {n: [u for u in graph.upstream[n] if u in run_set] for n in self.to_run}
        self.result = WaveResult(new_correlation_id())
        self.frontier = Frontier(self.to_run, self.ups)  # what may start, what is skipped
        self.executors = list(router)
        self.running: dict[Future[StageOutcome], _Running] = {}
        self.suspects: set[str] = set()  # stages that were running when a worker died
        self.stop_new = False
        self.stale: dict[str, str] = {}  # stage -> why its run was cancelled as stale
        self.marks: StaleRuns | None = None  # None: stale runs are not cancelled (`pivot run`)
        self.unsaved: dict[str, StageRecord] = {}  # records of this poll, saved before its events

    def ev(self, cls: type[Event], **kw: object) -> Event:
        return cls(actor=self.actor, correlation_id=self.result.wave_id, **kw)  # type: ignore[arg-type]

    def run(self, trigger: str, correlation_id: str) -> WaveResult:
        result = self.result
        started_at = time.perf_counter()
        first: list[Event] = [
            WaveStarted(actor=self.actor, correlation_id=correlation_id,
                        wave_id=result.wave_id, trigger=trigger, stages=tuple(self.to_run))
        ]  # fmt: skip
        for d in self.plan.decisions:
            if d.run:
                first.append(self.ev(StageQueued, stage=d.stage, reasons=d.reasons))
            else:
                result.status[d.stage] = "up to date"
                first.append(self.ev(StageSkipped, stage=d.stage, reason="up to date"))
        # Recorded with the first round's stage.started, in one append before
        # those stages are submitted (with wave.finished when nothing runs).
        self.outbox.hold(first)
        try:
            try:
                while self._step():
                    pass
            except (_Cancelled, KeyboardInterrupt):
                self._save_and_flush()
                self._cancel_all()
            finally:
                self.state.save_file_cache(self.hasher.dirty)
                self.hasher.dirty.clear()
        except BaseException:
            self._save_and_flush()  # what is still held, when nothing else could go
            raise
        self._save_records()
        result.duration = time.perf_counter() - started_at
        finished = WaveFinished(
            actor=self.actor, correlation_id=correlation_id, wave_id=result.wave_id,
            succeeded=result.count("succeeded"), failed=result.count("failed"),
            skipped=result.count("skipped") + result.count("up to date"),
            cancelled=result.count("cancelled"), duration=result.duration,
        )  # fmt: skip
        self.emit([finished])
        self.flush()
        return result

    def _save_records(self) -> None:
        if self.unsaved:
            self.state.save_records(self.unsaved)
            self.unsaved.clear()

    def _save_and_flush(self) -> None:
        """The held records, then the held events in one append."""
        self._save_records()
        self.flush()

    def _step(self) -> bool:
        """Settle, start what is ready, wait for one completion; False when done (the
        held events then go with wave.finished). What a step produces until its submits
        is one append, durable before them (:mod:`pivot.pipeline.wave_outbox`)."""
        if self.cancel.requested:
            raise _Cancelled
        self.outbox.hold()
        self._settle()
        chosen = self._choose_ready()
        if not chosen and not self.running:
            return False
        self._save_and_flush()
        for i, (s, executor) in enumerate(chosen):
            try:
                self._submit(s, executor)
            except BaseException:  # its start and the later ones' are in the log: close them
                self._not_submitted([spec for spec, _ in chosen[i:]])
                raise
        waiting: list[Future[Any]] = [*self.running, self.cancel.future]
        check = self.marks is not None and any(
            isinstance(r.executor, CancelsOneRun) for r in self.running.values()
        )
        timeout = STALE_CHECK_SECONDS if check else None
        done, _ = wait(waiting, timeout=timeout, return_when=FIRST_COMPLETED)
        self.outbox.hold()  # this poll's end events wait for the next round's starts
        if self.cancel.requested:
            raise _Cancelled
        if check:
            self._cancel_stale_runs()
        for future in done:
            run = self.running.pop(future, None)
            if run is not None:
                lost = self._finished(run, future)
                if lost is not None:
                    self._recover(run, lost)
        return True

    def _cancel_stale_runs(self) -> None:
        """Cancel each cancellable run marked stale, or whose deps changed since submitted."""
        for future, run in self.running.items():
            executor, name = run.executor, run.stage.name
            if name in self.stale or not isinstance(executor, CancelsOneRun):
                continue
            changed = changed_deps(run.stage.deps, run.deps, self.hasher.hashes(run.stage.deps))
            reason = self.marks.reason(name, changed) if self.marks is not None else None
            if reason is not None:
                self.stale[name] = reason
                executor.cancel_run(future)

    def _settle(self) -> None:
        """Skip stages that can no longer run (failed upstream, or stopping)."""
        status = self.result.status
        for name, reason in self.frontier.settle(status):
            status[name] = "skipped"
            self.emit([self.ev(StageSkipped, stage=name, reason=reason)])
        if self.stop_new and self.frontier.pending:
            drained = self.frontier.drain()
            status.update(dict.fromkeys(drained, "skipped"))
            why = "not run: another stage failed"
            self.emit([self.ev(StageSkipped, stage=n, reason=why) for n in drained])

    def _choose_ready(self) -> list[tuple[StageSpec, Executor]]:
        """Ready stages their executors have room for, in plan order; their starts emitted."""
        full: set[int] = set()  # id() of the executors at capacity
        held: list[str] = []
        chosen: list[tuple[StageSpec, Executor]] = []
        while len(full) < len(self.executors) and (name := self.frontier.next_ready()):
            executor = self.router.executor_for(name)
            beside = [r.stage.name for r in self.running.values() if r.executor is executor]
            beside += [s.name for s, e in chosen if e is executor]
            if id(executor) in full or len(beside) >= executor.capacity:
                full.add(id(executor))
                held.append(name)
                continue
            if not may_start(name, beside, self.suspects):
                held.append(name)
                continue  # a suspect of a worker crash runs alone
            self.frontier.started(name)
            stale = self.marks.reason(name, ()) if self.marks is not None else None
            if stale is not None and isinstance(executor, CancelsOneRun):
                self.result.status[name] = "cancelled"  # a job on old code: the next wave's
                self.emit([self.ev(StageCancelled, stage=name, reason=stale)])
                continue
            chosen.append((self.by_name[name], executor))
            self.emit([self.ev(StageStarted, stage=name, executor=executor.name)])
        self.frontier.put_back(held)
        return chosen

    def _not_submitted(self, stages: list[StageSpec]) -> None:
        """Stages whose start was appended but that were never handed to their executor."""
        self.result.status.update(dict.fromkeys((s.name for s in stages), "cancelled"))
        self.emit([self.ev(StageCancelled, stage=s.name, reason="not started") for s in stages])

    def _submit(self, s: StageSpec, executor: Executor) -> None:
        task = StageTask(
            root=self.spec.root, stage=s.name, module=s.module, file=s.file,
            qualname=s.qualname, dep_args=dict(s.dep_args), out_args=dict(s.out_args),
            params=dict(s.params), log_path=str(log_path(self.spec.root, s.name)),
        )  # fmt: skip
        deps = self.hasher.hashes(s.deps)
        empty_log(Path(task.log_path))
        # At most `capacity` in flight (_choose_ready): an idle worker takes this one
        # now, so "started" (appended before this submit) is not shown for a waiting stage.
        run = StageRun(task, s, self.result.wave_id, deps, self.outbox.from_executor)
        future = executor.submit(run)
        self.running[future] = _Running(s, time.perf_counter(), deps, executor)

    def _finished(self, run: _Running, future: Future[StageOutcome]) -> WorkerLost | None:
        """Handle one completed future; returns the loss when its worker died."""
        took = time.perf_counter() - run.started
        reason = self.stale.get(run.stage.name)
        if reason is not None:  # cancelled as stale: not a failure
            self.result.status[run.stage.name] = "cancelled"
            job = job_id_of(future)
            self.emit([self.ev(StageCancelled, stage=run.stage.name, reason=reason, job_id=job)])
            return None
        try:
            outcome = future.result()
        except WorkerLost as exc:
            return exc
        except Exception as exc:  # the task could not be sent or its result not read
            self._fail(run.stage.name, f"{type(exc).__name__}: {exc}", took)
            return None
        if outcome.ok:
            self._succeed(run, outcome)
        else:
            self._fail(run.stage.name, outcome.error, outcome.duration, outcome)
        return None

    def _recover(self, run: _Running, loss: WorkerLost) -> None:
        # Every run the dead worker's pool had in flight is lost with it; the
        # executor names them (their futures fail too, maybe later: drop them).
        lost = [run]
        for future, other in list(self.running.items()):
            if other.executor is run.executor and other.stage.name in loss.stages:
                lost.append(self.running.pop(future))
        verdict = after_crash([r.stage.name for r in lost], self.suspects)
        by_name = {r.stage.name: r for r in lost}
        for name in verdict.fail:
            took = time.perf_counter() - by_name[name].started
            self._fail(name, crash_message(str(loss)), took)
        self.suspects.update(verdict.retry)
        self.frontier.retry(verdict.retry)

    def _fail(self, name: str, error: str, took: float, got: StageOutcome | None = None) -> None:
        """Record a failure; ``got`` the run's outcome (its traceback, pid, job), if it had one
        (pid 0: no worker reported, it died or was never reached)."""
        self.result.status[name] = "failed"
        self.result.errors[name] = error
        self.state.mark_failed(name)
        o = got or StageOutcome(name, False, 0, took)
        failed = self.ev(
            StageFailed, stage=name, error=error, duration=took, traceback=o.traceback,
            pid=o.pid, job_id=o.job_id, job_state=o.state, exit_code=o.exit_code,
        )  # fmt: skip
        self.emit([failed])
        self.stop_new = self.stop_new or not self.keep_going

    def _succeed(self, run: _Running, outcome: StageOutcome) -> None:
        s = run.stage
        outs, error = self.hasher.outputs(s.outs)  # a FIFO output fails its stage, not the wave
        if error:
            self._fail(s.name, error, outcome.duration, outcome)
            return
        record = StageRecord(
            fingerprint=s.fingerprint,
            code=s.code,
            deps=run.deps,
            params=recorded_params(s.params),
            outs=outs,
            at=time.time(),
            duration=outcome.duration,
        )
        self.unsaved[s.name] = record  # saved before the held events go out
        self.result.status[s.name] = "succeeded"
        succeeded = self.ev(
            StageSucceeded, stage=s.name, duration=outcome.duration, pid=outcome.pid,
            job_id=outcome.job_id, fingerprint=s.fingerprint, code=dict(s.code),
            deps=dict(run.deps), outs=outs, params=recorded_params(s.params),
        )  # fmt: skip
        self.emit([succeeded])

    def _cancel_all(self) -> None:
        self.result.cancelled = True
        reason = self.cancel.reason or "interrupted"
        # Local workers first (killed at once), then those that wait for a
        # scheduler to say their runs ended (SLURM).
        for executor in self.router:
            executor.cancel(reason)
        events: list[Event] = []
        for future, run in self.running.items():
            self.result.status[run.stage.name] = "cancelled"
            job = job_id_of(future)
            events.append(self.ev(StageCancelled, stage=run.stage.name, reason=reason, job_id=job))
        for name in self.frontier.drain():
            self.result.status[name] = "cancelled"
            events.append(self.ev(StageCancelled, stage=name, reason="not started"))
        self.running.clear()
        self.emit(events)
