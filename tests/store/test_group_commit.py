"""Group commit: concurrent submissions share one write; errors reach every caller."""

from __future__ import annotations

import threading
import time

import pytest

from pivot.events.group_commit import GroupCommitter


def _wait_until(condition: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.001)


def test_callers_arriving_during_a_write_share_the_next_one() -> None:
    release = threading.Event()
    writes: list[list[int]] = []

    def write(items: list[int]) -> list[int]:
        writes.append(list(items))
        if len(writes) == 1:
            release.wait(10)
        return [i * 10 for i in items]

    gc: GroupCommitter[int, int] = GroupCommitter(write)
    results: dict[int, list[int]] = {}

    def call(n: int) -> None:
        results[n] = gc.submit([n, n + 1])

    first = threading.Thread(target=call, args=(0,))
    first.start()
    _wait_until(lambda: len(writes) == 1)
    others = [threading.Thread(target=call, args=(n,)) for n in (10, 20, 30)]
    for t in others:
        t.start()
    _wait_until(lambda: len(gc._queue) == 3)
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert writes[0] == [0, 1]
    assert len(writes) == 2 and sorted(writes[1]) == [10, 11, 20, 21, 30, 31]
    assert results == {n: [n * 10, (n + 1) * 10] for n in (0, 10, 20, 30)}
    assert gc.transactions == 2


def test_an_error_reaches_every_caller_of_the_failed_write_only() -> None:
    release = threading.Event()
    calls = 0

    def write(items: list[str]) -> list[str]:
        nonlocal calls
        calls += 1
        if calls == 1:
            release.wait(10)
            return items
        if "bad" in items:
            raise OSError("disk full")
        return items

    gc: GroupCommitter[str, str] = GroupCommitter(write)
    errors: list[BaseException] = []

    def call(item: str) -> None:
        try:
            gc.submit([item])
        except OSError as exc:
            errors.append(exc)

    first = threading.Thread(target=call, args=("first",))
    first.start()
    _wait_until(lambda: calls == 1)
    t1 = threading.Thread(target=call, args=("bad",))
    t2 = threading.Thread(target=call, args=("good",))
    t1.start()
    t2.start()
    _wait_until(lambda: len(gc._queue) == 2)
    release.set()
    for t in (first, t1, t2):
        t.join(10)
    assert len(errors) == 2  # both shared the failed transaction
    assert gc.submit(["later"]) == ["later"]  # and the committer keeps working


def test_max_batch_splits_but_serves_everyone() -> None:
    sizes: list[int] = []

    def write(items: list[int]) -> list[int]:
        sizes.append(len(items))
        return items

    gc: GroupCommitter[int, int] = GroupCommitter(write, max_batch=3)
    assert gc.submit(list(range(5))) == list(range(5))  # a single oversize request still goes
    assert sizes == [5]


def test_writer_returning_wrong_count_is_an_error() -> None:
    gc: GroupCommitter[int, int] = GroupCommitter(lambda items: items[:-1])
    with pytest.raises(RuntimeError, match="2 results for 3 items"):
        gc.submit([1, 2, 3])
