"""One run at a time per project: an advisory lock on ``.pivot/run.lock``.

Two `pivot run` in one project would run the same stages twice and race on
their outputs and records. :func:`run_lock` makes the second one wait (saying
so, with the holder's pid) until the first is done; it is released when the
holder exits, however it exits, because the kernel drops ``flock`` locks with
the file descriptor. Watch mode takes the same lock around each wave.

The file also says who holds it: one JSON object ``{"pid", "start",
"workers": {pid: start}, "released"}``, rewritten by the holder whenever it
starts a worker (through :mod:`pivot.pipeline.lifeline`). A process that was
killed leaves its record behind. The next holder reads it first: if that
process is gone and some of its workers still run (the lifeline normally
ends them within a second, but a run started at once may come first, or a
worker's guard was killed too), it kills them with everything below them,
waits until they are gone, and says so through ``on_leftover``, so that no
stage is ever run by an orphan and a new run at once. Pid and start time
together name a process, so a reused pid is never mistaken for a worker;
the record also carries the kernel's boot id, since start times count from
boot: after a reboot nothing the record names can still run, and a process
that happens to have the same pid and start time is left alone.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pivot.pipeline import lifeline, proctree
from pivot.pipeline.state import STATE_DIR

__all__ = ["Holder", "LockBusy", "LockWaitCancelled", "lock_path", "parse_holder", "run_lock"]

POLL = 0.05  # seconds between attempts while a ``cancelled`` callback is given
LEFTOVER_WAIT = 10.0  # seconds to wait for killed leftovers to be gone


class LockWaitCancelled(Exception):
    """The wait for the run lock was given up (``cancelled()`` became true)."""


class LockBusy(Exception):
    """Another process holds the run lock and ``blocking=False`` was asked."""


@dataclass(frozen=True)
class Holder:
    """What a run lock's file says about the process that holds (or held) it."""

    pid: int = 0
    start: int | None = None  # None: unknown (a file written by an older pivot)
    workers: dict[int, int] = field(default_factory=dict)
    released: bool = False
    boot: str = ""  # the kernel's boot id when written; "" unknown (an older pivot)

    def to_json(self) -> str:
        """The file's content."""
        workers = {str(p): s for p, s in sorted(self.workers.items())}
        doc = {
            "pid": self.pid, "start": self.start, "workers": workers,
            "released": self.released, "boot": self.boot,
        }  # fmt: skip
        return json.dumps(doc, separators=(",", ":"))

    def other_boot(self) -> bool:
        """Whether the record was written before the machine last booted."""
        return bool(self.boot) and self.boot != proctree.boot_id()

    def gone(self) -> bool:
        """Whether the holder process no longer runs."""
        if self.pid <= 0 or self.other_boot():
            return True
        now = proctree.process_start(self.pid)
        return now is None or (self.start is not None and now != self.start)

    def died_holding(self) -> bool:
        """Whether it ended while holding the lock (killed, crashed) rather than releasing it."""
        return self.pid > 0 and not self.released and self.gone()

    def leftovers(self) -> dict[int, int]:
        """Its workers that still run (same pid, same start time, same boot)."""
        if self.other_boot():
            return {}
        return {p: s for p, s in self.workers.items() if proctree.process_start(p) == s}


def parse_holder(text: str) -> Holder:
    """A lock file's content; an older pivot wrote only the pid, a damaged file is empty."""
    text = text.strip()
    if text.isascii() and text.isdigit():
        return Holder(pid=int(text))
    try:
        doc = json.loads(text)
        return Holder(
            pid=int(doc["pid"]),
            start=None if doc.get("start") is None else int(doc["start"]),
            workers={int(p): int(s) for p, s in dict(doc.get("workers") or {}).items()},
            released=bool(doc.get("released")),
            boot=str(doc.get("boot") or ""),
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        return Holder()


def lock_path(root: str | Path) -> Path:
    """The project's run lock file."""
    return Path(root) / STATE_DIR / "run.lock"


@contextlib.contextmanager
def run_lock(
    root: str | Path,
    on_wait: Callable[[str], None] | None = None,
    cancelled: Callable[[], bool] | None = None,
    on_leftover: Callable[[Holder, list[int]], None] | None = None,
    *,
    blocking: bool = True,
) -> Iterator[Holder]:
    """Hold the project's run lock; ``on_wait(holder pid)`` is called once if we must wait.

    With ``cancelled``, the wait polls and raises :class:`LockWaitCancelled`
    as soon as ``cancelled()`` is true (watch mode: a shutdown must not hang
    behind another terminal's `pivot run`). Workers of a dead previous holder
    that still run are killed first; ``on_leftover(previous, pids)`` is told.
    Yields the previous holder's record (see :meth:`Holder.died_holding`).
    Without ``blocking``, :class:`LockBusy` is raised instead of waiting.
    """
    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    stop_listening: Callable[[], None] | None = None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not blocking:
                raise LockBusy from None
            if on_wait is not None:
                on_wait(str(_read(fd).pid or "?"))
            if cancelled is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            else:
                _wait_polling(fd, cancelled)
        previous = _read(fd)
        if previous.pid != os.getpid() and previous.gone():
            _end_leftovers(previous, on_leftover)
        me = os.getpid()
        start = proctree.process_start(me)
        boot = proctree.boot_id()
        write_lock = threading.Lock()

        def record(_pid: int = 0) -> None:
            with write_lock:
                _write(fd, Holder(pid=me, start=start, workers=lifeline.spawned(), boot=boot))

        stop_listening = lifeline.on_spawn(record)
        record()
        try:
            yield previous
        finally:
            # However the body ended, this process let go of the lock alive.
            stop_listening()
            stop_listening = None
            with write_lock:
                spawned = lifeline.spawned()
                _write(fd, Holder(pid=me, start=start, workers=spawned, released=True, boot=boot))
    finally:
        if stop_listening is not None:
            stop_listening()
        os.close(fd)  # releases the lock


def _read(fd: int) -> Holder:
    return parse_holder(os.pread(fd, 1 << 16, 0).decode(errors="replace"))


def _write(fd: int, holder: Holder) -> None:
    data = holder.to_json().encode()
    os.pwrite(fd, data, 0)
    os.ftruncate(fd, len(data))


def _end_leftovers(
    previous: Holder, on_leftover: Callable[[Holder, list[int]], None] | None
) -> None:
    left = previous.leftovers()
    if not left:
        return
    if on_leftover is not None:
        on_leftover(previous, sorted(left))
    killed: set[int] = set()
    for pid in left:
        killed |= proctree.kill_tree(pid)
    deadline = time.monotonic() + LEFTOVER_WAIT
    while any(proctree.process_start(p) is not None for p in killed):
        if time.monotonic() > deadline:
            break  # killed with SIGKILL; only a stuck kernel keeps them
        time.sleep(0.01)


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
