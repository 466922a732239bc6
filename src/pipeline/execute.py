"""Running a plan: stages in dependency order, independent ones in parallel.

:func:`execute` submits each stage of a :class:`~pivot.pipeline.plan.Plan` to a
pool the caller owns, as soon as everything upstream of it succeeded, at most
``pool.jobs`` at a time. Every transition is an event handed to ``emit``
(append it to the store, show it): ``WaveStarted``, ``StageQueued`` (with the
reasons), ``StageSkipped``, ``StageStarted``, ``StageSucceeded`` /
``StageFailed`` / ``StageCancelled``, ``WaveFinished``; stage events carry the
wave id as ``correlation_id``. ``StageStarted`` is emitted when a stage is
handed to the pool, which is when it starts: never more stages are in flight
than the pool has workers, so each goes to an idle worker (or, first in a
run, to one still starting) and never queues behind another stage. The worker
reports its pid with the outcome; ``StageSucceeded`` / ``StageFailed`` record it.
The wave's first events (``WaveStarted``, the queued and up-to-date stages)
and the first ``StageStarted`` go to ``emit`` in one call, once the first
stages are submitted: recording is a durable append, and the stages need not
wait for it.

After a stage succeeds its record (code, dep hashes taken when it was
submitted, params, output hashes) is saved, so an interrupted run keeps what
finished. A stage fails when it raises, exits, crashes the worker (segfault,
``os._exit``: loky then breaks the whole pool, so it is rebuilt; when several
stages were running, each of them is re-run alone to find the culprit), or
does not write one of its outputs. Without ``keep_going`` nothing new starts
after a failure; with it, only the failed stages' downstream is skipped.
Cancellation (:class:`Cancel`, or Ctrl-C reaching this thread) kills the
workers and their children and reports running and waiting stages cancelled.

Stages named in ``on_slurm`` (stage -> its resources) go to ``slurm``, a
:class:`~pivot.pipeline.slurm_executor.SlurmJobs`, as SLURM jobs instead:
at most ``slurm.capacity`` of them in flight besides the ``pool.jobs``
local ones; their outcomes are checked and recorded the same way, and a
cancellation scancels their jobs and waits until Slurm says they ended.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
from pivot.pipeline.dag import StageGraph
from pivot.pipeline.hashing import FileHasher, recorded_params
from pivot.pipeline.plan import Plan
from pivot.pipeline.pool import Pool
from pivot.pipeline.slurm_adopt import run_inputs
from pivot.pipeline.spec import PipelineSpec, StageSpec
from pivot.pipeline.state import STATE_DIR, StageRecord, StateStore
from pivot.pipeline.worker import StageOutcome, StageTask, run_stage

if TYPE_CHECKING:
    from pivot.pipeline.slurm_executor import SlurmJobs

__all__ = ["Cancel", "Emit", "WaveResult", "execute", "log_path"]

Emit = Callable[[Sequence[Event]], object]


# How often `pivot watch` checks the deps of stages whose SLURM jobs run.
STALE_CHECK_SECONDS = 1.0


def log_path(root: str | Path, stage: str) -> Path:
    """Where a stage's stdout and stderr go: ``.pivot/logs/<stage>.log``."""
    return Path(root) / STATE_DIR / "logs" / f"{stage}.log"


class Cancel:
    """A cancellation token: :meth:`cancel` from any thread (or a signal handler)."""

    def __init__(self) -> None:
        self.future: Future[str] = Future()
        self._lock = threading.Lock()

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the running wave to stop; idempotent."""
        with self._lock:
            if not self.future.done():
                self.future.set_result(reason)

    @property
    def requested(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self.future.done()

    @property
    def reason(self) -> str:
        """The reason given to :meth:`cancel` ("" when not cancelled)."""
        return self.future.result() if self.future.done() else ""


@dataclass
class WaveResult:
    """How a wave ended: each stage's status (``succeeded``, ``failed``, ``skipped``,
    ``cancelled``, ``up to date``) and the one-line errors of failed stages."""

    wave_id: str
    status: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0
    cancelled: bool = False

    def count(self, status: str) -> int:
        """How many stages ended with ``status``."""
        return sum(1 for s in self.status.values() if s == status)

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing was cancelled."""
        return not self.cancelled and self.count("failed") == 0


class _Cancelled(Exception):
    pass


def _broken_pool_errors() -> tuple[type[BaseException], ...]:
    from concurrent.futures.process import BrokenProcessPool

    from loky.process_executor import BrokenProcessPool as LokyBroken

    return (BrokenProcessPool, LokyBroken)


