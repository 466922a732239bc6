"""The pipeline status says where each stage runs and which SLURM job its run is (pure folds)."""

from __future__ import annotations

from typing import Any

from pivot.events import pipeline as ev
from pivot.events.base import Event
from pivot.events.store import Recorded
from pivot.projections.pipeline_status import PIPELINE_STATUS


def _fold(*events: Event) -> dict[str, Any]:
    state = PIPELINE_STATUS.fold([Recorded(i + 1, e) for i, e in enumerate(events)])
    stages: dict[str, Any] = state["stages"]
    return stages


def _job(stages: dict[str, Any], stage: str = "train") -> dict[str, Any]:
    job: dict[str, Any] = stages[stage]["job"]
    return job


W1, W2 = "wave1", "wave2"


def test_a_slurm_run_shows_its_job_from_submission_to_its_end() -> None:
    started = ev.StageStarted(stage="train", executor="slurm", correlation_id=W1)
    submitted = ev.StageSubmitted(stage="train", job_id="12", host="gpu", correlation_id=W1)
    stages = _fold(started)
    assert stages["train"]["executor"] == "slurm" and stages["train"]["job"] is None
    stages = _fold(started, submitted)
    assert stages["train"]["host"] == "gpu"
    assert _job(stages) | {"at": 0} == {
        "job_id": "12", "host": "gpu", "state": "submitted", "exit_code": "",
        "resubmit_of": "", "adopted": False, "ended": False, "at": 0,
    }  # fmt: skip
    pending = ev.StageJobState(stage="train", job_id="12", host="gpu", state="pending")
    running = ev.StageJobState(stage="train", job_id="12", host="gpu", state="running")
    assert _job(_fold(started, submitted, pending))["state"] == "pending"
    stages = _fold(started, submitted, pending, running)
    assert (_job(stages)["state"], _job(stages)["ended"]) == ("running", False)
    failed = ev.StageJobState(
        stage="train", job_id="12", host="gpu", state="failed", exit_code="3:0"
    )
    stages = _fold(started, submitted, running, failed, ev.StageFailed(stage="train", error="x"))
    assert stages["train"]["state"] == "failed"
    assert (_job(stages)["state"], _job(stages)["exit_code"], _job(stages)["ended"]) == (
        "failed",
        "3:0",
        True,
    )


def test_a_run_that_ends_before_a_poll_saw_its_job_end_takes_the_end_from_its_event() -> None:
    running = (
        ev.StageStarted(stage="train", executor="slurm"),
        ev.StageSubmitted(stage="train", job_id="12"),
        ev.StageJobState(stage="train", job_id="12", state="running"),
    )
    ok = _job(_fold(*running, ev.StageSucceeded(stage="train", duration=1.0, job_id="12")))
    assert (ok["state"], ok["ended"]) == ("completed", True)
    failed = ev.StageFailed(stage="train", error="x", job_id="12", job_state="failed",
                            exit_code="1:0")  # fmt: skip
    bad = _job(_fold(*running, failed))
    assert (bad["state"], bad["exit_code"], bad["ended"]) == ("failed", "1:0", True)
    # A log of pivot before the end events named the job.
    old = _job(_fold(*running, ev.StageSucceeded(stage="train", duration=1.0)))
    assert (old["job_id"], old["state"], old["ended"]) == ("12", "ended", True)


def test_a_resubmission_replaces_the_job_and_the_old_jobs_states_are_ignored() -> None:
    stages = _fold(
        ev.StageStarted(stage="train", executor="slurm"),
        ev.StageSubmitted(stage="train", job_id="12"),
        ev.StageJobState(stage="train", job_id="12", state="out_of_memory"),
        ev.StageSubmitted(stage="train", job_id="13", resubmit_of="12"),
        ev.StageJobState(stage="train", job_id="12", state="cancelled"),
        ev.StageJobState(stage="train", job_id="13", state="running"),
    )
    job = _job(stages)
    assert (job["job_id"], job["resubmit_of"], job["state"]) == ("13", "12", "running")


def test_a_killed_run_leaves_its_job_running_and_the_next_run_adopts_it() -> None:
    first = (
        ev.StageStarted(stage="train", executor="slurm", correlation_id=W1),
        ev.StageSubmitted(stage="train", job_id="12", correlation_id=W1),
        ev.StageJobState(stage="train", job_id="12", state="running", correlation_id=W1),
        ev.StageCancelled(stage="train", reason="interrupted", correlation_id=W1),
    )
    stages = _fold(*first)
    assert stages["train"]["state"] == "cancelled"
    assert (_job(stages)["state"], _job(stages)["ended"]) == ("running", False)
    stages = _fold(
        *first,
        ev.StageStarted(stage="train", executor="slurm", correlation_id=W2),
        ev.StageAdopted(stage="train", job_id="12", submitted_in=W1, correlation_id=W2),
    )
    assert (_job(stages)["state"], _job(stages)["adopted"]) == ("adopted", True)
    assert stages["train"]["wave_id"] == W2


def test_a_local_run_clears_the_job_and_an_old_log_reads_as_local() -> None:
    stages = _fold(
        ev.StageStarted(stage="train", executor="slurm"),
        ev.StageSubmitted(stage="train", job_id="12"),
        ev.StageSucceeded(stage="train", duration=1.0),
        ev.StageStarted(stage="train", executor="local"),
        ev.StageStarted(stage="prep"),  # a log of pivot before the executor was recorded
    )
    assert (stages["train"]["executor"], stages["train"]["job"]) == ("local", None)
    assert (stages["prep"]["executor"], stages["prep"]["host"]) == ("local", "")


def test_a_skip_keeps_the_last_runs_job() -> None:
    stages = _fold(
        ev.StageStarted(stage="train", executor="slurm"),
        ev.StageSubmitted(stage="train", job_id="12"),
        ev.StageSucceeded(stage="train", duration=1.0),
        ev.StageSkipped(stage="train", reason="up to date"),
    )
    assert stages["train"]["state"] == "skipped" and _job(stages)["job_id"] == "12"
