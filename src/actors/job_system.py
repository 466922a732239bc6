"""The job watchers' actors, wired and supervised: what one hosting term runs.

:func:`start_job_actors` starts, under one
:class:`~pivot.actors.supervisor.Supervisor` (the same supervision as
``pivot watch``'s actors: bounded restarts, then a clean stop with the
error), the :class:`~pivot.actors.action_executor.ActionExecutor` and the
:class:`~pivot.actors.job_tailer.JobTailer`. They address each other by
name through the registry, so a restarted one is reached at once::

    JobTailer --ActionBatch, WatchersStopped--> ActionExecutor
       ^  |
       |  +--Slurm query (on the event loop of pivot.jobs.ioloop)
       +-----JobsAnswered

A restarted JobTailer starts from the log with a fresh
:class:`~pivot.jobs.tailer.Tailer` (same transports and event loop) and
reports no intent as interrupted: the executor, still running, has them. When
the supervisor gives up, ``ctx.shutdown`` is set with the error and the
runtime (:mod:`pivot.jobs.runtime`) ends the term and starts a fresh one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pykka

from pivot.actors.action_executor import ActionExecutor
from pivot.actors.base import ActorContext, Registry, Shutdown
from pivot.actors.job_tailer import JobTailer
from pivot.actors.supervisor import Supervisor
from pivot.events.store import EventStore
from pivot.jobs.actions import ActionRunner
from pivot.jobs.tailer import Tailer

__all__ = ["JobActors", "start_job_actors"]

TAILER = "JobTailer"
EXECUTOR = "ActionExecutor"


@dataclass
class JobActors:
    """The running actors of a term, by name, and the tailer the current JobTailer runs."""

    ctx: ActorContext
    tailers: list[Tailer] = field(default_factory=list)  # the last is the current one

    @property
    def tailer(self) -> Tailer:
        """The tailer of the JobTailer running now (for benchmarks, tests, counters)."""
        return self.tailers[-1]

    def tell(self, name: str, message: object) -> bool:
        """Tell the actor called ``name``; False when it is not running."""
        return self.ctx.registry.tell(name, message)

    @property
    def alive(self) -> bool:
        """Both actors running."""
        refs = [self.ctx.registry.get(n) for n in (TAILER, EXECUTOR)]
        return all(r is not None and r.is_alive() for r in refs)

    def stop(self, timeout: float) -> None:
        """Stop the tailer (no new batches), then the executor (its running action ends),
        then the supervisor."""
        self.ctx.shutdown.event.set()  # a crash now is not restarted
        for name in (TAILER, EXECUTOR, "supervisor"):
            ref = self.ctx.registry.get(name)
            if ref is not None:
                with contextlib.suppress(pykka.ActorDeadError, pykka.Timeout):
                    ref.stop(block=True, timeout=timeout)


def start_job_actors(
    journal: EventStore,
    make_tailer: Callable[[], Tailer],
    runner: ActionRunner,
    trusted: Callable[[], bool],
    *,
    tick_seconds: float,
    retry_delay: float,
    follow_local: bool,
    max_restarts: int = 3,
    window: float = 10.0,
) -> JobActors:
    """Start the supervisor, the ActionExecutor and the JobTailer; ``journal`` gets their
    lifecycle events (the tailer's own store may refuse appends once the lease is lost)."""
    ctx = ActorContext(store=journal, registry=Registry(), shutdown=Shutdown())
    actors = JobActors(ctx)
    started = threading.Event()  # the first tailer loaded the log and reported intents

    def executor(_restarted: bool) -> pykka.ActorRef[Any]:
        return ActionExecutor.start(ctx, journal, runner, trusted, retry_delay)

    def tailer(restarted: bool) -> pykka.ActorRef[Any]:
        actors.tailers[:] = [make_tailer()]
        return JobTailer.start(
            ctx,
            actors.tailer,
            tick_seconds=tick_seconds,
            follow_local=follow_local,
            resume=restarted and started.is_set(),
            started=started,
        )

    factories = {EXECUTOR: executor, TAILER: tailer}
    ctx.registry.set("supervisor", Supervisor.start(ctx, factories, max_restarts, window))
    for name, factory in factories.items():
        ctx.registry.set(name, factory(False))
    return actors
