"""FileWatcher: watchfiles in threads of its own, feeding the Debouncer.

Two watchfiles watchers run, each in its own thread: one *flat* (the project
root's direct entries and parents of declared files elsewhere) and one
*deep* (every top-level folder that is not ignored, and declared folders
elsewhere); see :mod:`pivot.watch.paths`. Their threads only send what they
saw to the actor (:class:`PathsSeen`), which filters it through the ignore
rules (state of its own thread) and tells the Debouncer. A stop event ends them
within a few milliseconds.

When the watched folders change (a new top-level folder, an edited ignore file, a
reload that declares a path elsewhere) new watchers start *before* the old
ones stop, and the files already inside newly watched folders are reported,
so nothing written in between is lost.

``WATCHFILES_FORCE_POLLING`` (and ``WATCHFILES_POLL_DELAY_MS``) are honoured
as watchfiles documents them: inotify sees nothing another machine writes to
an NFS home directory, and nothing on some WSL and container mounts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pivot.actors.base import ActorContext, Shell
from pivot.actors.watch_messages import DeclaredPaths, PathsChanged, PathsSeen, WatcherThreadFailed
from pivot.events.actors import WatchStarted
from pivot.watch.notify_thread import NotifyThread
from pivot.watch.paths import PathFilter, WatchedDirs, dirs_to_watch

__all__ = ["FileWatcher"]

# Latency knobs of watchfiles' Rust loop: return 2 ms after the last event,
# at most 50 ms after the first (measured: ~3 ms from write to report).
STEP_MS = 2
GROUP_MS = 50
POLL_MS = 100  # how often a quiet watcher looks whether it was retired
MAX_SCAN = 20_000


class FileWatcher(Shell):
    """Owns the watcher threads; re-computes what to watch when told to."""

    name = "file_watcher"

    def __init__(self, ctx: ActorContext, root: Path, restarted: bool = False) -> None:
        super().__init__(ctx)
        self.root = root.resolve()
        self.filter = PathFilter(self.root)
        self.restarted = restarted
        self.watched = WatchedDirs((), ())
        self.threads: list[NotifyThread] = []
        self.declared: frozenset[str] = frozenset()

    # Called from the watcher threads. Only a message crosses to the actor:
    # the filter and the declared paths change on the actor's thread.
    def report(self, raw: set[str]) -> None:
        self.ctx.registry.tell(self.name, PathsSeen(frozenset(raw)))

    def _seen(self, raw: frozenset[str]) -> None:
        paths = frozenset(p for p in raw if self.filter.accept(p))
        if not paths:
            return
        self.ctx.registry.tell("debouncer", PathsChanged(paths))
        if any(Path(p).parent == self.root for p in paths):
            self._rewatch()  # a new top-level folder may need a deep watch

    def thread_failed(self, error: str) -> None:
        if not self.ctx.registry.tell(self.name, WatcherThreadFailed(error)):
            self.ctx.shutdown.request(f"file watcher failed: {error}")

    def _thread(self, dirs: tuple[Path, ...], recursive: bool) -> NotifyThread:
        # Live when this returns, which the hand-over in _rewatch relies on.
        return NotifyThread(
            (str(d) for d in dirs),
            recursive=recursive,
            name=f"pivot-watch-{'deep' if recursive else 'flat'}",
            on_change=self.report,
            on_error=self.thread_failed,
            step_ms=STEP_MS,
            group_ms=GROUP_MS,
            idle_ms=POLL_MS,
        )

    def started(self) -> None:
        self._rewatch(first=True)
        if self.restarted:
            # Changes may have been missed while no watcher ran: re-check everything.
            self.ctx.registry.tell("debouncer", PathsChanged(frozenset(), overflow=True))

    def _rewatch(self, first: bool = False) -> None:
        dirs = dirs_to_watch(self.root, self.filter.full, (Path(p) for p in self.declared))
        if dirs == self.watched and not first:
            return
        new_deep = set(dirs.deep) - set(self.watched.deep)
        new_flat = set(dirs.flat) - set(self.watched.flat)
        old = self.threads
        threads = []
        for group, recursive in ((dirs.flat, False), (dirs.deep, True)):
            if group:
                threads.append(self._thread(group, recursive))
        self.threads = threads
        self.watched = dirs
        # The old watchers report what they saw before the new ones existed
        # (stopping them outright would drop it: a lost edit), then end.
        # A watcher of a folder written to without pause never goes quiet: 1 s at most.
        for t in old:
            t.retire()
        for t in old:
            t.thread.join(1)
            t.close(join=False)
        self.ctx.store.emit(
            WatchStarted(
                flat=tuple(str(p) for p in dirs.flat),
                deep=tuple(str(p) for p in dirs.deep),
                actor=self.name,
            )
        )
        if not first:
            self._scan(new_deep, new_flat)

    def _scan(self, deep: set[Path], flat: set[Path]) -> None:
        # Files written into a folder before its watch existed.
        found: set[str] = set()
        overflow = False
        for d in deep:
            for dirpath, dirnames, filenames in os.walk(d):
                dirnames[:] = [
                    n
                    for n in dirnames
                    if self.filter.accept(os.path.join(dirpath, n))  # noqa: PTH118
                ]
                for n in filenames:
                    found.add(os.path.join(dirpath, n))  # noqa: PTH118
                if len(found) > MAX_SCAN:
                    overflow = True
                    break
        for d in flat:
            try:
                found.update(str(p) for p in d.iterdir())
            except OSError:
                continue
        accepted = frozenset(p for p in found if self.filter.accept(p))
        if accepted or overflow:
            msg = PathsChanged(frozenset() if overflow else accepted, overflow=overflow)
            self.ctx.registry.tell("debouncer", msg)

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, PathsSeen):
            self._seen(message.paths)
        elif isinstance(message, DeclaredPaths):
            if message.paths is not None:
                self.declared = message.paths
                self.filter.set_declared(Path(p) for p in message.paths)
            if message.ignore_changed:
                self.filter.reset()
            self._rewatch()
        elif isinstance(message, WatcherThreadFailed):
            raise RuntimeError(f"file watcher thread failed: {message.error}")  # noqa: TRY004
        return None

    def on_stop(self) -> None:
        self._close_threads()
        super().on_stop()

    def on_failure(self, *args: Any) -> None:
        self._close_threads()
        super().on_failure(*args)

    def _close_threads(self) -> None:
        for t in self.threads:
            t.close(join=False)
        for t in self.threads:
            t.thread.join(5)
        self.threads = []
