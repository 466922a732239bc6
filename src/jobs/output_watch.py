"""Local job outputs watched with inotify (watchfiles): read the moment they grow.

:class:`OutputWatch` watches the *directories* of the local output files
(a watch on a single file goes deaf once the file is replaced by a rename;
a directory's watch sees the new file) in a thread of its own, and tells the
JobTailer actor an :class:`OutputsGrew` when one of the files it was asked
to follow changes. The thread never touches the actor's state: it adds the
paths to an inbox under a lock and sends one message; the actor takes the
whole inbox when that message arrives, so a burst of writes costs one read
of each file, not one per inotify event.

Polling stays the fallback: inotify sees nothing that another machine
writes to an NFS directory. With ``WATCHFILES_FORCE_POLLING`` set (watchfiles'
own switch; ``WATCHFILES_POLL_DELAY_MS`` sets its period, 300 ms by
default) the directories are polled by stat instead, which NFS does show.
A directory that cannot be watched (gone, no permission, out of inotify
watches) is left to the tailer's poll every ``interval_seconds``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from pivot.watch.notify_thread import NotifyThread

__all__ = ["OutputWatch", "OutputsGrew"]

# watchfiles' Rust loop returns STEP_MS after the last event, at most GROUP_MS
# after the first: a steady writer is read at least every GROUP_MS.
STEP_MS = 2
GROUP_MS = 20


@dataclass(frozen=True)
class OutputsGrew:
    """OutputWatch -> JobTailer: some followed files changed (take them from the inbox)."""


class OutputWatch:
    """Follows a set of local files; ``tell`` receives :class:`OutputsGrew` when they change.

    :meth:`follow` and :meth:`take` are called from the actor's thread;
    :meth:`report` from the watch thread.
    """

    def __init__(
        self, tell: Callable[[object], None], on_error: Callable[[str], None] | None = None
    ) -> None:
        self._tell = tell
        self._on_error = on_error
        self._lock = threading.Lock()
        self._inbox: set[str] = set()
        self._told = False
        self._wanted: dict[str, str] = {}  # normalised path -> the path as the job record has it
        self._dirs: tuple[str, ...] = ()
        self._thread: NotifyThread | None = None
        self.error = ""  # why the last watch could not start (the poll covers for it)

    @property
    def dirs(self) -> tuple[str, ...]:
        """The directories watched now."""
        return self._dirs

    def follow(self, paths: Iterable[str]) -> None:
        """Watch exactly these files from now on (cheap when nothing changed)."""
        wanted = {os.path.normpath(p): p for p in paths}
        # Paths stay strings: they are compared with the strings watchfiles reports.
        dirs = tuple(sorted({d for d in map(os.path.dirname, wanted) if os.path.isdir(d)}))  # noqa: PTH112
        self._wanted = wanted  # one reference swap: the watch thread sees old or new
        if dirs == self._dirs:
            return
        added = set(dirs) - set(self._dirs)
        old, self._thread, self._dirs = self._thread, None, dirs
        if dirs:
            try:
                self._thread = NotifyThread(
                    dirs,
                    recursive=False,
                    name="pivot-output-watch",
                    on_change=self.report,
                    on_error=self.failed,  # the poll carries on without it
                    step_ms=STEP_MS,
                    group_ms=GROUP_MS,
                )
                self.error = ""
            except Exception as exc:
                self._dirs = ()  # try again on the next follow()
                self._failed(f"{type(exc).__name__}: {exc}")
        if old is not None:
            old.close()  # after the new watch started: nothing written in between is lost
        # What was written before the new directories were watched: read it now.
        self.report(p for p in wanted if os.path.dirname(p) in added)  # noqa: PTH120

    def report(self, paths: Iterable[str]) -> None:
        """Add the followed ones among ``paths`` to the inbox; tell the actor once."""
        wanted = self._wanted
        hit = {wanted[n] for n in map(os.path.normpath, paths) if n in wanted}
        if not hit:
            return
        with self._lock:
            self._inbox |= hit
            if self._told:
                return
            self._told = True
        self._tell(OutputsGrew())

    def take(self) -> set[str]:
        """Every path reported since the last take (the actor got :class:`OutputsGrew`)."""
        with self._lock:
            paths, self._inbox, self._told = self._inbox, set(), False
        return paths

    def failed(self, error: str) -> None:
        """The watch thread died: forget it, so the next :meth:`follow` starts a new one."""
        self._dirs = ()
        self._failed(error)

    def _failed(self, error: str) -> None:
        repeated, self.error = error == self.error, error
        if self._on_error is not None and not repeated:  # once, not on every retry
            self._on_error(error)

    def close(self) -> None:
        """Stop watching."""
        thread, self._thread, self._dirs = self._thread, None, ()
        if thread is not None:
            thread.close()
