"""The project's run lock: waiting, and giving up a wait when cancelled."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from pivot.pipeline.lock import LockWaitCancelled, run_lock


def test_second_holder_waits_then_gets_the_lock(tmp_path: Path) -> None:
    waits: list[str] = []
    got = threading.Event()

    def second() -> None:
        with run_lock(tmp_path, on_wait=waits.append, cancelled=lambda: False):
            got.set()

    with run_lock(tmp_path):
        t = threading.Thread(target=second)
        t.start()
        # on_wait is called before the wait begins: once seen, the thread is blocked.
        deadline = time.monotonic() + 30
        while not waits and time.monotonic() < deadline:
            time.sleep(0.01)
        assert waits
        assert not got.is_set()
    t.join(30)
    assert got.is_set()
    assert len(waits) == 1 and waits[0].isdigit()


def test_a_cancelled_wait_raises_and_leaves_the_lock_to_its_holder(tmp_path: Path) -> None:
    stop = threading.Event()
    errors: list[BaseException] = []

    def waiter() -> None:
        try:
            with run_lock(tmp_path, on_wait=lambda _: stop.set(), cancelled=stop.is_set):
                pass
        except LockWaitCancelled as exc:
            errors.append(exc)

    with run_lock(tmp_path):
        t = threading.Thread(target=waiter)
        t.start()
        t.join(30)
        assert not t.is_alive()
    assert len(errors) == 1
    with run_lock(tmp_path, cancelled=lambda: True):
        pass  # free: taken at once, "cancelled" only ends a wait
