"""The ActionExecutor actor: runs the batches the JobTailer decided, one after the other.

A thin shell over :func:`pivot.jobs.action_run.execute_batch`: it runs each
:class:`~pivot.jobs.batch.ActionBatch` it is told, and tells itself a failed
batch's retry after the delay that function decided. Whether a watcher
still wants its actions run is what the JobTailer last told it
(:class:`~pivot.actors.job_messages.WatchersStopped`): the executor reads no
other actor's state. Before each action it asks the lease (``trusted``): a
host that may no longer be the watchers' host starts nothing and records
nothing (:class:`~pivot.jobs.host_lease.LeaseLost`); the next host reports
those intents as interrupted.

A batch that raises is recorded (``actor.crashed``) and the next batch runs:
the batches queued behind it must not be lost with the actor's inbox, as a
restart by the supervisor (:mod:`pivot.actors.supervisor`) would lose them.
Anything else that escapes goes to the supervisor.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any

import pykka

from pivot.actors.base import ActorContext, Shell
from pivot.actors.job_messages import Drain, WatchersStopped
from pivot.events.actors import ActorCrashed
from pivot.events.store import EventStore
from pivot.jobs.action_run import execute_batch
from pivot.jobs.actions import ActionRunner
from pivot.jobs.batch import ActionBatch
from pivot.jobs.host_lease import LeaseLost

__all__ = ["ActionExecutor", "tell_later"]


def tell_later(delay: float, ref: pykka.ActorRef[Any], message: object) -> threading.Timer:
    """Tell ``ref`` ``message`` in ``delay`` seconds (nothing if it stopped meanwhile)."""

    def send() -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            ref.tell(message)

    timer = threading.Timer(delay, send)
    timer.daemon = True
    timer.start()
    return timer


class ActionExecutor(Shell):
    """Runs action batches in order; failed actions come back later as retries."""

    name = "ActionExecutor"
    use_daemon_thread = True  # a host program that dies without stop() must not hang

    def __init__(
        self,
        ctx: ActorContext,
        store: EventStore,
        runner: ActionRunner,
        trusted: Callable[[], bool],
        retry_delay: float,
    ) -> None:
        super().__init__(ctx)
        self.store = store
        self.runner = runner
        self.trusted = trusted
        self.retry_delay = retry_delay
        self.stopped: frozenset[str] = frozenset()
        self.failures: dict[str, int] = {}
        self.timers: list[threading.Timer] = []
        self.batches_run = 0

    def on_stop(self) -> None:
        for t in self.timers:
            t.cancel()
        super().on_stop()

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ActionBatch):
            self._run(message)
        elif isinstance(message, WatchersStopped):
            self.stopped = message.watcher_ids
        elif isinstance(message, Drain):
            message.done.set()  # everything told before it has been run
        return None

    def _is_live(self, watcher_id: str) -> bool:
        # Decided actions run even when the decision ended the watcher
        # (`triggered`, job end -> `completed`); removing or disabling stops them.
        if not self.trusted():
            raise LeaseLost("the job watchers' lease is no longer held")
        return watcher_id not in self.stopped

    def _run(self, batch: ActionBatch) -> None:
        self.batches_run += 1
        try:
            retry = execute_batch(
                batch,
                self.runner,
                self.store.append,
                self.failures,
                retry_delay=self.retry_delay,
                is_live=self._is_live,
            )
        except LeaseLost:
            return  # not ours to run any more: the next host reports them
        except Exception as exc:
            self.ctx.store.emit(ActorCrashed(name=self.name, error=repr(exc), actor=self.name))
            return
        if retry is not None:
            self.timers = [t for t in self.timers if t.is_alive()]
            self.timers.append(tell_later(retry.delay, self.actor_ref, retry.batch))