@dataclass
class _Running:
    stage: StageSpec
    started: float
    deps: dict[str, str | None]
    remote: bool = False  # a SLURM job, not a local worker


def execute(
    spec: PipelineSpec,
    graph: StageGraph,
    plan: Plan,
    pool: Pool,
    *,
    state: StateStore,
    hasher: FileHasher,
    emit: Emit,
    keep_going: bool = False,
    cancel: Cancel | None = None,
    trigger: str = "run",
    correlation_id: str = "",
    actor: str = "pivot run",
    slurm: SlurmJobs | None = None,
    on_slurm: Mapping[str, Mapping[str, Any]] | None = None,
    cancel_stale_jobs: bool = False,
) -> WaveResult:
    """Run the stages of ``plan`` that must run; see the module docstring.

    ``correlation_id`` links the wave to its cause (a change batch in watch
    mode); ``trigger`` is recorded in ``WaveStarted``. With
    ``cancel_stale_jobs`` (`pivot watch`), a SLURM stage whose deps change
    while its job runs has the job cancelled (its result would be stale) and
    ends ``cancelled``; the change makes it stale for the next wave.
    """
    wave = _Wave(
        spec, graph, plan, pool, state, hasher, emit, keep_going, cancel or Cancel(), actor
    )
    if on_slurm:
        if slurm is None:
            raise ValueError("stages run on SLURM but no SlurmJobs was given")
        wave.slurm, wave.on_slurm = slurm, on_slurm
        wave.cancel_stale = cancel_stale_jobs
    return wave.run(trigger, correlation_id)


