"""The loky worker processes stages run in, and how they are renewed.

loky's ``get_reusable_executor(kill_workers=True)`` with unchanged arguments
hands back the *same* worker processes, so code edited since they started
keeps running stale. :class:`Workers` therefore never reuses an executor: a
restart shuts the old one down with ``kill_workers=True`` (which kills each
worker's process tree) and switches to a new :class:`loky.ProcessPoolExecutor`.

With ``standby`` a spare executor is spawned ahead of time (when the pool is
idle, see :meth:`Workers.prepare_spare`) and warmed with a function of
pivot's own (never project code), so a restart only swaps it in:
the processes are new to the project's code, yet the ~100-300 ms of spawning
Python and importing loky is off the critical path.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import wait
from typing import Any

import loky

from pivot.pipeline import spawn
from pivot.pipeline.pool import kill_executor
from pivot.pipeline.worker import init_worker

__all__ = ["PRELOAD", "Workers", "warm"]


# pivot's own modules, imported ahead of time in a spare since they are never
# the project's code: the one that runs stages, and the declaration API every
# pipeline.py imports (`from pivot import Pipeline, Dep, Out`).
PRELOAD = ("pivot.pipeline.worker", "pivot.pipeline.declare")


def warm(preload: tuple[str, ...] = PRELOAD) -> int:
    """Run in each new worker: imports pivot's own modules, never the project's; the pid."""
    import importlib

    for name in preload:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    return os.getpid()


class Workers:
    """The current executor, an optional warmed spare, and the kills in flight. Thread-safe."""

    def __init__(self, jobs: int, standby: bool = True) -> None:
        if jobs < 1:
            raise ValueError("--jobs must be at least 1")
        self.jobs = jobs
        self.standby = standby
        self._lock = threading.Lock()
        self._current: Any = None
        self._spare: Any = None
        self._spare_ready = threading.Event()
        self._background: list[threading.Thread] = []
        self._closed = False
        self.generation = 0

    def _spawn(self) -> Any:
        # Workers are born in sessions of their own (spawn.install), so a
        # Ctrl-C never reaches one still starting; the initializer is
        # `pivot run`'s, so both kinds of worker behave alike.
        spawn.install()
        executor = loky.ProcessPoolExecutor(max_workers=self.jobs, initializer=init_worker)
        try:
            futures = [executor.submit(warm) for _ in range(self.jobs)]
            done, _ = wait(futures, timeout=60)
            for f in done:
                f.result()
            if len(done) != len(futures):
                raise TimeoutError("worker processes did not start within 60 s")  # noqa: TRY301
        except BaseException:
            executor.shutdown(wait=True, kill_workers=True)
            raise
        return executor

    def _spawn_spare(self) -> None:
        try:
            spare = self._spawn()
        except Exception:
            return  # the next restart spawns synchronously and reports the error
        with self._lock:
            if self._closed or self._spare is not None:
                kill_executor(spare)
                return
            self._spare = spare
            self._spare_ready.set()

    def _in_background(self, target: Any, *args: Any, name: str = "pivot-workers") -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._background = [b for b in self._background if b.is_alive()]
            self._background.append(t)
        t.start()

    def start(self) -> set[int]:
        """Spawn the first executor (and the spare); returns the worker pids."""
        return self.restart()

    def restart(self) -> set[int]:
        """Replace every worker process by a new one; returns the new pids.

        Raises if new workers cannot be started; the old ones are gone then.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("worker pool is closed")
            old = self._current
            self._current = None
            spare = self._spare
            self._spare = None
            self._spare_ready.clear()
        if old is not None:
            # Killing is asynchronous so the new wave does not wait on it;
            # close() joins every kill still in flight.
            self._in_background(kill_executor, old)
        new = spare if spare is not None else self._spawn()
        with self._lock:
            closed = self.closed
            if not closed:
                self._current = new
                self.generation += 1
        if closed:
            kill_executor(new)
            raise RuntimeError("worker pool is closed")
        return self.pids()

    def prepare_spare(self) -> None:
        """Start warming a spare in the background, if standby is on and none exists.

        Called when the pool is idle (after a wave), so spawning never competes
        with running stages for CPU, and a Ctrl-C rarely finds a half-started
        process.
        """
        with self._lock:
            needed = self.standby and not self._closed and self._spare is None
            busy = any(t.name == "pivot-spare" and t.is_alive() for t in self._background)
        if needed and not busy:
            self._in_background(self._spawn_spare, name="pivot-spare")

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    @property
    def executor(self) -> Any:
        """The executor stages run on (None before start or after close)."""
        with self._lock:
            return self._current

    def pids(self) -> set[int]:
        """Pids of the current worker processes."""
        with self._lock:
            ex = self._current
        if ex is None:
            return set()
        return set(getattr(ex, "_processes", {}) or {})

    def wait_spare(self, timeout: float) -> bool:
        """Wait until a warmed spare is ready (benchmarks and tests)."""
        return self._spare_ready.wait(timeout)

    def kill_current(self) -> None:
        """Kill the running workers (and their children) now; the next wave needs a restart."""
        with self._lock:
            old = self._current
            self._current = None
        if old is not None:
            kill_executor(old)

    def close(self) -> None:
        """Kill every worker process, spare included, and wait for the kills."""
        with self._lock:
            self._closed = True
            current, spare = self._current, self._spare
            self._current = self._spare = None
            background = list(self._background)
        for ex in (current, spare):
            if ex is not None:
                kill_executor(ex)
        deadline = time.monotonic() + 30
        for t in background:
            t.join(max(0.0, deadline - time.monotonic()))
