"""Pipeline status: per stage its state, last run, duration, reason, last error.

State::

    {"stages": {name: {"state": "queued|running|succeeded|failed|skipped|cancelled",
                       "last_run": at of the last start or None,
                       "duration": seconds of the last finished run or None,
                       "reason": why it was queued, skipped or cancelled,
                       "last_error": the error of the last failure since the last
                                     success ("" if it has not failed since),
                       "wave_id": the wave of the latest event, "updated_at": at,
                       "executor": where its current or last run runs: "local",
                                   "slurm" ("" before it first started),
                       "host": the SLURM host of that run ("" when local),
                       "job": the SLURM job of that run, or None:
                              {"job_id", "host", "state", "exit_code",
                               "resubmit_of", "adopted", "ended", "at"}}},
     "wave": {"wave_id", "trigger", "stages", "started_at", "finished_at",
              "succeeded", "failed", "skipped", "cancelled", "duration",
              "interrupted": the process running it died (``wave.interrupted``)} or None,
     "pipeline_error": {"error", "file", "line", "at"} or None,
     "plan_error": {"error", "file", "line", "at"} of a ``wave.plan_failed`` (a dep or
                   output pivot cannot read) until the next wave starts, or None}

A run's job comes from its ``stage.submitted`` (or ``stage.adopted``, after a
killed pivot); a watcher's resubmission replaces it (``resubmit_of`` names
the job before). Its ``state`` is ``submitted`` (or ``adopted``) until a poll
of Slurm saw it (``stage.job_state``: ``pending``, ``running``, then its final
state with ``exit_code``); a run that ends before a poll saw the job end
(it wrote its outcome) takes its end from the run's end event: ``completed``
for a success, the ``job_state`` of ``stage.failed`` (``ended`` in logs
from before it was recorded). A cancelled run leaves the job as last seen: after a
``kill -9`` the job runs on, for the next pivot to adopt. A new start of the
stage clears the job.
"""

from __future__ import annotations

from typing import Any

from pivot.events import pipeline as ev
from pivot.events.store import Recorded
from pivot.jobs.slurm import FINAL_STATES
from pivot.projections.base import Projection, State

__all__ = ["PIPELINE_STATUS"]


def _initial() -> State:
    return {"stages": {}, "wave": None, "pipeline_error": None, "plan_error": None}


def _stage(state: State, name: str, at: float, wave_id: str) -> dict[str, Any]:
    stages: dict[str, dict[str, Any]] = state["stages"]
    entry = stages.get(name)
    if entry is None:
        entry = {
            "state": "",
            "last_run": None,
            "duration": None,
            "reason": "",
            "last_error": "",
            "wave_id": "",
            "updated_at": at,
            "executor": "",
            "host": "",
            "job": None,
        }
        stages[name] = entry
    entry["updated_at"] = at
    if wave_id:
        entry["wave_id"] = wave_id
    return entry


def _apply(state: State, rec: Recorded) -> State:
    e = rec.event
    if isinstance(e, ev.StageQueued):
        s = _stage(state, e.stage, e.at, e.correlation_id)
        s["state"] = "queued"
        s["reason"] = "; ".join(e.reasons)
    elif isinstance(e, ev.StageStarted):
        s = _stage(state, e.stage, e.at, e.correlation_id)
        s["state"] = "running"
        s["last_run"] = e.at
        s["executor"], s["host"], s["job"] = e.executor or "local", "", None
    elif isinstance(e, ev.StageSubmitted | ev.StageAdopted | ev.StageJobState):
        _apply_job(_stage(state, e.stage, e.at, e.correlation_id), e)
    elif isinstance(e, ev.StageSucceeded):
        s = _stage(state, e.stage, e.at, e.correlation_id)
        s["state"] = "succeeded"
        s["duration"] = e.duration
        s["last_error"] = ""  # a success supersedes an older run's failure
        _job_over(s, e.job_id, "completed", "")
    elif isinstance(e, ev.StageFailed):
        s = _stage(state, e.stage, e.at, e.correlation_id)
        s["state"] = "failed"
        s["duration"] = e.duration
        s["last_error"] = e.error
        _job_over(s, e.job_id, e.job_state, e.exit_code)
    elif isinstance(e, ev.StageSkipped):
        s = _stage(state, e.stage, e.at, e.correlation_id)
        s["state"] = "skipped"
        s["reason"] = e.reason
    elif isinstance(e, ev.StageCancelled):
        s = _stage(state, e.stage, e.at, e.correlation_id)
        s["state"] = "cancelled"
        s["reason"] = e.reason
    elif isinstance(e, ev.WaveStarted | ev.WaveFinished | ev.WaveInterrupted):
        if isinstance(e, ev.WaveStarted):
            state["plan_error"] = None  # planned this time
        _apply_wave(state, e)
    elif isinstance(e, ev.PipelineReloaded):
        for name in e.removed:
            state["stages"].pop(name, None)
        state["pipeline_error"] = state["plan_error"] = None
    elif isinstance(e, ev.PipelineInvalid | ev.WavePlanFailed):
        key = "pipeline_error" if isinstance(e, ev.PipelineInvalid) else "plan_error"
        state[key] = {"error": e.error, "file": e.file, "line": e.line, "at": e.at}
    return state