class _Wave:
    """The bookkeeping of one execution; see :func:`execute`."""

    def __init__(  # noqa: PLR0917 - private; execute() is keyword-only
        self,
        spec: PipelineSpec,
        graph: StageGraph,
        plan: Plan,
        pool: Pool,
        state: StateStore,
        hasher: FileHasher,
        emit: Emit,
        keep_going: bool,
        cancel: Cancel,
        actor: str,
    ) -> None:
        self.spec, self.plan, self.pool = spec, plan, pool
        self.state, self.hasher, self._emit = state, hasher, emit
        # The wave's first events wait until its first stages are submitted.
        self._held: list[Event] | None = None
        self.keep_going, self.cancel, self.actor = keep_going, cancel, actor
        self.by_name = {s.name: s for s in spec.stages}
        self.to_run = list(plan.to_run)
        run_set = set(self.to_run)
        self.ups = {n: [u for u in graph.upstream[n] if u in run_set] for n in self.to_run}
        self.result = WaveResult(new_correlation_id())
        self.pending = list(self.to_run)
        self.running: dict[Future[StageOutcome], _Running] = {}
        self.suspects: set[str] = set()  # stages that were running when a worker died
        self.stop_new = False
        self.slurm: SlurmJobs | None = None
        self.on_slurm: Mapping[str, Mapping[str, Any]] = {}
        self.cancel_stale = False
        self.stale: dict[str, str] = {}  # SLURM stage -> why its job was cancelled

    def emit(self, events: Sequence[Event]) -> None:
        """Hand ``events`` on, or keep them for :meth:`flush` while the first stages start."""
        if self._held is not None:
            self._held.extend(events)
        else:
            self._emit(events)

    def flush(self) -> None:
        """Hand on what :meth:`emit` kept, in order, in one call (one append)."""
        held, self._held = self._held, None
        if held:
            self._emit(held)

    def ev(self, cls: type[Event], **kw: object) -> Event:
        return cls(actor=self.actor, correlation_id=self.result.wave_id, **kw)  # type: ignore[arg-type]

    def run(self, trigger: str, correlation_id: str) -> WaveResult:
        result = self.result
        started_at = time.perf_counter()
        first: list[Event] = [
            WaveStarted(
                actor=self.actor,
                correlation_id=correlation_id,
                wave_id=result.wave_id,
                trigger=trigger,
                stages=tuple(self.to_run),
            )
        ]
        for d in self.plan.decisions:
            if d.run:
                first.append(self.ev(StageQueued, stage=d.stage, reasons=d.reasons))
            else:
                result.status[d.stage] = "up to date"
                first.append(self.ev(StageSkipped, stage=d.stage, reason="up to date"))
        # Recorded with the first stage.started, once those stages are on their
        # way: recording is a durable append, not worth a wait before them.
        self._held = first
        try:
            while self._step():
                pass
        except (_Cancelled, KeyboardInterrupt):
            self.flush()
            self._cancel_all()
        finally:
            self.flush()
            self.state.save_file_cache(self.hasher.dirty)
            self.hasher.dirty.clear()
        result.duration = time.perf_counter() - started_at
        self.emit(
            [
                WaveFinished(
                    actor=self.actor,
                    correlation_id=correlation_id,
                    wave_id=result.wave_id,
                    succeeded=result.count("succeeded"),
                    failed=result.count("failed"),
                    skipped=result.count("skipped") + result.count("up to date"),
                    cancelled=result.count("cancelled"),
                    duration=result.duration,
                )
            ]
        )
        return result

    def _step(self) -> bool:
        """Settle, start what is ready, wait for one completion; False when done."""
        if self.cancel.requested:
            raise _Cancelled
        self._settle()
        self._start_ready()
        self.flush()
        if not self.running:
            return False
        waiting: list[Future[Any]] = [*self.running, self.cancel.future]
        jobs = self.cancel_stale and any(r.remote for r in self.running.values())
        done, _ = wait(waiting, timeout=STALE_CHECK_SECONDS if jobs else None,
                       return_when=FIRST_COMPLETED)  # fmt: skip
        if self.cancel.requested:
            raise _Cancelled
        if jobs:
            self._cancel_stale_jobs()
        crashed: list[tuple[_Running, str]] = []
        for future in done:
            run = self.running.pop(future, None)
            if run is not None:
                crash = self._finished(run, future)
                if crash:
                    crashed.append((run, crash))
        if crashed:
            self._recover(crashed)
        return True

    def _cancel_stale_jobs(self) -> None:
        """Cancel the job of each SLURM stage whose deps changed since it was submitted."""
        assert self.slurm is not None
        for future, run in self.running.items():
            name = run.stage.name
            if not run.remote or name in self.stale:
                continue
            now = self.hasher.hashes(run.stage.deps)
            changed = [d for d in run.stage.deps if now.get(d) != run.deps.get(d)]
            if changed:
                self.stale[name] = (
                    f"its input changed while its job ran ({changed[0]}): "
                    "submitted again in the next wave"
                )
                self.slurm.cancel_run(future)

    def _settle(self) -> None:
        """Skip stages that can no longer run (failed upstream, or stopping)."""
        status = self.result.status
        for name in list(self.pending):
            bad = [u for u in self.ups[name] if status.get(u) in ("failed", "skipped", "cancelled")]
            if bad:
                self.pending.remove(name)
                status[name] = "skipped"
                what = "cancelled" if status.get(bad[0]) == "cancelled" else "failed"
                self.emit([self.ev(StageSkipped, stage=name, reason=f"upstream {what}: {bad[0]}")])
        if self.stop_new and self.pending:
            events = []
            for n in self.pending:
                status[n] = "skipped"
                events.append(
                    self.ev(StageSkipped, stage=n, reason="not run: another stage failed")
                )
            self.pending.clear()
            self.emit(events)

    def _start_ready(self) -> None:
        for name in list(self.pending):
            local = [r for r in self.running.values() if not r.remote]
            if name in self.on_slurm and self.slurm is not None:
                if len(self.running) - len(local) >= self.slurm.capacity:
                    continue
            elif len(local) >= self.pool.jobs or any(r.stage.name in self.suspects for r in local):
                continue
            if any(self.result.status.get(u) != "succeeded" for u in self.ups[name]):
                continue
            if name in self.suspects and local:
                continue  # a suspect of a worker crash runs alone
            self.pending.remove(name)
            self._submit(self.by_name[name])

    def _submit(self, s: StageSpec) -> None:
        task = StageTask(
            root=self.spec.root,
            stage=s.name,
            module=s.module,
            file=s.file,
            qualname=s.qualname,
            dep_args=dict(s.dep_args),
            out_args=dict(s.out_args),
            params=dict(s.params),
            log_path=str(log_path(self.spec.root, s.name)),
        )
        deps = self.hasher.hashes(s.deps)
        _empty_log(Path(task.log_path))
        # _start_ready keeps at most pool.jobs stages in flight: an idle worker
        # takes this one now, so "started" is not shown for a waiting stage.
        # Its time is taken before the worker can begin, never after.
        started = self.ev(StageStarted, stage=s.name)
        resources = self.on_slurm.get(s.name)
        if resources is not None and self.slurm is not None:
            # Recorded before sbatch runs: its stage.submitted comes after.
            self.emit([started])
            self.flush()
            inputs = run_inputs(s.fingerprint, deps, recorded_params(s.params))
            future = self.slurm.submit(
                task, resources, self.result.wave_id, inputs, watchers=s.watchers
            )
            self.running[future] = _Running(s, time.perf_counter(), deps, remote=True)
            return
        future = self.pool.submit(run_stage, task)
        self.running[future] = _Running(s, time.perf_counter(), deps)
        self.emit([started])

    def _finished(self, run: _Running, future: Future[StageOutcome]) -> str:
        """Handle one completed future; returns the error text if its worker died."""
        took = time.perf_counter() - run.started
        reason = self.stale.get(run.stage.name)
        if reason is not None:  # its job was cancelled as stale: not a failure
            self.result.status[run.stage.name] = "cancelled"
            self.emit([self.ev(StageCancelled, stage=run.stage.name, reason=reason)])
            return ""
        try:
            outcome = future.result()
        except _broken_pool_errors() as exc:
            return str(exc) or type(exc).__name__
        except Exception as exc:  # the task could not be sent or its result not read
            self._fail(run.stage.name, f"{type(exc).__name__}: {exc}", took)
            return ""
        if outcome.ok:
            self._succeed(run, outcome)
        else:
            self._fail(
                run.stage.name, outcome.error, outcome.duration, outcome.traceback, outcome.pid
            )
        return ""

    def _recover(self, crashed: list[tuple[_Running, str]]) -> None:
        # A dead worker breaks the whole loky pool: every stage still running is
        # lost with it. Rebuild the pool. A stage that was alone is the culprit;
        # otherwise re-run each lost stage on its own to find out which.
        lost = [r for r, _ in crashed] + [r for r in self.running.values() if not r.remote]
        self.running = {f: r for f, r in self.running.items() if r.remote}
        self.pool.restart("a worker process died")
        if len(lost) == 1 or all(r.stage.name in self.suspects for r in lost):
            for r in lost:
                self._fail(
                    r.stage.name, _crash_message(crashed[0][1]), time.perf_counter() - r.started
                )
            return
        for r in lost:
            self.suspects.add(r.stage.name)
            self.pending.append(r.stage.name)
        self.pending.sort(key=self.to_run.index)

    def _fail(self, name: str, error: str, duration: float, tb: str = "", pid: int = 0) -> None:
        """Record a failure; ``pid`` 0 when no worker reported (it died, or was never reached)."""
        self.result.status[name] = "failed"
        self.result.errors[name] = error
        self.state.mark_failed(name)
        failed = self.ev(
            StageFailed, stage=name, error=error, duration=duration, traceback=tb, pid=pid
        )
        self.emit([failed])
        self.stop_new = self.stop_new or not self.keep_going

    def _succeed(self, run: _Running, outcome: StageOutcome) -> None:
        s = run.stage
        outs = {o: self.hasher.hash(o) for o in s.outs}
        missing = [o for o, h in outs.items() if h is None]
        if missing:
            error = f"declared output not written: {missing[0]}"
            self._fail(s.name, error, outcome.duration, pid=outcome.pid)
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
        self.state.save_record(s.name, record)
        self.result.status[s.name] = "succeeded"
        self.emit(
            [
                self.ev(
                    StageSucceeded,
                    stage=s.name,
                    duration=outcome.duration,
                    pid=outcome.pid,
                    fingerprint=s.fingerprint,
                    code=dict(s.code),
                    deps=dict(run.deps),
                    outs=outs,
                    params=recorded_params(s.params),
                )
            ]
        )

    def _cancel_all(self) -> None:
        self.result.cancelled = True
        reason = self.cancel.reason or "interrupted"
        if self.slurm is not None:  # returns once Slurm says the jobs ended
            self.slurm.cancel(reason)
        self.pool.kill()
        events: list[Event] = []
        for run in self.running.values():
            self.result.status[run.stage.name] = "cancelled"
            events.append(self.ev(StageCancelled, stage=run.stage.name, reason=reason))
        for name in self.pending:
            self.result.status[name] = "cancelled"
            events.append(self.ev(StageCancelled, stage=name, reason="not started"))
        self.running.clear()
        self.pending.clear()
        self.emit(events)


def _empty_log(path: Path) -> None:
    """Empty a stage's log before its ``stage.started`` is emitted.

    Whoever follows the log from that event on (`pivot run`'s output, watch's
    log pane) must see only this run's lines, never the last run's traceback;
    the worker opening it later would be too late.
    """
    # A log that cannot be written here fails the worker's own open, which says so.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")


def _crash_message(error: str) -> str:
    text = error.replace("\n", " ")
    if "SIGSEGV" in text:
        return "worker process crashed (segmentation fault)"
    return "worker process died without reporting (crash or os._exit): " + text[:200]
