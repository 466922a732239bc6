"""The local executor: stage runs in loky worker processes on this machine.

One implementation for `pivot run` (workers started on the first submit, so
a run with nothing to do never starts a process, and killed after) and
`pivot watch` (``standby``: a spare set of workers is spawned and warmed
while the pool is idle, so fresh workers after a code change are only
swapped in).

Never reused: loky's ``get_reusable_executor`` hands back the *same*
processes, so code edited since they started would keep running stale.
:meth:`LocalExecutor.restart` kills the workers (their whole process trees)
and switches to a new ``loky.ProcessPoolExecutor``.

Workers are born in sessions of their own, tied to this process by the
lifeline, with their pids in the run lock (:mod:`pivot.pipeline.spawn`,
:func:`pivot.pipeline.worker.init_worker`). A worker that dies breaks the
whole loky pool: every run in flight on it fails with
:class:`~pivot.pipeline.executor.WorkerLost` naming them all, once the
broken pool's processes are gone; the next submit gets fresh workers.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import Future, wait
from typing import Any, TypeVar

from pivot.pipeline import proctree
from pivot.pipeline.executor import StageRun, WorkerLost
from pivot.pipeline.worker import StageOutcome, init_worker, run_stage

__all__ = ["PRELOAD", "LocalExecutor", "default_jobs", "kill_executor", "warm"]

# pivot's own modules, imported ahead of time in a spare since they are never
# the project's code: the one that runs stages, and the declaration API every
# pipeline.py imports (`from pivot import Pipeline, Dep, Out`).
PRELOAD = ("pivot.pipeline.worker", "pivot.pipeline.declare")

T = TypeVar("T")


def default_jobs() -> int:
    """One worker per CPU this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def warm(preload: tuple[str, ...] = PRELOAD) -> int:
    """Run in each new worker: imports pivot's own modules, never the project's; the pid."""
    import importlib

    for name in preload:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    return os.getpid()


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


def _broken_pool_errors() -> tuple[type[BaseException], ...]:
    from concurrent.futures.process import BrokenProcessPool

    from loky.process_executor import BrokenProcessPool as LokyBroken

    return (BrokenProcessPool, LokyBroken)


class _InFlight:
    """A run on one loky executor: the future the wave holds."""

    __slots__ = ("future", "pool", "run")

    def __init__(self, run: StageRun, pool: Any) -> None:
        self.run = run
        self.pool = pool
        self.future: Future[StageOutcome] = Future()
        self.future.set_running_or_notify_cancel()


