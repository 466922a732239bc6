"""Output files kept open across their replacement, so the old file's end is not lost.

A job's output path may switch to another file between two polls: a
symlink re-pointed, a new file renamed over it (``logrotate``). The lines
written to the old file just before the switch are read from the file the
reader still holds open, before the new one is read from its start
(:func:`pivot.jobs.file_tail.tail_file`). Locally :class:`LocalFiles` holds
the descriptors; over SSH the SFTP handles do
(:class:`pivot.jobs.transport.SshTransport`), with a :class:`Retired` of its own.

Both are bounded: a replaced file is held until :data:`MAX_RETIRED` newer
replacements push it out (a watcher that polls later than that starts the
new file without the old one's last lines, as before).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["MAX_KEPT", "MAX_RETIRED", "LocalFiles", "Retired", "close_later"]

MAX_KEPT = 256  # local files held open at once (the process has a descriptor limit)
MAX_RETIRED = 32  # replaced files held for their last reads, per transport

H = TypeVar("H")


class Retired(Generic[H]):
    """Handles of files another file replaced under their path: (path, inode) -> handle."""

    def __init__(self, close: Callable[[H], None], limit: int = MAX_RETIRED) -> None:
        self._held: dict[tuple[str, int], H] = {}
        self._close = close
        self._limit = limit

    def add(self, path: str, inode: int, handle: H) -> None:
        """Hold ``handle`` on the replaced file; the oldest held goes past the limit."""
        old = self._held.pop((path, inode), None)
        if old is not None and old is not handle:
            self._close(old)
        self._held[(path, inode)] = handle
        while len(self._held) > self._limit:
            self._close(self._held.pop(next(iter(self._held))))

    def get(self, path: str, inode: int) -> H | None:
        """The handle on the file ``path`` named when its inode was ``inode``, if held."""
        return self._held.get((path, inode))

    def close_all(self) -> None:
        """Close every handle held."""
        while self._held:
            self._close(self._held.pop(next(iter(self._held))))


class LocalFiles:
    """Local output files held open: the current file of each path, and replaced ones."""

    def __init__(self, limit: int = MAX_KEPT) -> None:
        self._open: dict[str, tuple[int, int]] = {}  # path -> (descriptor, inode)
        self._limit = limit
        self.retired: Retired[int] = Retired(os.close)

    def read(self, path: str, offset: int, length: int) -> bytes:
        """A byte range of the file ``path`` names now (held open for later reads)."""
        fd = os.open(path, os.O_RDONLY)
        inode = os.fstat(fd).st_ino
        held = self._open.pop(path, None)
        if held is not None and held[1] == inode:
            os.close(fd)
            fd = held[0]
        elif held is not None:
            self.retired.add(path, held[1], held[0])  # another file took the path
        self._open[path] = (fd, inode)
        while len(self._open) > self._limit:
            os.close(self._open.pop(next(iter(self._open)))[0])
        return os.pread(fd, length, offset)

    def read_replaced(self, path: str, inode: int, offset: int, length: int) -> bytes | None:
        """A byte range of the file of ``inode`` that ``path`` named; None: not held."""
        held = self._open.get(path)
        fd = held[0] if held is not None and held[1] == inode else self.retired.get(path, inode)
        return None if fd is None else os.pread(fd, length, offset)

    def close(self) -> None:
        """Close every descriptor."""
        for fd, _ in self._open.values():
            os.close(fd)
        self._open.clear()
        self.retired.close_all()


def close_later(handle: Any, tasks: set[asyncio.Task[None]]) -> None:
    """Close an SFTP ``handle`` on the running loop, not waiting (``tasks`` holds the task)."""

    async def close() -> None:
        with contextlib.suppress(Exception):  # the server may have dropped it already
            await handle.close()

    task = asyncio.get_running_loop().create_task(close())
    tasks.add(task)
    task.add_done_callback(tasks.discard)
