"""The event sink: a batch is one append; concurrent emits share one; listeners see seq order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pivot.actors.worker_pool import WaveRecorder
from pivot.events.base import Event
from pivot.events.location import open_project_store
from pivot.events.pipeline import StageStarted, StageSucceeded, WaveFinished, WaveStarted
from pivot.events.store import EventStore, Recorded
from pivot.watch.sink import EventSink


def _wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.001)


class _Gated:
    """A real store whose first append waits until released (to line callers up)."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.calls: list[int] = []
        self.release = threading.Event()

    def append(self, events: list[Event]) -> list[int]:
        self.calls.append(len(events))
        if len(self.calls) == 1:
            self.release.wait(10)
        return self.store.append(events)


def test_a_wave_batch_is_one_append_and_listeners_get_its_seqs(tmp_path: Path) -> None:
    with open_project_store(tmp_path) as store:
        sink = EventSink(store)
        seen: list[Recorded] = []
        sink.subscribe_recorded(seen.append)
        recorder = WaveRecorder(sink, "w1", ("a",))
        before = store.transactions
        # What the executor hands on in one call (wave.started + the first stage.started).
        recorder.emit(
            WaveStarted(wave_id="w1", trigger="change", stages=("a",)), StageStarted(stage="a")
        )
        assert store.transactions == before + 1
        assert [r.event.TYPE for r in seen] == ["wave.started", "stage.started"]
        assert seen[1].seq == seen[0].seq + 1 > 1
        assert [r.seq for r in store.read()][-2:] == [seen[0].seq, seen[1].seq]


def test_emits_arriving_during_an_append_share_the_next_one_in_order(tmp_path: Path) -> None:
    with open_project_store(tmp_path) as real:
        store = _Gated(real)
        sink = EventSink(store)
        seen: list[Recorded] = []
        sink.subscribe_recorded(seen.append)
        first = threading.Thread(target=sink.emit, args=(StageStarted(stage="first"),))
        first.start()
        _wait_until(lambda: len(store.calls) == 1)
        others = [
            threading.Thread(
                target=sink.emit,
                args=(StageStarted(stage=f"s{i}"), StageSucceeded(stage=f"s{i}", duration=0.0)),
            )
            for i in range(5)
        ]
        for t in others:
            t.start()
        _wait_until(lambda: len(sink._committer._queue) == 5)
        store.release.set()
        for t in [first, *others]:
            t.join(10)
        assert store.calls == [1, 10]  # six emits, two appends
        assert sink.appends == 2
        seqs = [r.seq for r in seen]
        assert seqs == sorted(seqs) and len(set(seqs)) == 11 and 0 not in seqs
        # Each caller's own events stay together and in order.
        names = [getattr(r.event, "stage", "") for r in seen[1:]]
        assert [names[i] for i in range(0, 10, 2)] == [names[i] for i in range(1, 10, 2)]


def test_events_recorded_elsewhere_are_only_notified(tmp_path: Path) -> None:
    with open_project_store(tmp_path) as store:
        sink = EventSink(store)
        seen: list[Recorded] = []
        sink.subscribe_recorded(seen.append)
        before = store.transactions
        sink.notify([WaveFinished(wave_id="x")], [42])
        assert store.transactions == before
        assert [(r.seq, r.event.TYPE) for r in seen] == [(42, "wave.finished")]


def test_a_failing_store_still_notifies_with_seq_zero() -> None:
    class Broken:
        def append(self, events: Sequence[Event]) -> list[int]:
            raise RuntimeError("not the disk")

    sink = EventSink(Broken())
    seen: list[Recorded] = []
    sink.subscribe_recorded(seen.append)
    sink.emit(StageStarted(stage="a"), StageStarted(stage="b"))
    assert [r.seq for r in seen] == [0, 0]
