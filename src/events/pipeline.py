"""Events of the pipeline domain: waves, stages, reloads, workers, changes.

A *wave* is one execution of a set of stages: a `pivot run`, or one round of
`pivot watch`. Stage events carry the wave id as their ``correlation_id``; a
wave caused by file changes carries the change batch id as its own
``correlation_id``, so `pivot why` can walk from a stage run back to paths.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pivot.events.base import Event, event, upcaster

__all__ = [
    "STAGE_ENDS",
    "STAGE_EVENTS",
    "ChangesDetected",
    "OrphansStopped",
    "PipelineInvalid",
    "PipelineReloaded",
    "StageAdopted",
    "StageCancelled",
    "StageFailed",
    "StageJobState",
    "StageQueued",
    "StageSkipped",
    "StageStarted",
    "StageSubmitted",
    "StageSucceeded",
    "WaveCodeChecked",
    "WaveFinished",
    "WaveInterrupted",
    "WavePlanFailed",
    "WaveStarted",
    "WorkersRestartFailed",
    "WorkersRestarted",
]


@event
@dataclass(frozen=True, kw_only=True)
class WaveStarted(Event):
    """A wave begins. ``trigger``: run, initial, change, force."""

    TYPE = "wave.started"
    wave_id: str
    trigger: str
    stages: tuple[str, ...] = ()


@event
@dataclass(frozen=True, kw_only=True)
class WaveFinished(Event):
    """A wave ended; counts of each outcome and its wall time."""

    TYPE = "wave.finished"
    wave_id: str
    succeeded: int = 0
    failed: int = 0
    skipped: int = 0
    cancelled: int = 0
    duration: float = 0.0


@event
@dataclass(frozen=True, kw_only=True)
class WaveInterrupted(Event):
    """A wave that never finished: the process running it died (``kill -9``, a crash).

    Recorded by the next `pivot run` or `pivot watch` of the project when it
    takes the run lock, after the stages the wave left unfinished were
    recorded as ``stage.cancelled``; ``stages`` lists them. ``pid`` is the
    process that ran the wave when the lock file still said so (0 otherwise).
    It ends the wave as ``wave.finished`` would.
    """

    TYPE = "wave.interrupted"
    wave_id: str
    stages: tuple[str, ...] = ()
    pid: int = 0
    reason: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class StageQueued(Event):
    """A stage will run in this wave, and why (``code changed: ...`` etc.)."""

    TYPE = "stage.queued"
    stage: str
    reasons: tuple[str, ...] = ()


@event
@dataclass(frozen=True, kw_only=True)
class StageStarted(Event):
    """A stage was handed to an idle worker process, so it runs from now on.

    A wave never has more stages in flight than worker processes, so no stage
    waits behind another (the first ones may wait for their worker to finish
    starting). Which process ran it is the ``pid`` of the
    ``stage.succeeded`` / ``stage.failed`` that ends it (v1 had a ``pid`` here
    that was never filled in). ``executor`` is where it runs: ``local`` (worker
    processes here) or ``slurm`` (a job, named by the ``stage.submitted`` that
    follows); "" in logs of pivot before it was recorded (all local).
    """

    TYPE = "stage.started"
    VERSION = 2
    stage: str
    executor: str = ""


@upcaster(StageStarted.TYPE, 1)
def _stage_started_v1(data: dict[str, Any]) -> dict[str, Any]:
    # v1's pid was always 0: the pool had not chosen a worker when it was written.
    return {k: v for k, v in data.items() if k != "pid"}


@event
@dataclass(frozen=True, kw_only=True)
class StageSkipped(Event):
    """A stage did not run: up to date, or its upstream failed."""

    TYPE = "stage.skipped"
    stage: str
    reason: str


@event
@dataclass(frozen=True, kw_only=True)
class StageSucceeded(Event):
    """A stage finished and its outputs were recorded as good.

    The optional fields carry what the run recorded for skip decisions (code
    fingerprint and per-piece hashes, dep and output hashes, params), so
    ``.pivot/state.db`` can be rebuilt from the log, and watch mode can tell
    the stage's own writes (``outs``) from edits by someone else. ``pid`` is
    the worker process that ran it (0 in logs of pivot before it was recorded);
    ``job_id`` the SLURM job whose result it is (after a watcher's resubmit,
    the last one), empty for a stage that ran locally.
    """

    TYPE = "stage.succeeded"
    stage: str
    duration: float
    pid: int = 0
    job_id: str = ""
    fingerprint: str = ""
    code: Mapping[str, str] = field(default_factory=dict)
    deps: Mapping[str, str | None] = field(default_factory=dict)
    outs: Mapping[str, str | None] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)


@event
@dataclass(frozen=True, kw_only=True)
class StageFailed(Event):
    """A stage raised, crashed or exited; its outputs are not recorded.

    ``pid`` is the worker process that ran it, 0 when none reported back (the
    worker died, or the stage never reached one). A stage run as a SLURM job
    names it: ``job_id`` (the job whose result counts), ``job_state`` as Slurm
    reported its end (``failed``, ``out_of_memory``, ``timeout``...) and
    ``exit_code`` as Slurm spells it (``3:0``); all empty for a local stage,
    and the job id too when sbatch refused the job.
    """

    TYPE = "stage.failed"
    stage: str
    error: str
    duration: float = 0.0
    traceback: str = ""
    pid: int = 0
    job_id: str = ""
    job_state: str = ""
    exit_code: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class StageCancelled(Event):
    """A stage was stopped (Ctrl-C, shutdown, restart) or never started; ``job_id`` the
    SLURM job that was cancelled, if it ran as one."""

    TYPE = "stage.cancelled"
    stage: str
    reason: str = ""
    job_id: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class StageSubmitted(Event):
    """A stage run was submitted as a SLURM job (after its ``stage.started``).

    ``resources`` are what the job asks for (its ``Slurm(...)`` over the
    ``[slurm]`` defaults); ``run_file`` is the stage run's task, which the job
    reads and beside which it writes its outcome. A job submitted again for
    the same run (a watcher's ``resubmit``) carries the earlier one as
    ``resubmit_of``: its result is the run's. ``inputs`` are what the run was
    decided on (``fingerprint``, ``deps`` hashes, ``params``): a later pivot
    adopts the job of a killed run only while they still hold.
    """

    TYPE = "stage.submitted"
    stage: str
    job_id: str
    host: str = "local"
    resources: Mapping[str, Any] = field(default_factory=dict)
    run_file: str = ""
    resubmit_of: str = ""
    inputs: Mapping[str, Any] = field(default_factory=dict)


@event
@dataclass(frozen=True, kw_only=True)
class StageAdopted(Event):
    """A stage run takes over the SLURM job an earlier, killed pivot submitted for it.

    The job (``stage.submitted`` of ``submitted_in``, an earlier wave) was
    still pending or running, or had ended with its outcome written, and the
    stage's inputs had not changed since: it is not submitted again, and its
    result is this run's.
    """

    TYPE = "stage.adopted"
    stage: str
    job_id: str
    host: str = "local"
    run_file: str = ""
    submitted_in: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class StageJobState(Event):
    """The SLURM job of a stage run changed state (``pending``, ``running``, ``completed``,
    ``failed``, ``out_of_memory``...), as one poll of Slurm saw it; ``exit_code`` as Slurm
    reports it (``3:0``) once the job ended."""

    TYPE = "stage.job_state"
    stage: str
    job_id: str
    host: str = "local"
    state: str
    exit_code: str = ""


# A stage's life in a wave, and the events that end it (one home for every
# reader that follows stages: status, why, the close of interrupted waves).
StageEnd = StageSucceeded | StageFailed | StageSkipped | StageCancelled
STAGE_ENDS: tuple[type[StageEnd], ...] = (StageSucceeded, StageFailed, StageSkipped, StageCancelled)
STAGE_EVENTS: tuple[type[StageQueued | StageStarted | StageEnd], ...] = (
    StageQueued,
    StageStarted,
    *STAGE_ENDS,
)


@event
@dataclass(frozen=True, kw_only=True)
class PipelineReloaded(Event):
    """`pipeline.py` was loaded again; how the stage set changed.

    ``stages``: the stages this command keeps up to date (for `pivot watch
    STAGE...`, those and their upstream), in a topological order; () in logs
    of pivot before it was recorded.
    """

    TYPE = "pipeline.reloaded"
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()


@event
@dataclass(frozen=True, kw_only=True)
class PipelineInvalid(Event):
    """Loading the pipeline failed; the last valid one is kept."""

    TYPE = "pipeline.invalid"
    error: str
    file: str = ""
    line: int = 0


@event
@dataclass(frozen=True, kw_only=True)
class WavePlanFailed(Event):
    """`pivot watch` could not plan a wave: reading what the stages depend on or make
    failed (a dep or output that is a FIFO, a device...). The pipeline is fine; nothing
    runs, and the next change plans again. ``error`` is what `pivot run` would say."""

    TYPE = "wave.plan_failed"
    error: str
    file: str = ""
    line: int = 0


@event
@dataclass(frozen=True, kw_only=True)
class WorkersRestarted(Event):
    """The worker pool was replaced by fresh processes."""

    TYPE = "workers.restarted"
    jobs: int
    reason: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class WorkersRestartFailed(Event):
    """Starting fresh workers failed; the next wave retries."""

    TYPE = "workers.restart_failed"
    error: str


@event
@dataclass(frozen=True, kw_only=True)
class OrphansStopped(Event):
    """Processes a dead pivot (``holder``) left running were killed before a new wave.

    The run lock's file lists the workers of the process holding it; the next
    holder kills any of them still running (with everything below them), so
    a stage never runs in an orphan and in a new run at once.
    """

    TYPE = "workers.orphans_stopped"
    holder: int
    pids: tuple[int, ...] = ()


@event
@dataclass(frozen=True, kw_only=True)
class WaveCodeChecked(Event):
    """`pivot watch`: code changed while wave ``wave_id`` (the id of its ``wave.started``)
    ran SLURM jobs, so the pipeline was loaded beside it to compare; ``stale``: its SLURM
    stages whose code or params changed (their jobs are cancelled and submitted again in the
    next wave). ``error``: the load failed (nothing is cancelled)."""

    TYPE = "wave.code_checked"
    wave_id: str
    stale: tuple[str, ...] = ()
    error: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class ChangesDetected(Event):
    """A debounced batch of changed paths; ``batch_id`` is the cause id.

    ``paths`` holds at most a bounded sample; ``count`` is the true number and
    ``overflow`` says the batch was too large to list (rebuild everything).
    """

    TYPE = "changes.detected"
    batch_id: str
    kind: str  # "code" | "data"
    paths: tuple[str, ...] = ()
    count: int = 0
    overflow: bool = False
