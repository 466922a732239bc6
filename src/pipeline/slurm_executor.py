"""Stage runs as SLURM jobs: submit with sbatch, follow with one squeue per host per cycle.

:class:`SlurmJobs` is where a wave sends the stages that run on SLURM, an
:class:`~pivot.pipeline.executor.Executor`. For each stage run
:meth:`SlurmJobs.submit` writes the run file, builds the batch script
(:func:`pivot.pipeline.slurm_job.batch_script`) and gives it to
``sbatch --parsable`` on the stage's host (a local subprocess or SSH, through
the transports the job watchers use); it returns a future of the stage's
:class:`~pivot.pipeline.worker.StageOutcome`. Submissions run concurrently
on one event loop; the wave keeps at most :attr:`SlurmJobs.capacity` runs in
flight (``--slurm-jobs``).

Every :data:`POLL_SECONDS` a poll cycle settles the jobs in flight:

1. a job whose outcome file is there has ended as far as the stage goes (the
   job wrote it last, atomically): no Slurm command is needed for it;
2. the others are asked of Slurm in **one** ``squeue`` per host for all of
   them; a state change is a ``stage.job_state`` event;
3. a job squeue reports ended without an outcome (killed, out of memory or
   time, node failure), or no longer lists, is asked of ``scontrol`` (its
   exit code), then ``sacct``; :func:`pivot.pipeline.slurm_outcome.ended`
   says what that means for the stage.

A lookup that fails (squeue timed out, the host unreachable) never ends a
stage: only Slurm saying a job ended does. :meth:`SlurmJobs.cancel`
(Ctrl-C, SIGTERM) scancels every job in flight and returns once Slurm
reports each of them ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivot.events.base import Event
from pivot.events.pipeline import StageAdopted, StageJobState, StageSubmitted
from pivot.events.store import EventStore
from pivot.jobs import slurm
from pivot.jobs.config import Config
from pivot.jobs.definition import WatcherDefinition
from pivot.jobs.transport import TransportError
from pivot.pipeline import slurm_job
from pivot.pipeline.executor import Emit, StageRun
from pivot.pipeline.hashing import recorded_params
from pivot.pipeline.slurm_adopt import run_inputs, same_inputs
from pivot.pipeline.slurm_hosts import SlurmHosts
from pivot.pipeline.slurm_outcome import ended, reported, sbatch_refusal
from pivot.pipeline.slurm_resources import sbatch_options
from pivot.pipeline.slurm_watchers import SETTLE_SECONDS, StageWatchers, load_definitions
from pivot.pipeline.worker import StageOutcome, StageTask

__all__ = ["DEFAULT_SLURM_JOBS", "POLL_SECONDS", "SlurmJobs"]

DEFAULT_SLURM_JOBS = 100
POLL_SECONDS = 1.0
# A job neither squeue, scontrol nor sacct knows, this many cycles in a row
# after it was submitted, is reported lost (Slurm forgot it: MinJobAge passed).
_UNKNOWN_CYCLES = 30


@dataclass
class _Run:
    """One stage run on SLURM: its task, its current job, how to answer the wave."""

    task: StageTask
    host: str
    resources: Mapping[str, Any]
    run_file: Path
    future: Future[StageOutcome]
    correlation_id: str
    emit: Emit
    inputs: Mapping[str, Any] = field(default_factory=dict)
    submitted_at: float = field(default_factory=time.perf_counter)
    job_id: str = ""
    state: str = ""
    unknown: int = 0
    watchers: list[WatcherDefinition] = field(default_factory=list)
    # A job that ended without success, while its watchers may still resubmit it.
    failed: StageOutcome | None = None
    failed_at: float = 0.0


class SlurmJobs:
    """The SLURM side of a wave: submit stage runs, poll their jobs, cancel them.

    ``placement`` gives each stage it runs its resources
    (:func:`pivot.pipeline.slurm_resources.placement`).
    """

    name = "slurm"

    def __init__(
        self,
        config: Config,
        placement: Mapping[str, Mapping[str, Any]],
        *,
        capacity: int = DEFAULT_SLURM_JOBS,
        poll_seconds: float = POLL_SECONDS,
        actor: str = "pivot run",
        adoptable: Mapping[str, StageSubmitted] | None = None,
        store: EventStore | None = None,
    ) -> None:
        self.config = config
        self.capacity = max(1, capacity)
        self.poll_seconds = poll_seconds
        self.placement = dict(placement)
        self._actor = actor
        self._emit_lock = threading.Lock()
        self._lock = threading.Lock()
        self._runs: dict[str, _Run] = {}  # run id -> run in flight
        self.hosts = SlurmHosts(config)
        self._poller: Future[None] | None = None
        self._submitting: set[Future[None]] = set()
        self.cycles = 0  # poll cycles done (the commands they ran: hosts.commands)
        # Jobs a killed pivot left (slurm_adopt.candidates); checked with Slurm
        # once, at the first submission.
        self._candidates = dict(adoptable or {})
        self._adoptable: dict[str, StageSubmitted] | None = None
        # The stages' watchers= (needs the store: it reads what they did).
        self._watch = StageWatchers(store, config) if store is not None else None
        self._cancelling = False

    # --- the wave's side -------------------------------------------------

    def submit(self, stage_run: StageRun) -> Future[StageOutcome]:
        """Submit one stage run; its outcome arrives in the returned future.

        The run's inputs (:func:`pivot.pipeline.slurm_adopt.run_inputs`) are
        recorded with the job; a job a killed pivot left for this stage with
        the same inputs, still alive, is adopted instead of submitting anew.
        The stage's ``watchers=`` (files, project-relative) are attached to
        each of its jobs. Its events go out through ``stage_run.emit``.
        """
        task, spec, correlation_id = stage_run.task, stage_run.stage, stage_run.wave_id
        resources = self.placement[task.stage]
        inputs = run_inputs(spec.fingerprint, stage_run.deps, recorded_params(spec.params))
        watchers = spec.watchers
        emit = stage_run.emit
        host = str(resources.get("host", "local"))
        future: Future[StageOutcome] = Future()
        future.set_running_or_notify_cancel()
        left = self._left_alive().pop(task.stage, None)
        if left is not None and left.host == host and same_inputs(left, inputs or {}):
            return self._adopt(left, task, resources, correlation_id, future, emit=emit)
        if left is not None:  # a job for other inputs: its outputs would be wrong
            with contextlib.suppress(TransportError, TimeoutError):
                self.hosts.call(left.host, ["scancel", left.job_id])
        # The job's own output is the stage's log (see slurm_job.batch_script).
        task = dataclasses.replace(task, log_path="")
        run_id = uuid.uuid4().hex[:12]
        run_file = Path(task.root) / slurm_job.RUNS_DIR / f"{task.stage}.{run_id}.json"
        run = _Run(task, host, resources, run_file, future, correlation_id, emit, dict(inputs))
        if watchers:
            if self._watch is None:
                raise ValueError("a stage with watchers= needs SlurmJobs(store=...)")
            run.watchers = load_definitions(task.root, watchers)
        slurm_job.write_run_file(run_file, task, run_id)
        with self._lock:
            self._runs[run_id] = run
        sub = self.hosts.submit(self._sbatch(run_id, run))
        self._submitting.add(sub)
        sub.add_done_callback(self._submitting.discard)
        if self._poller is None:
            self._poller = self.hosts.submit(self._poll_forever())
        return future

    def _adopt(
        self,
        left: StageSubmitted,
        task: StageTask,
        resources: Mapping[str, Any],
        correlation_id: str,
        future: Future[StageOutcome],
        *,
        emit: Emit,
    ) -> Future[StageOutcome]:
        run = _Run(task, left.host, resources, Path(left.run_file), future, correlation_id,
                   emit, dict(left.inputs), job_id=left.job_id)  # fmt: skip
        with self._lock:
            self._runs[f"adopted.{left.job_id}"] = run
        self._send(
            run,
            StageAdopted(
                actor=self._actor, correlation_id=correlation_id, stage=task.stage,
                job_id=left.job_id, host=left.host, run_file=left.run_file,
                submitted_in=left.correlation_id,
            )
        )  # fmt: skip
        if self._poller is None:
            self._poller = self.hosts.submit(self._poll_forever())
        return future

    def _left_alive(self) -> dict[str, StageSubmitted]:
        """The candidates Slurm still has pending or running, or that wrote their outcome."""
        if self._adoptable is not None:
            return self._adoptable
        self._adoptable = {}
        by_host: dict[str, list[StageSubmitted]] = {}
        for sub in self._candidates.values():
            by_host.setdefault(sub.host, []).append(sub)
        for host, subs in by_host.items():
            try:
                result = self.hosts.call(host, slurm.squeue_argv([s.job_id for s in subs]))
            except (TransportError, TimeoutError):
                continue  # not adopted: a new job is submitted (the old one is cancelled)
            infos = slurm.parse_squeue(result.stdout) if result.returncode == 0 else {}
            for sub in subs:
                info = infos.get(sub.job_id)
                # The name too: after a restart of Slurm a job id may be another's.
                alive = (
                    info is not None
                    and not info.ended
                    and info.name == slurm_job.job_name(sub.stage)
                )
                written = slurm_job.read_outcome(sub.run_file) if sub.run_file else None
                if alive or (written is not None and written[1] == sub.job_id):
                    self._adoptable[sub.stage] = sub
        return self._adoptable

    def cancel_run(self, future: Future[StageOutcome]) -> None:
        """scancel the job of one stage run; its future resolves once Slurm says it ended."""
        with self._lock:
            run = next((r for r in self._runs.values() if r.future is future), None)
        if run is not None and run.job_id:
            with contextlib.suppress(TransportError, TimeoutError):
                self.hosts.call(run.host, ["scancel", run.job_id])
            run.watchers = []  # a watcher's resubmit of a cancelled stale job is not followed

    def cancel(self, reason: str = "cancelled", timeout: float = 120.0) -> None:
        """scancel every job in flight; return once Slurm reports them all ended."""
        self._cancelling = True  # their watchers are not waited for
        for sub in list(self._submitting):  # a job being submitted is cancelled too
            with contextlib.suppress(Exception):
                sub.result(60)
        with self._lock:
            runs = list(self._runs.items())
        if not runs or not self.hosts.started:
            return
        by_host: dict[str, list[str]] = {}
        for _, run in runs:
            if run.job_id:
                by_host.setdefault(run.host, []).append(run.job_id)
        for host, ids in by_host.items():
            with contextlib.suppress(TransportError, TimeoutError):
                self.hosts.call(host, ["scancel", *ids])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                left = [r for r in self._runs.values() if r.job_id]
            if not left:
                break
            time.sleep(min(self.poll_seconds, 0.5))
        with self._lock:
            rest, self._runs = list(self._runs.values()), {}
        for run in rest:  # never submitted, or Slurm did not answer in time
            outcome = StageOutcome(run.task.stage, False, 0, 0.0, reason, job_id=run.job_id,
                                   state="cancelled")  # fmt: skip
            self._resolve(run, outcome)

    def close(self) -> None:
        """Stop polling and release the hosts' connections."""
        if self._watch is not None:
            self._watch.close()
        self.hosts.close()

    # --- submission ----------------------------------------------------------

    async def _sbatch(self, run_id: str, run: _Run) -> None:
        task = run.task
        script = slurm_job.batch_script(task, str(run.run_file), sbatch_options(run.resources))
        try:
            result = await self.hosts.run(run.host, slurm.sbatch_argv(task.root), input_text=script)
            job_id = slurm.parse_sbatch(result.stdout) if result.returncode == 0 else ""
            error = "" if job_id else sbatch_refusal(result.stderr, result.stdout)
        except (TransportError, ValueError) as exc:
            job_id, error = "", str(exc)
        if not job_id:
            with self._lock:
                self._runs.pop(run_id, None)
            took = time.perf_counter() - run.submitted_at
            message = f"sbatch refused the job on {run.host}: {error}"
            self._resolve(run, StageOutcome(task.stage, False, 0, took, message))
            return
        run.job_id = job_id
        self._submitted(run)

    def _submitted(self, run: _Run, resubmit_of: str = "") -> None:
        events: list[Event] = [
            StageSubmitted(
                actor=self._actor, correlation_id=run.correlation_id, stage=run.task.stage,
                job_id=run.job_id, host=run.host, resources=dict(run.resources),
                run_file=str(run.run_file), inputs=dict(run.inputs), resubmit_of=resubmit_of,
            )
        ]  # fmt: skip
        if run.watchers and self._watch is not None and not resubmit_of:
            # (A resubmitting watcher attaches the watchers to the new job itself.)
            events += self._watch.attach(run.watchers, run.job_id, run.host, run.correlation_id)
        with self._emit_lock:
            run.emit(events)

    # --- polling ---------------------------------------------------------------

    async def _poll_forever(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self._cycle()
            except Exception as exc:
                # Expected trouble (a lookup failing) is handled inside the cycle;
                # anything else is a bug: say so rather than leave the wave waiting.
                self._fail_all(f"pivot's SLURM poll failed: {type(exc).__name__}: {exc}")

    async def _cycle(self) -> None:
        with self._lock:
            runs = {rid: r for rid, r in self._runs.items() if r.job_id}
        if not runs:
            return
        self.cycles += 1
        if self._watch is not None and any(r.failed for r in runs.values()):
            self._watch.refresh()
        asking: dict[str, dict[str, str]] = {}  # host -> job id -> run id
        for rid, run in runs.items():
            if run.failed is not None:
                self._settle(rid, run)
                continue
            written = slurm_job.read_outcome(run.run_file)
            if written is not None and written[1] == run.job_id:
                self._finish(rid, run, reported(written[0], run.job_id, run.host))
            else:
                asking.setdefault(run.host, {})[run.job_id] = rid
        await asyncio.gather(*(self._ask(host, jobs, runs) for host, jobs in asking.items()))

    async def _ask(self, host: str, jobs: dict[str, str], runs: Mapping[str, _Run]) -> None:
        """One squeue for all of ``host``'s jobs; scontrol/sacct only for the ended or unlisted."""
        try:
            result = await self.hosts.run(host, slurm.squeue_argv(list(jobs)))
        except TransportError:
            return  # a failed lookup ends nothing; the next cycle asks again
        if result.returncode != 0 and not slurm.squeue_says_unknown(result.stderr):
            return
        infos = slurm.parse_squeue(result.stdout) if result.returncode == 0 else {}
        for job_id, rid in jobs.items():
            run = runs[rid]
            info = infos.get(job_id)
            if info is None or info.ended:
                detail = await self.hosts.ended_job(host, job_id)
                if detail is None and info is None:
                    run.unknown += 1
                    if run.unknown >= _UNKNOWN_CYCLES:
                        lost = slurm.JobInfo(job_id=job_id, state="lost")
                        self._end(rid, run, lost)
                    continue
                info = detail or info
            assert info is not None
            self._state(run, info)
            if info.ended:
                self._end(rid, run, info)

    def _state(self, run: _Run, info: slurm.JobInfo) -> None:
        if info.state == run.state:
            return
        run.state = info.state
        self._send(
            run,
            StageJobState(
                actor=self._actor, correlation_id=run.correlation_id, stage=run.task.stage,
                job_id=info.job_id, host=run.host, state=info.state,
                exit_code=info.exit_code if info.ended else "",
            )
        )  # fmt: skip

    def _end(self, rid: str, run: _Run, info: slurm.JobInfo) -> None:
        written = slurm_job.read_outcome(run.run_file)
        took = time.perf_counter() - run.submitted_at
        self._finish(rid, run, ended(run.task.stage, info, run.host, written, took))

    def _settle(self, rid: str, run: _Run) -> None:
        """A failed job with watchers: follow a resubmission, or fail once they are done."""
        assert self._watch is not None and run.failed is not None
        new = self._watch.resubmitted(run.host, run.job_id)
        if new:
            old, run.job_id, run.state, run.failed = run.job_id, new, "", None
            self._submitted(run, resubmit_of=old)
            return
        waited = time.monotonic() - run.failed_at
        if self._watch.settled(run.host, run.job_id) or waited > SETTLE_SECONDS:
            outcome, run.failed = run.failed, None
            self._finish(rid, run, outcome, settle=False)

    def _finish(self, rid: str, run: _Run, outcome: StageOutcome, settle: bool = True) -> None:
        if settle and not outcome.ok and run.watchers and not self._cancelling:
            run.failed, run.failed_at = outcome, time.monotonic()
            return  # its watchers may resubmit it: _settle decides next cycles
        with self._lock:
            if self._runs.pop(rid, None) is None:
                return
        self._resolve(run, outcome)

    def _fail_all(self, error: str) -> None:
        with self._lock:
            runs, self._runs = list(self._runs.values()), {}
        for run in runs:
            outcome = StageOutcome(run.task.stage, False, 0, 0.0, error, job_id=run.job_id)
            self._resolve(run, outcome)

    def _resolve(self, run: _Run, outcome: StageOutcome) -> None:
        if not run.future.done():
            run.future.set_result(outcome)

    def _send(self, run: _Run, event: Event) -> None:
        with self._emit_lock:
            run.emit([event])
