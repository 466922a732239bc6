"""`pivot why`: following correlation ids from a stage back to the change batch."""

from __future__ import annotations

import random
from pathlib import Path

from pivot.events import EventStore
from pivot.events.base import Event
from pivot.events.pipeline import (
    ChangesDetected,
    StageFailed,
    StageJobState,
    StageQueued,
    StageSkipped,
    StageStarted,
    StageSubmitted,
    StageSucceeded,
    WaveFinished,
    WaveStarted,
)
from pivot.events.store import Recorded
from pivot.events.why import explain, explain_from_store


def _records(events: list[Event]) -> list[Recorded]:
    return [Recorded(i + 1, e) for i, e in enumerate(events)]


def _change_wave(batch: str, wave: str, paths: tuple[str, ...], at: float) -> list[Event]:
    return [
        ChangesDetected(batch_id=batch, kind="data", paths=paths, count=len(paths), at=at,
                        correlation_id=batch),
        WaveStarted(wave_id=wave, trigger="change", stages=("prep", "train"), at=at + 1,
                    correlation_id=batch),
    ]  # fmt: skip


def test_latest_run_is_traced_to_its_batch_and_deps_through_upstream() -> None:
    log = [
        WaveStarted(wave_id="w0", trigger="run", stages=("prep", "train"), at=1.0),
        StageQueued(stage="train", reasons=("forced",), correlation_id="w0", at=1.1),
        StageSucceeded(stage="train", duration=1.0, correlation_id="w0", at=2.0),
        *_change_wave("b1", "w1", ("data/raw.csv", "README.md"), 10.0),
        StageQueued(stage="prep", reasons=("dep changed: data/raw.csv",), correlation_id="w1"),
        StageQueued(stage="train", reasons=("upstream will run: prep",), correlation_id="w1"),
        StageStarted(stage="train", correlation_id="w1"),
        StageFailed(stage="train", error="boom", correlation_id="w1", at=12.0),
        WaveFinished(wave_id="w1", failed=1, correlation_id="b1"),
    ]
    a = explain("train", _records(log))
    assert (a.outcome, a.seq, a.detail, a.at) == ("failed", 9, "boom", 12.0)
    assert a.wave == {"wave_id": "w1", "trigger": "change", "at": 11.0, "seq": 5}
    assert a.reasons == ["upstream will run: prep"]
    assert a.upstream == {"prep": ["dep changed: data/raw.csv"]}
    assert a.cause is not None
    assert a.cause["paths"] == ["data/raw.csv", "README.md"]
    assert a.cause["via_deps"] == ["data/raw.csv"]
    assert (a.cause["seq"], a.cause["at"], a.cause["kind"]) == (4, 10.0, "data")
    assert [(c["type"], c["seq"]) for c in a.chain] == [
        ("stage.failed", 9),
        ("wave.started", 5),
        ("changes.detected", 4),
    ]


def test_a_skip_gives_its_reason_and_a_run_without_batch_its_trigger() -> None:
    log = [
        WaveStarted(wave_id="w0", trigger="run", stages=()),
        StageSkipped(stage="prep", reason="up to date", correlation_id="w0"),
    ]
    a = explain("prep", _records(log))
    assert (a.outcome, a.detail, a.cause) == ("skipped", "up to date", None)
    assert a.wave is not None and a.wave["trigger"] == "run"
    assert a.as_dict()["chain"][0]["type"] == "stage.skipped"


def test_the_last_real_run_is_explained_and_the_skips_after_it_summarised() -> None:
    log = [
        *_change_wave("b1", "w1", ("data/raw.csv",), 10.0),
        StageQueued(stage="train", reasons=("dep changed: data/raw.csv",), correlation_id="w1"),
        StageStarted(stage="train", correlation_id="w1"),
        StageFailed(stage="train", error="boom", correlation_id="w1", at=12.0),
        WaveStarted(wave_id="w2", trigger="force", stages=("train",), at=20.0),
        StageQueued(stage="train", reasons=("forced",), correlation_id="w2"),
        StageStarted(stage="train", correlation_id="w2"),
        StageSucceeded(stage="train", duration=1.0, correlation_id="w2", at=22.0),
        WaveStarted(wave_id="w3", trigger="run", stages=("train",), at=30.0),
        StageSkipped(stage="train", reason="up to date", correlation_id="w3", at=31.0),
        WaveStarted(wave_id="w4", trigger="run", stages=("train",), at=40.0),
        StageSkipped(stage="train", reason="up to date", correlation_id="w4", at=41.0),
    ]
    last = explain("train", _records(log))
    assert (last.outcome, last.reasons, last.run, last.runs_seen) == ("succeeded", ["forced"], 1, 1)
    assert last.later == {
        "runs": 0,
        "skips": 2,
        "latest": {"outcome": "skipped", "detail": "up to date", "seq": 13, "at": 41.0},
    }
    before = explain("train", _records(log), run=2)
    assert (before.outcome, before.detail, before.runs_seen) == ("failed", "boom", 2)
    assert before.cause is not None and before.cause["via_deps"] == ["data/raw.csv"]
    assert before.later is not None and (before.later["runs"], before.later["skips"]) == (1, 2)
    missing = explain("train", _records(log), run=3)
    assert (missing.outcome, missing.runs_seen) == ("", 2)


def test_unknown_stage_has_no_outcome() -> None:
    a = explain("nope", _records(_change_wave("b", "w", ("x",), 1.0)))
    assert a.outcome == "" and a.chain == []


def test_reading_only_what_is_needed_gives_the_same_answer(tmp_path: Path) -> None:
    """explain_from_store (backwards, a few pages) == explain over the whole log."""
    rng = random.Random(3)
    log: list[Event] = []
    stages = ["prep", "train", "eval"]
    for n in range(60):
        batch, wave = f"b{n}", f"w{n}"
        log += _change_wave(batch, wave, (f"data/{n}.csv",), float(n * 10))
        for s in rng.sample(stages, rng.randint(1, 3)):
            log.append(StageQueued(stage=s, reasons=(f"dep changed: data/{n}.csv",),
                                   correlation_id=wave))  # fmt: skip
            log.append(StageStarted(stage=s, correlation_id=wave))
            if rng.random() < 0.3:  # a run on SLURM: its jobs are named too
                log.append(StageSubmitted(stage=s, job_id=str(n), correlation_id=wave))
                log.append(StageJobState(stage=s, job_id=str(n), state="running",
                                         correlation_id=wave))  # fmt: skip
            if rng.random() < 0.5:
                log.append(StageSucceeded(stage=s, duration=1.0, correlation_id=wave))
            else:
                log.append(StageSkipped(stage=s, reason="upstream failed: x", correlation_id=wave))
        log += [StageStarted(stage="other", correlation_id="w-other")] * rng.randint(0, 300)
    with EventStore.open(tmp_path / "events.db") as store:
        store.append(log)
        for stage in [*stages, "other", "missing"]:
            for run in (1, 2, 5, 100):
                got = explain_from_store(stage, store, run)
                assert got == explain(stage, store.read(), run)
