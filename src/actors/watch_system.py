"""Assembling the watch system: start every actor under the supervisor, stop them in order.

Message flow (each actor's file says which messages it sends; the whole
picture with files is in docs/architecture.md)::

    FileWatcher --PathsChanged--> Debouncer --WindowOpened, Batch--> Coordinator
         ^                                                            |  ^
         +---------------------- DeclaredPaths -----------------------+  |
                                                    RunWave |            | WaveDone
                                                            v            |
                                                         WorkerPool -----+

The Coordinator's load, own-writes check and plan run in its work thread and
come back to it as messages (see :mod:`pivot.actors.coordinator`).

Every actor emits its events into the project's one
:class:`pivot.events.store.EventStore`, which records them and hands them to
its subscriber, the Display.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import pykka

from pivot.actors.base import ActorContext, Registry, Shutdown
from pivot.actors.coordinator import Coordinator
from pivot.actors.debouncer import Debouncer
from pivot.actors.display import Display, KeyReader
from pivot.actors.file_watcher import FileWatcher
from pivot.actors.supervisor import Factory, Supervisor
from pivot.actors.watch_messages import Boot, Ping
from pivot.actors.worker_pool import PoolControl, WorkerPool
from pivot.events.actors import WatchStopped
from pivot.events.store import EventStore, Recorded
from pivot.pipeline.local_executor import LocalExecutor
from pivot.watch import writers
from pivot.watch.watched_pipeline import WatchedPipeline

__all__ = ["WatchOptions", "WatchSystem"]

STOP_ORDER = ("file_watcher", "debouncer", "coordinator", "worker_pool", "supervisor")


@dataclass
class WatchOptions:
    """Everything `pivot watch` was asked for."""

    targets: tuple[str, ...] = ()
    jobs: int = 1
    debounce: float = 0.1
    settle: float = 0.02
    max_wait: float = 2.0
    display: str = "plain"
    force: bool = False
    standby: bool = True
    workers: LocalExecutor | None = None  # the workers to use (a WarmWorkers); else made here
    keys: bool = True
    max_restarts: int = 3
    restart_window: float = 10.0
    out: IO[str] | None = None
    extra_starts: list[Callable[[ActorContext], Callable[[], None]]] = field(default_factory=list)


class WatchSystem:
    """The running watch system: ``start()``, wait on ``shutdown``, ``stop()``."""

    def __init__(self, pipeline: WatchedPipeline, options: WatchOptions, store: EventStore) -> None:
        self.pipeline = pipeline
        self.options = options
        self.shutdown = Shutdown()
        self.store = store
        # Nothing can be recorded (full disk, unwritable .pivot/): stop, saying so.
        store.on_storage_error(self.shutdown.request)
        self.registry = Registry()
        self.ctx = ActorContext(store, self.registry, self.shutdown)
        self.workers = options.workers or LocalExecutor(options.jobs, standby=options.standby)
        self.control = PoolControl(self.workers)
        self.keys: KeyReader | None = None
        self._stops: list[Callable[[], None]] = []
        self._stopped = False

    def _factories(self) -> dict[str, Factory]:
        ctx, o, root = self.ctx, self.options, self.pipeline.root

        def file_watcher(restarted: bool) -> pykka.ActorRef[Any]:
            return FileWatcher.start(ctx, root, restarted)

        def debouncer(restarted: bool) -> pykka.ActorRef[Any]:
            del restarted
            return Debouncer.start(ctx, o.debounce, o.max_wait, settle=o.settle)

        def coordinator(restarted: bool) -> pykka.ActorRef[Any]:
            return Coordinator.start(ctx, self.pipeline, o.targets, o.force, restarted)

        def worker_pool(restarted: bool) -> pykka.ActorRef[Any]:
            del restarted
            return WorkerPool.start(ctx, self.pipeline, self.control)

        return {
            "worker_pool": worker_pool,
            "debouncer": debouncer,
            "coordinator": coordinator,
            "file_watcher": file_watcher,
        }

    def start(self) -> None:
        """Start the display, the supervisor and every actor; returns at once."""
        logging.getLogger("pykka").setLevel(logging.CRITICAL)
        # Lets the debouncer ask whether a changed file is still open for
        # writing (a complete save starts its wave after the settle time).
        writers.install()
        display = Display.start(
            self.ctx, self.options.display, self.options.out, self.pipeline.root
        )
        self.registry.set("display", display)

        def show(rec: Recorded) -> None:
            self.registry.tell("display", rec)

        self.store.subscribe(show)
        factories = self._factories()
        supervisor = Supervisor.start(
            self.ctx, factories, self.options.max_restarts, self.options.restart_window
        )
        self.registry.set("supervisor", supervisor)
        # The pool first (its workers start spawning), the watcher last: the
        # coordinator's initial load tells it what to watch.
        for name, factory in factories.items():
            self.registry.set(name, factory(False))
        # Boot only once the watcher runs, so no edit made after the initial
        # staleness check can be missed.
        watcher = self.registry.get("file_watcher")
        if watcher is not None:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                watcher.ask(Ping(), timeout=30)
        self.registry.tell("coordinator", Boot())
        for extra in self.options.extra_starts:
            self._stops.append(extra(self.ctx))
        if self.options.keys:
            self.keys = KeyReader(self.ctx)
            if not self.keys.start():
                self.keys = None

    def wait(self, poll: float = 0.2) -> int:
        """Block until shutdown is requested (Ctrl-C requests it); the exit status."""
        try:
            while not self.shutdown.event.wait(poll):
                pass
        except KeyboardInterrupt:
            self.shutdown.request(code=130)
        return self.shutdown.code

    def stop(self) -> None:
        """Stop everything: running stages cancelled, workers killed, threads joined."""
        if self._stopped:
            return
        self._stopped = True
        self.shutdown.event.set()
        if self.keys is not None:
            self.keys.close()
        self.control.abort("shutdown")
        for stop in self._stops:
            with contextlib.suppress(Exception):
                stop()
        deadline = time.monotonic() + 10
        for name in STOP_ORDER:
            ref = self.registry.get(name)
            if ref is None:
                continue
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                ref.stop(block=True, timeout=max(0.1, deadline - time.monotonic()))
        self.workers.close()
        self.store.emit(WatchStopped(error=self.shutdown.error, actor="watch"))
        display = self.registry.get("display")
        if display is not None:
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                display.stop(block=True, timeout=5)
