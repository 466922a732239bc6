"""One run at a time per project: an advisory lock on ``.pivot/run.lock``.

Two `pivot run` in one project would run the same stages twice and race on
their outputs and records. :func:`run_lock` makes the second one wait (saying
so, with the holder's pid) until the first is done; it is released when the
holder exits, however it exits, because the kernel drops ``flock`` locks with
the file descriptor. Watch mode takes the same lock around each wave.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from pivot.pipeline.state import STATE_DIR

__all__ = ["LockWaitCancelled", "lock_path", "run_lock"]

POLL = 0.05  # seconds between attempts while a ``cancelled`` callback is given


class LockWaitCancelled(Exception):
    """The wait for the run lock was given up (``cancelled()`` became true)."""


def lock_path(root: str | Path) -> Path:
    """The project's run lock file."""
    return Path(root) / STATE_DIR / "run.lock"


@contextlib.contextmanager
def run_lock(
    root: str | Path,
    on_wait: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[None]:
    """Hold the project's run lock; ``on_wait(holder)`` is called once if we must wait.

    With ``cancelled``, the wait polls and raises :class:`LockWaitCancelled`
    as soon as ``cancelled()`` is true (watch mode: a shutdown must not hang
    behind another terminal's `pivot run`).
    """
    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
                on_wait(holder)
            if cancelled is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                _wait_polling(fd, cancelled)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def _wait_polling(fd: int, cancelled: Callable[[], bool]) -> None:
    while True:
        if cancelled():
            raise LockWaitCancelled
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            time.sleep(POLL)
        else:
            return
