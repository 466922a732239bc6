"""The JobTailer and ActionExecutor actors: thin pykka shells around the pure logic.

The JobTailer ticks (a timer tells it ``Tick``), runs one
:meth:`pivot.jobs.tailer.Tailer.cycle` and tells the ActionExecutor each
batch of intents as soon as it is durable (mid-cycle, through the tailer's
``hand_off``); the ActionExecutor runs them with
:func:`pivot.jobs.action_run.execute_batch` and schedules retries. A tick that
raises is recorded (``ActorCrashed``) and the next tick runs as usual: one
bad cycle never stops the watching. Between ticks, the
:class:`~pivot.jobs.output_watch.OutputWatch` thread tells it
``OutputsGrew`` when a local output file changes, and it reads those files
at once (:meth:`pivot.jobs.tailer.Tailer.read_grown`). A cycle or read
stopped by :class:`~pivot.jobs.host_lease.LeaseLost` (this process no longer
holds the watchers' lease) ends the ticking: the runtime stops the actors.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from pivot.events.actors import ActorCrashed, ActorStarted, ActorStopped
from pivot.events.store import EventStore
from pivot.jobs.action_run import execute_batch
from pivot.jobs.actions import ActionRunner
from pivot.jobs.host_lease import LeaseLost
from pivot.jobs.output_watch import OutputsGrew, OutputWatch
from pivot.jobs.tailer import ActionBatch, Tailer

__all__ = ["ActionExecutorActor", "JobTailerActor", "Tick"]


@dataclass(frozen=True)
class Tick:
    """Time for a poll cycle (``reply`` is set when someone waits for it)."""

    reply: threading.Event | None = None
    force: bool = False  # poll every host now, whatever its interval


@dataclass(frozen=True)
class _WatchFailed:
    """The output watch's thread -> JobTailer: it stopped (the poll carries on)."""

    error: str


def _later(delay: float, ref: pykka.ActorRef[Any], message: object) -> threading.Timer:
    def send() -> None:
        with contextlib.suppress(pykka.ActorDeadError):  # stopped meanwhile
            ref.tell(message)

    timer = threading.Timer(delay, send)
    timer.daemon = True
    timer.start()
    return timer


class ActionExecutorActor(pykka.ThreadingActor):
    """Runs action batches one after the other; failed actions come back later as retries."""

    use_daemon_thread = True  # a host program that dies without stop() must not hang

    def __init__(
        self,
        store: EventStore,
        runner: ActionRunner,
        is_live: Callable[[str], bool],
        retry_delay: float,
    ) -> None:
        super().__init__()
        self.store = store
        self.runner = runner
        self.is_live = is_live
        self.retry_delay = retry_delay
        self.failures: dict[str, int] = {}
        self.timers: list[threading.Timer] = []
        self.batches_run = 0

    def on_start(self) -> None:
        self.store.append([ActorStarted(name="ActionExecutor", actor="ActionExecutor")])

    def on_stop(self) -> None:
        for t in self.timers:
            t.cancel()
        self.store.append([ActorStopped(name="ActionExecutor", actor="ActionExecutor")])

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ActionBatch):
            self.batches_run += 1
            try:
                retry = execute_batch(
                    message,
                    self.runner,
                    self.store.append,
                    self.failures,
                    retry_delay=self.retry_delay,
                    is_live=self.is_live,
                )
            except LeaseLost:
                return None  # not ours to run any more: the next host reports them
            except Exception as exc:
                self.store.append(
                    [ActorCrashed(name="ActionExecutor", error=repr(exc), actor="ActionExecutor")]
                )
                return None
            if retry is not None:
                self.timers = [t for t in self.timers if t.is_alive()]
                self.timers.append(_later(retry.delay, self.actor_ref, retry.batch))
        elif isinstance(message, threading.Event):
            message.set()  # a marker: everything told before it has been run
        return None


class JobTailerActor(pykka.ThreadingActor):
    """Polls on every tick, reads local outputs as inotify reports them, hands batches on."""

    use_daemon_thread = True

    def __init__(
        self,
        tailer: Tailer,
        executor: pykka.ActorRef[ActionExecutorActor],
        tick_seconds: float,
        *,
        follow_local: bool = True,
        journal: EventStore | None = None,
    ) -> None:
        super().__init__()
        self.tailer = tailer
        # Where the actor's own start, stop and crash go (the tailer's store
        # may refuse appends once the lease is lost; these are facts, not decisions).
        self.journal = tailer.store if journal is None else journal
        self.executor = executor
        tailer.hand_off = executor.tell  # a file's batches leave once committed
        self.tick_seconds = tick_seconds
        self._timer: threading.Timer | None = None
        self.follow_local = follow_local
        self.watch: OutputWatch | None = None

    def on_start(self) -> None:
        self.journal.append([ActorStarted(name="JobTailer", actor="JobTailer")])
        if self.follow_local:
            ref = self.actor_ref

            def failed(error: str) -> None:  # from the watch thread: a message, no state
                with contextlib.suppress(pykka.ActorDeadError):
                    ref.tell(_WatchFailed(error))

            self.watch = OutputWatch(ref.tell, on_error=failed)
        try:
            batches = self.tailer.start()
        except LeaseLost:
            return  # no ticks: the runtime stops this term
        for batch in batches:
            self.executor.tell(batch)
        self.actor_ref.tell(Tick())

    def on_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.watch is not None:
            self.watch.close()
        with contextlib.suppress(Exception):  # a store that fails now fails the next line too
            self.tailer.flush()
        self.journal.append([ActorStopped(name="JobTailer", actor="JobTailer")])

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, OutputsGrew):
            return self._read_grown()
        if isinstance(message, _WatchFailed):
            error = f"output watch: {message.error}; polling every interval_seconds"
            self.journal.append([ActorCrashed(name="JobTailer", error=error, actor="JobTailer")])
            return None
        if not isinstance(message, Tick):
            return None
        try:
            batches = self.tailer.cycle(force=message.force)
        except LeaseLost:
            if message.reply is not None:
                message.reply.set()
            return None  # no next tick: the runtime stops this term
        except Exception as exc:
            self.journal.append(
                [ActorCrashed(name="JobTailer", error=repr(exc), actor="JobTailer")]
            )
            batches = []
        for batch in batches:
            self.executor.tell(batch)
        if self.watch is not None:
            # Jobs seen, watchers added or ended in this cycle change what to follow.
            self.watch.follow(self.tailer.local_paths())
        if message.reply is not None:
            message.reply.set()
            return None
        if self._timer is not None:
            self._timer.cancel()
        self._timer = _later(self.tick_seconds, self.actor_ref, Tick())
        return None

    def _read_grown(self) -> None:
        if self.watch is None:
            return
        try:
            batches = self.tailer.read_grown(self.watch.take())
        except LeaseLost:
            return
        except Exception as exc:
            self.journal.append(
                [ActorCrashed(name="JobTailer", error=repr(exc), actor="JobTailer")]
            )
            return
        for batch in batches:
            self.executor.tell(batch)