class LocalExecutor:
    """Stage runs in loky workers: at most ``jobs`` at once; thread-safe."""

    name = "local"

    def __init__(self, jobs: int | None = None, *, standby: bool = False) -> None:
        if jobs is not None and jobs < 1:
            raise ValueError("--jobs must be at least 1")
        self.jobs = jobs or default_jobs()
        self.standby = standby
        self._lock = threading.Lock()
        self._current: Any = None
        self._spare: Any = None
        self._spare_ready = threading.Event()
        self._background: list[threading.Thread] = []
        self._in_flight: dict[Future[StageOutcome], _InFlight] = {}
        # Pools killed on purpose (cancel, restart, close): their failures are no crash.
        self._dropped: weakref.WeakSet[Any] = weakref.WeakSet()
        self._closed = False
        self.generation = 0  # how many sets of workers were started (tests, display)

    # --- the Executor interface -------------------------------------------

    @property
    def capacity(self) -> int:
        """``--jobs``: never more runs in flight than workers, so none waits for one."""
        return self.jobs

    def submit(self, run: StageRun) -> Future[StageOutcome]:
        """Run ``run.task`` in a worker, starting workers if none run (or they crashed)."""
        pool = self._pool()
        entry = _InFlight(run, pool)
        inner = pool.submit(run_stage, run.task)
        with self._lock:
            self._in_flight[entry.future] = entry
        inner.add_done_callback(lambda f: self._done(entry, f))
        return entry.future

    def cancel(self, reason: str = "cancelled") -> None:
        """Kill the running workers and their children now; the next submit starts fresh ones."""
        with self._lock:
            old, self._current = self._current, None
            if old is not None:
                self._dropped.add(old)
        if old is not None:
            kill_executor(old)
        self._end_runs_of(None, reason)

    def close(self) -> None:
        """Kill every worker process, spare included, and wait for the kills."""
        with self._lock:
            self._closed = True
            current, spare = self._current, self._spare
            self._current = self._spare = None
            for ex in (current, spare):
                if ex is not None:
                    self._dropped.add(ex)
            background = list(self._background)
        for ex in (current, spare):
            if ex is not None:
                kill_executor(ex)
        self._end_runs_of(None, "closed")
        deadline = time.monotonic() + 30
        for t in background:
            t.join(max(0.0, deadline - time.monotonic()))

    # --- the local executor's own: fresh workers --------------------------

    @property
    def started(self) -> bool:
        """Whether worker processes exist (or are being started)."""
        with self._lock:
            return self._current is not None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def pids(self) -> set[int]:
        """Pids of the current worker processes."""
        with self._lock:
            ex = self._current
        if ex is None:
            return set()
        return set(getattr(ex, "_processes", {}) or {})

    def restart(self) -> set[int]:
        """Replace every worker process by a new one (warmed); returns the new pids.

        The old workers are killed in the background (:meth:`close` waits
        for that), so the next wave does not wait for them. Raises if new
        workers cannot be started; the old ones are gone then.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("worker pool is closed")
            old, self._current = self._current, None
            spare, self._spare = self._spare, None
            self._spare_ready.clear()
            if old is not None:
                self._dropped.add(old)
        if old is not None:
            self._in_background(self._kill_and_end, old, "workers restarted")
        new = spare if spare is not None else self._spawn(warmed=True)
        with self._lock:
            closed = self.closed  # (the property: close() may have run meanwhile)
            if not closed:
                self._current = new
                self.generation += 1
        if closed:
            kill_executor(new)
            raise RuntimeError("worker pool is closed")
        return self.pids()

    def prepare_spare(self) -> None:
        """Start warming a spare in the background, if ``standby`` and none exists.

        Called when the pool is idle (after a wave), so spawning never
        competes with running stages for CPU, and a Ctrl-C rarely finds a
        half-started process.
        """
        with self._lock:
            needed = self.standby and not self._closed and self._spare is None
            busy = any(t.name == "pivot-spare" and t.is_alive() for t in self._background)
        if needed and not busy:
            self._in_background(self._spawn_spare, name="pivot-spare")

    def call(self, fn: Callable[..., T], /, *args: Any) -> Future[T]:
        """Run any picklable ``fn(*args)`` in a worker (tests, probes); stage runs use submit."""
        future: Future[T] = self._pool().submit(fn, *args)
        return future

    def wait_spare(self, timeout: float) -> bool:
        """Wait until a warmed spare is ready (benchmarks and tests)."""
        return self._spare_ready.wait(timeout)

    # --- inside ------------------------------------------------------------

    def _pool(self) -> Any:
        with self._lock:
            if self._closed:
                raise RuntimeError("worker pool is closed")
            if self._current is not None:
                return self._current
            spare, self._spare = self._spare, None
            self._spare_ready.clear()
        # Without a spare: created now, its workers start with the first run
        # (a `pivot run` does not wait for them to warm first).
        new = spare if spare is not None else self._spawn(warmed=False)
        current = self._install(new)
        if current is not new:
            kill_executor(new)  # another thread won the race, or close() ran
        if current is None:
            raise RuntimeError("worker pool is closed")
        return current

    def _install(self, new: Any) -> Any:
        """Make ``new`` the current pool unless one exists or closed; the current one."""
        with self._lock:
            if self._current is None and not self._closed:
                self._current = new
                self.generation += 1
            elif self._current is not new:
                self._dropped.add(new)
            return self._current

    def _spawn(self, *, warmed: bool) -> Any:
        # Workers are born in sessions of their own (spawn.install), so a
        # Ctrl-C never reaches one still starting.
        import loky

        from pivot.pipeline import spawn

        spawn.install()
        executor = loky.ProcessPoolExecutor(max_workers=self.jobs, initializer=init_worker)
        if not warmed:
            return executor
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
            spare = self._spawn(warmed=True)
        except Exception:
            return  # the next restart spawns synchronously and reports the error
        with self._lock:
            keep = not self._closed and self._spare is None
            if keep:
                self._spare = spare
                self._spare_ready.set()
        if not keep:
            kill_executor(spare)

    def _in_background(self, target: Any, *args: Any, name: str = "pivot-workers") -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        with self._lock:
            self._background = [b for b in self._background if b.is_alive()]
            self._background.append(t)
        t.start()

    def _done(self, entry: _InFlight, inner: Future[StageOutcome]) -> None:
        """loky finished a run (its own thread): hand the outcome on, or handle a crash."""
        try:
            outcome = inner.result()
        except _broken_pool_errors() as exc:
            self._crashed(entry.pool, str(exc) or type(exc).__name__)
            return
        except BaseException as exc:  # loky's CancelledError too (the pool was killed)
            if entry.pool in self._dropped:
                self._end_runs_of(entry.pool, "cancelled")
                return
            with self._lock:
                self._in_flight.pop(entry.future, None)
            if not entry.future.done():
                entry.future.set_exception(exc)
            return
        with self._lock:
            self._in_flight.pop(entry.future, None)
        if not entry.future.done():
            entry.future.set_result(outcome)

    def _crashed(self, pool: Any, error: str) -> None:
        with self._lock:
            if pool in self._dropped:
                crashed = False  # killed on purpose: cancel() or restart() ends its runs
            else:
                crashed = True
                self._dropped.add(pool)
                if self._current is pool:
                    self._current = None  # the next submit gets fresh workers
        if crashed:
            # Not from loky's thread (killing joins it): the runs fail once the
            # broken pool's processes and their children are gone.
            self._in_background(self._kill_and_lose, pool, error)

    def _kill_pool(self, pool: Any) -> None:
        """Kill one pool's workers with their process trees; returns once they are gone."""
        kill_executor(pool)

    def _retire_current(self, reason: str) -> None:
        """Detach the current loky pool and kill it in the background (its runs end cancelled)."""
        with self._lock:
            old, self._current = self._current, None
            if old is not None:
                self._dropped.add(old)
        if old is not None:
            self._in_background(self._kill_and_end, old, reason)

    def _kill_and_lose(self, pool: Any, error: str) -> None:
        self._kill_pool(pool)
        with self._lock:
            lost = [e for e in self._in_flight.values() if e.pool is pool]
            for e in lost:
                self._in_flight.pop(e.future, None)
        names = [e.run.name for e in lost]
        for e in lost:
            if not e.future.done():
                e.future.set_exception(WorkerLost(error, names))

    def _kill_and_end(self, pool: Any, reason: str) -> None:
        self._kill_pool(pool)
        self._end_runs_of(pool, reason)

    def _end_runs_of(self, pool: Any, reason: str) -> None:
        """Complete the futures of runs on ``pool`` (every pool: None) as cancelled."""
        with self._lock:
            ended = [e for e in self._in_flight.values() if pool is None or e.pool is pool]
            for e in ended:
                self._in_flight.pop(e.future, None)
        for e in ended:
            if not e.future.done():
                outcome = StageOutcome(e.run.name, False, 0, 0.0, reason, state="cancelled")
                e.future.set_result(outcome)
