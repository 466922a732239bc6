"""The store's listeners: a wave's batch is one append, concurrent emits share one
transaction, listeners get every event with its seq in seq order, and ``emit``
never raises (a storage error is told once)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pivot.actors.worker_pool import WaveRecorder, record_own_writes
from pivot.events.location import open_project_store
from pivot.events.pipeline import StageStarted, StageSucceeded, WaveFinished, WaveStarted
from pivot.events.store import EventStore, Recorded
from pivot.pipeline.errors import PipelineError
from pivot.pipeline.hashing import UNREADABLE, FileHasher

from testkit.tmpfs_disk import tmpfs_disk


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.001)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with open_project_store(tmp_path) as opened:
        yield opened


def test_a_waves_own_writes_are_recorded_before_anyone_hears_it_finished(
    store: EventStore,
) -> None:
    # pivot watch hashes the wave's outputs in before_finish: an edit made once
    # wave.finished is out must not be taken for the wave's own write.
    finished_then: list[int] = []
    recorder = WaveRecorder(store, "w1", ("a",))
    recorder.before_finish = lambda: finished_then.append(
        len(list(store.read(types=[WaveFinished.TYPE])))
    )
    recorder.emit(StageStarted(stage="a"))
    assert finished_then == []
    recorder.emit(StageSucceeded(stage="a", duration=0.1), WaveFinished(wave_id="w1", succeeded=1))
    assert finished_then == [0]
    assert len(list(store.read(types=[WaveFinished.TYPE]))) == 1


def test_wave_finished_is_recorded_even_when_before_finish_raises(
    store: EventStore, tmp_path: Path
) -> None:
    # Hashing a FIFO output raised there: the batch with the last stage ends and
    # wave.finished was lost, and finish() would not emit them again (seen already).
    os.mkfifo(tmp_path / "out.fifo")
    hasher = FileHasher(tmp_path, {})
    recorder = WaveRecorder(store, "w1", ("a",))

    def hash_outs() -> None:  # what own_writes did: raises on the FIFO
        hasher.hashes(["out.fifo"])

    recorder.before_finish = hash_outs
    recorder.emit(
        WaveStarted(wave_id="w1", trigger="change", stages=("a",)), StageStarted(stage="a")
    )
    with pytest.raises(PipelineError, match=r"out\.fifo is a named pipe"):
        recorder.emit(
            StageSucceeded(stage="a", duration=0.1), WaveFinished(wave_id="w1", succeeded=1)
        )
    recorder.finish(0.0, "change", "c1")  # what the WorkerPool does next: nothing to add
    types = [r.event.TYPE for r in store.read()]
    assert types == [WaveStarted.TYPE, StageStarted.TYPE, StageSucceeded.TYPE, WaveFinished.TYPE]


def test_own_writes_of_a_wave_never_raise_and_a_fifo_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "out.txt").write_text("x\n")
    os.mkfifo(tmp_path / "out.fifo")
    hasher = FileHasher(tmp_path, {})
    after_wave: dict[str, str | None] = {"out.fifo": "left by an earlier wave"}
    record_own_writes(hasher, ["out.txt", "out.fifo", "gone.txt"], after_wave)
    assert after_wave == {
        "out.txt": FileHasher(tmp_path, {}).hash("out.txt"),
        "out.fifo": UNREADABLE,  # equal only to another unreadable look, never to a hash
        "gone.txt": None,
    }


def test_a_wave_batch_is_one_append_and_listeners_get_its_seqs(store: EventStore) -> None:
    seen: list[Recorded] = []
    store.subscribe(seen.append)
    recorder = WaveRecorder(store, "w1", ("a",))
    before = store.transactions
    # What the executor hands on in one call (wave.started + the first stage.started).
    recorder.emit(
        WaveStarted(wave_id="w1", trigger="change", stages=("a",)), StageStarted(stage="a")
    )
    assert store.transactions == before + 1
    assert [r.event.TYPE for r in seen] == ["wave.started", "stage.started"]
    assert seen[1].seq == seen[0].seq + 1 >= 1
    assert [r.seq for r in store.read()][-2:] == [seen[0].seq, seen[1].seq]


def test_emits_arriving_during_an_append_share_the_next_one_in_order(store: EventStore) -> None:
    seen: list[Recorded] = []
    release = threading.Event()
    entered = threading.Event()

    def hold_first(rec: Recorded) -> None:
        # The first transaction's listener runs in its leader: callers queue meanwhile.
        if getattr(rec.event, "stage", "") == "first":
            entered.set()
            release.wait(10)

    store.subscribe(hold_first)
    store.subscribe(seen.append)
    before = store.transactions
    first = threading.Thread(target=store.emit, args=(StageStarted(stage="first"),))
    first.start()
    assert entered.wait(10)
    others = [
        threading.Thread(
            target=store.emit,
            args=(StageStarted(stage=f"s{i}"), StageSucceeded(stage=f"s{i}", duration=0.0)),
        )
        for i in range(5)
    ]
    for t in others:
        t.start()
    _wait_until(lambda: len(store._committer._queue) == 5)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert store.transactions == before + 2  # six emits, two appends
    seqs = [r.seq for r in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == 11 and 0 not in seqs
    # Each caller's own events stay together and in order.
    names = [getattr(r.event, "stage", "") for r in seen[1:]]
    assert [names[i] for i in range(0, 10, 2)] == [names[i] for i in range(1, 10, 2)]


def test_events_another_instance_appends_are_not_handed_on(
    tmp_path: Path, store: EventStore
) -> None:
    seen: list[Recorded] = []
    store.subscribe(seen.append)
    with open_project_store(tmp_path) as other:
        other.append([StageStarted(stage="elsewhere")])
    store.emit(StageStarted(stage="here"))
    assert [getattr(r.event, "stage", "") for r in seen] == ["here"]


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of our own, so filling it harms nothing else."""
    with tmpfs_disk(tmp_path, "1m") as mount:
        yield mount


def test_emit_on_a_full_disk_tells_once_never_raises_and_still_hands_on(
    small_disk: Path,
) -> None:
    store = EventStore.open(small_disk / "events.db")
    try:
        store.append([StageStarted(stage="before")])
        seen: list[Recorded] = []
        told: list[str] = []
        store.subscribe(seen.append)
        store.on_storage_error(told.append)
        with contextlib.suppress(OSError), (small_disk / "filler").open("wb") as filler:
            while True:
                filler.write(b"x" * 65536)
        big = "x" * 100_000  # more than the disk has left, whatever SQLite had reserved
        store.emit(*(StageStarted(stage=f"{big}{i}") for i in range(20)))  # never raises
        store.emit(StageStarted(stage=big))
        assert [r.seq for r in seen] == [0] * 21
        assert len(told) == 1 and "no space left" in told[0], told
        (small_disk / "filler").unlink()
        store.emit(StageStarted(stage="after"))  # space is back: recorded again
        assert seen[-1].seq > 0 and len(told) == 1
    finally:
        store.close()