def _apply_job(
    s: dict[str, Any], e: ev.StageSubmitted | ev.StageAdopted | ev.StageJobState
) -> None:
    """The run's SLURM job: submitted (again), adopted, or seen in a new state."""
    s["executor"], s["host"] = "slurm", e.host
    job = s["job"]
    if isinstance(e, ev.StageJobState):
        if job is None or job["job_id"] != e.job_id:
            return  # a state of a job this run no longer follows
        ended = e.state in FINAL_STATES
        job.update(state=e.state, exit_code=e.exit_code, ended=ended, at=e.at)
        return
    adopted = isinstance(e, ev.StageAdopted)
    s["job"] = {
        "job_id": e.job_id,
        "host": e.host,
        "state": "adopted" if adopted else "submitted",
        "exit_code": "",
        "resubmit_of": e.resubmit_of if isinstance(e, ev.StageSubmitted) else "",
        "adopted": adopted,
        "ended": False,
        "at": e.at,
    }


def _job_over(s: dict[str, Any], job_id: str, state: str, exit_code: str) -> None:
    """The run ended with a result: its job is over, whether or not a poll saw it end.

    The end event names the job whose result counts and, for a failure, the
    state Slurm reported (or its exit status implied); a success is
    ``completed``. Logs from before those fields were recorded say ``ended``.
    """
    job = s["job"]
    if job is None or job["ended"]:
        return
    if job_id and job_id != job["job_id"]:
        return  # not the job this run follows (a log out of order): leave it as seen
    if job_id and state:
        job.update(state=state, exit_code=exit_code or job["exit_code"], ended=True)
    else:
        job.update(state="ended", ended=True)


def _apply_wave(state: State, e: ev.WaveStarted | ev.WaveFinished | ev.WaveInterrupted) -> None:
    if isinstance(e, ev.WaveStarted):
        state["wave"] = {
            "wave_id": e.wave_id,
            "trigger": e.trigger,
            "stages": list(e.stages),
            "started_at": e.at,
            "finished_at": None,
            "succeeded": 0,
            "failed": 0,
            "skipped": 0,
            "cancelled": 0,
            "duration": None,
            "interrupted": False,
        }
    elif isinstance(e, ev.WaveFinished):
        wave = state["wave"]
        if wave is not None and wave["wave_id"] == e.wave_id:
            wave.update(
                finished_at=e.at,
                succeeded=e.succeeded,
                failed=e.failed,
                skipped=e.skipped,
                cancelled=e.cancelled,
                duration=e.duration,
            )
    elif isinstance(e, ev.WaveInterrupted):
        wave = state["wave"]
        if wave is not None and wave["wave_id"] == e.wave_id:
            wave.update(finished_at=e.at, cancelled=len(e.stages), interrupted=True)


PIPELINE_STATUS = Projection(
    name="pipeline_status",
    version=6,  # 2: a success clears last_error; 3: wave.interrupted; 4: executor, host, job
    # 5: a job's end state from stage.succeeded / stage.failed; 6: plan_error
    types=tuple(c.TYPE for c in ev.STAGE_EVENTS)
    + tuple(c.TYPE for c in (ev.StageSubmitted, ev.StageAdopted, ev.StageJobState))
    + tuple(
        cls.TYPE
        for cls in (
            ev.WaveStarted,
            ev.WaveFinished,
            ev.WaveInterrupted,
            ev.PipelineReloaded,
            ev.PipelineInvalid,
            ev.WavePlanFailed,
        )
    ),
    initial=_initial,
    apply=_apply,
    description="per stage: state, last run, duration, reason, last error, SLURM job",
)
