"""Is a changed file still being written? Ask the kernel whether anyone has it open for writing.

inotify's close-after-write (``IN_CLOSE_WRITE``) is what says a save is
complete, but watchfiles does not pass it on, and a second watcher would
report it in an order of its own. The kernel answers the question directly:
a Linux *read lease* (``fcntl(F_SETLEASE, F_RDLCK)``) is granted only when no
process has the file open for writing (or mapped shared and writable).
Taking one and dropping it at once costs about 15 µs a file and raises no
inotify event (watchfiles ignores opens and reads).

While a lease is held, a process opening the file for writing waits for it
to be dropped (microseconds later) and the kernel sends ``SIGIO`` to the
holder, whose default action ends the process: :func:`install` sets a no-op
handler first, and without it no lease is taken. Whatever cannot be asked (a
file owned by another user, a filesystem without leases such as NFS, another
OS) counts as *still being written*: the caller then waits for its full quiet
period, as it always did.
"""

from __future__ import annotations

import os
import signal
import stat
import threading
from collections.abc import Iterable
from types import FrameType

__all__ = ["closed_by_writers", "install"]

_installed = False


def _ignore(signum: int, frame: FrameType | None) -> None:
    del signum, frame  # a lease of ours was broken: we drop it at once anyway


def install() -> bool:
    """Let this process ask (a no-op ``SIGIO`` handler); False where it cannot.

    Call from the main thread (Python sets signal handlers only there).
    Worker processes are started with ``exec`` and get the default handler
    back.
    """
    global _installed  # noqa: PLW0603 - one handler per process
    if _installed:
        return True
    import fcntl

    sigio = getattr(signal, "SIGIO", None)
    if sigio is None or not hasattr(fcntl, "F_SETLEASE"):
        return False
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(sigio, _ignore)
    _installed = True
    return True


def closed_by_writers(paths: Iterable[str]) -> bool:
    """Whether every path is gone, not a regular file, or open for writing by nobody."""
    if not _installed:
        return False
    import fcntl

    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # deleted (or renamed away): nothing left to write
        except OSError:
            return False
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            try:
                fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
            except OSError:
                return False  # EAGAIN: a writer has it open; EACCES/EINVAL: cannot ask
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        finally:
            os.close(fd)
    return True
