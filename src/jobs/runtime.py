"""Running watchers: the API ``pivot watch`` and ``pivot watchers run`` host.

Usage::

    from pivot.events.store import EventStore
    from pivot.jobs.config import load_config
    from pivot.jobs.runtime import start_watchers

    store = EventStore.open(".pivot/events.db")
    handle = start_watchers(store, load_config())
    ...                      # watchers run in their own threads
    handle.poll_now()        # optional: one poll cycle now, waits for it
    handle.stop()            # stops both actors, closes SSH connections

:func:`start_watchers` starts two pykka actors: a JobTailer (one poll cycle
per tick over every host: one ``squeue`` per host, batched stats, every new
byte read; local output files are also read the moment inotify sees them
grow) and an ActionExecutor (runs the actions the tailer decided, with
retries). An asyncio loop in its own thread carries the SSH connections.
Everything they do is an event in ``store``: watcher definitions come from
``WatcherCreated`` events (``pivot watchers add`` appends them, from any
process), so a running runtime picks up new watchers, pauses, resumes and
removals on its next cycle. Display state comes from the projections
``watcher_history`` and ``watcher_stats`` (:mod:`pivot.projections`).

Threads: the handle's methods may be called from any thread. ``stop()`` is
idempotent and waits for the action being run to finish (each external call
has a timeout, ``[watchers] action_timeout_seconds``).
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter

import pykka

from pivot.events.store import EventStore
from pivot.jobs.actions import ActionRunner
from pivot.jobs.actors import ActionExecutorActor, JobTailerActor, Tick
from pivot.jobs.config import Config
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.tailer import Tailer
from pivot.jobs.transport import LocalTransport, SshTransport, Transport

__all__ = ["WatcherRuntime", "start_watchers"]


class WatcherRuntime:
    """A handle on running watchers."""

    def __init__(
        self,
        tailer: Tailer,
        tailer_ref: pykka.ActorRef[JobTailerActor],
        executor_ref: pykka.ActorRef[ActionExecutorActor],
        io: IoLoop,
    ) -> None:
        self.tailer = tailer
        self._tailer_ref = tailer_ref
        self._executor_ref = executor_ref
        self._io = io
        self._stopped = False
        self._lock = threading.Lock()

    def poll_now(self, timeout: float = 120.0) -> bool:
        """Poll every host now and wait until the cycle (not its actions) is done."""
        done = threading.Event()
        try:
            self._tailer_ref.tell(Tick(reply=done, force=True))
        except pykka.ActorDeadError:
            return False
        return done.wait(timeout)

    def drain(self, timeout: float = 120.0) -> bool:
        """Wait until the executor has run every batch handed to it so far."""
        done = threading.Event()
        try:
            self._executor_ref.tell(done)
        except pykka.ActorDeadError:
            return False
        return done.wait(timeout)

    def counters(self) -> dict[str, Counter[str]]:
        """Per host: commands run, stats, reads (for benchmarks and `pivot watchers run -v`)."""
        return {name: Counter(t.counters) for name, t in self.tailer.transports.items()}

    @property
    def running(self) -> bool:
        """Both actors alive."""
        return self._tailer_ref.is_alive() and self._executor_ref.is_alive()

    def stop(self, timeout: float = 150.0) -> None:
        """Stop polling, let the running action finish, close connections."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        for ref in (self._tailer_ref, self._executor_ref):
            with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                ref.stop(block=True, timeout=timeout)
        for t in self.tailer.transports.values():
            with contextlib.suppress(TimeoutError, OSError):
                self._io.call(t.close(), 10.0)
        self._io.stop()


def make_transports(config: Config) -> dict[str, Transport]:
    """One transport per configured host (``local`` always exists)."""
    out: dict[str, Transport] = {}
    for name, host in config.hosts.items():
        out[name] = LocalTransport(name, host.env) if host.is_local else SshTransport(host)
    return out


def start_watchers(
    store: EventStore,
    config: Config,
    *,
    tick_seconds: float = 1.0,
    retry_delay: float | None = None,
    follow_local: bool = True,
) -> WatcherRuntime:
    """Start the JobTailer and ActionExecutor on ``store``; returns a handle to stop them.

    ``tick_seconds`` is how often the tailer wakes up; each host is polled at
    its watchers' ``interval_seconds`` (or ``[watchers] poll_seconds``).
    With ``follow_local`` (the default) local output files are also watched
    with inotify and read as soon as they grow; without it, only the poll reads.
    """
    io = IoLoop()
    transports = make_transports(config)
    tailer = Tailer(store, config, transports, io)
    runner = ActionRunner(config, transports, lambda _host, coro, t: io.call(coro, t))

    def is_live(watcher_id: str) -> bool:
        # Read-only look at the tailer's state from the executor thread: a dict
        # lookup and a str attribute, atomic under the GIL.
        # Decided actions run even when the decision ended the watcher
        # (`triggered`, job end -> `completed`); removing or disabling stops them.
        ws = tailer.book.watchers.get(watcher_id)
        return ws is None or ws.state not in ("removed", "disabled")

    delay = config.retry_seconds if retry_delay is None else retry_delay
    executor_ref = ActionExecutorActor.start(store, runner, is_live, delay)
    tailer_ref = JobTailerActor.start(tailer, executor_ref, tick_seconds, follow_local=follow_local)
    return WatcherRuntime(tailer, tailer_ref, executor_ref, io)
