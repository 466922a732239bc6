"""`pivot why` names the SLURM jobs of a stage run, whatever its outcome (pure folds)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pivot.events import EventStore
from pivot.events import pipeline as ev
from pivot.events.base import Event
from pivot.events.store import Recorded
from pivot.events.why import explain, explain_from_store


def _wave(wave: str) -> list[Event]:
    return [
        ev.WaveStarted(wave_id=wave, trigger="run", stages=("train",)),
        ev.StageQueued(stage="train", reasons=("never run",), correlation_id=wave),
        ev.StageStarted(stage="train", executor="slurm", correlation_id=wave),
    ]


def _submitted(wave: str, job: str, again: str = "") -> Event:
    return ev.StageSubmitted(
        stage="train", job_id=job, host="gpu", resubmit_of=again, correlation_id=wave
    )


def _state(wave: str, job: str, state: str, code: str = "") -> Event:
    return ev.StageJobState(
        stage="train", job_id=job, host="gpu", state=state, exit_code=code, correlation_id=wave
    )


def _jobs(log: list[Event], run: int = 1) -> tuple[str, list[tuple[str, ...]]]:
    a = explain("train", [Recorded(i + 1, e) for i, e in enumerate(log)], run)
    return a.outcome, [(j["how"], j["job_id"], j["host"], j["state"]) for j in a.jobs]


SUCCESS = [
    *_wave("w1"),
    _submitted("w1", "12"),
    _state("w1", "12", "running"),
    ev.StageSucceeded(stage="train", duration=1.0, correlation_id="w1"),
]
FAILURE = [
    *_wave("w1"),
    _submitted("w1", "12"),
    _state("w1", "12", "failed", "3:0"),
    ev.StageFailed(stage="train", error="FAILED exit 3 (SLURM job 12 on gpu)", correlation_id="w1"),
]
CANCEL = [
    *_wave("w1"),
    _submitted("w1", "12"),
    _state("w1", "12", "cancelled", "0:15"),
    ev.StageCancelled(stage="train", reason="cancelled", correlation_id="w1"),
]
# kill -9 of pivot: the next run records the wave as interrupted, then adopts the job.
KILLED_THEN_ADOPTED = [
    *_wave("w1"),
    _submitted("w1", "12"),
    _state("w1", "12", "running"),
    ev.StageCancelled(stage="train", reason="interrupted", correlation_id="w1"),
    ev.WaveInterrupted(wave_id="w1", stages=("train",)),
    *_wave("w2"),
    ev.StageAdopted(stage="train", job_id="12", host="gpu", submitted_in="w1", correlation_id="w2"),
    ev.StageSucceeded(stage="train", duration=9.0, correlation_id="w2"),
]
RESUBMITTED = [
    *_wave("w1"),
    _submitted("w1", "12"),
    _state("w1", "12", "out_of_memory", "0:125"),
    _submitted("w1", "13", again="12"),
    _state("w1", "13", "completed", "0:0"),
    ev.StageSucceeded(stage="train", duration=3.0, correlation_id="w1"),
]


def test_every_outcome_of_a_slurm_run_names_its_job_and_host() -> None:
    assert _jobs(SUCCESS) == ("succeeded", [("submitted", "12", "gpu", "running")])
    assert _jobs(FAILURE) == ("failed", [("submitted", "12", "gpu", "failed")])
    assert _jobs(CANCEL) == ("cancelled", [("submitted", "12", "gpu", "cancelled")])
    assert _jobs(RESUBMITTED) == (
        "succeeded",
        [("submitted", "12", "gpu", "out_of_memory"), ("resubmitted", "13", "gpu", "completed")],
    )


def test_an_adopted_job_is_named_in_both_runs() -> None:
    assert _jobs(KILLED_THEN_ADOPTED) == ("succeeded", [("adopted", "12", "gpu", "")])
    assert _jobs(KILLED_THEN_ADOPTED, run=2) == (
        "cancelled",
        [("submitted", "12", "gpu", "running")],
    )
    a = explain("train", [Recorded(i + 1, e) for i, e in enumerate(KILLED_THEN_ADOPTED)])
    assert a.jobs[0]["submitted_in"] == "w1"


def test_a_local_run_has_no_jobs() -> None:
    log = [
        *_wave("w1")[:2],
        ev.StageStarted(stage="train", executor="local", correlation_id="w1"),
        ev.StageSucceeded(stage="train", duration=1.0, correlation_id="w1"),
    ]
    assert _jobs(log) == ("succeeded", [])


@pytest.mark.parametrize(
    "log", [SUCCESS, FAILURE, CANCEL, KILLED_THEN_ADOPTED, RESUBMITTED], ids=lambda _: ""
)
def test_reading_the_store_backwards_names_the_same_jobs(tmp_path: Path, log: Any) -> None:
    noise = [_state("w-other", "99", "running")] * 5  # another wave's job between them
    with EventStore.open(tmp_path / "events.db") as store:
        store.append([*noise, *log, *noise])
        for run in (1, 2):
            got = explain_from_store("train", store, run)
            assert got == explain("train", store.read(), run)
        # Without its wave.started, the run is explained alone, jobs included.
    with EventStore.open(tmp_path / "alone.db") as store:
        store.append([e for e in log if not isinstance(e, ev.WaveStarted)])
        assert explain_from_store("train", store).jobs == explain("train", store.read()).jobs
        assert explain_from_store("train", store).jobs
