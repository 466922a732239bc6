"""The worker processes stages run in: a loky process pool, started lazily.

:class:`StagePool` is what :func:`pivot.pipeline.execute.execute` submits to.
`pivot run` makes one per run and kills it after; watch mode renews its
workers with :class:`pivot.watch.workers.Workers` (warmed spares), which
shares :func:`kill_executor` and the worker initializer with this pool.
Workers are created on the first submit, so a run with nothing to do never
starts a process.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

from pivot.pipeline import proctree
from pivot.pipeline.worker import init_worker

__all__ = ["Pool", "StagePool", "default_jobs", "kill_executor"]

T = TypeVar("T")


def default_jobs() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class Pool(Protocol):
    """What execution needs from a pool of worker processes."""

    @property
    def jobs(self) -> int:
        """How many stages may run at once."""
        ...

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Run ``fn(*args)`` in a worker process."""
        ...

    def restart(self, reason: str = "") -> None:
        """Replace the workers by fresh processes (after a crash or code change)."""
        ...

    def kill(self) -> None:
        """Kill every worker and its child processes now; returns when they are gone."""
        ...


class StagePool:
    """A loky ``ProcessPoolExecutor`` created on first use, replaceable at will."""

    def __init__(self, jobs: int | None = None) -> None:
        self._jobs = max(1, jobs or default_jobs())
        self._executor: Any = None
        self.generation = 0  # how many executors were created (tests, display)

    @property
    def jobs(self) -> int:
        """How many stages may run at once."""
        return self._jobs

    @property
    def started(self) -> bool:
        """Whether worker processes exist (or are being started)."""
        return self._executor is not None

    def submit(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Run ``fn(*args)`` in a worker process, starting the workers if needed."""
        if self._executor is None:
            from loky import ProcessPoolExecutor

            from pivot.pipeline import spawn

            spawn.install()

            self._executor = ProcessPoolExecutor(max_workers=self._jobs, initializer=init_worker)
            self.generation += 1
        future: Future[T] = self._executor.submit(fn, *args)
        return future

    def restart(self, reason: str = "") -> None:
        """Kill the current workers; the next submit starts fresh ones."""
        del reason
        self.kill()

    def kill(self) -> None:
        """Kill the workers and their children, and wait until they are gone."""
        executor, self._executor = self._executor, None
        if executor is not None:
            kill_executor(executor)

    def shutdown(self) -> None:
        """Let running stages finish, then stop the workers."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)


def kill_executor(executor: Any) -> None:
    """Kill a loky executor's workers with everything their stages started; wait for it.

    Each worker is a subreaper (:mod:`pivot.pipeline.lifeline`), so its tree
    holds every process a stage started, even one in a session of its own
    whose parent exited; :func:`~pivot.pipeline.proctree.kill_tree` kills it
    all. Each worker also leads its own process group, killed too (where
    there is no ``/proc`` to walk, that is all there is).
    """
    for pid in list(getattr(executor, "_processes", {}) or {}):
        proctree.kill_tree(pid)
        with contextlib.suppress(OSError):
            os.killpg(pid, signal.SIGKILL)
    executor.shutdown(wait=True, kill_workers=True)
