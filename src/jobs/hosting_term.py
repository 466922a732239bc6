"""One hosting term of the job watchers: what runs while this process holds the lease.

:func:`start_term` opens the event loop and the transports, fences the
store (no decision is appended once the lease is not trusted: a
:class:`Fence` that has refused once ends the term) and starts the
supervised actors (:mod:`pivot.actors.job_system`). :class:`Term` stops them
and closes the connections. The lease itself is kept by
:class:`pivot.jobs.runtime.WatcherRuntime`, which starts and ends terms.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from pivot.actors.job_system import JobActors, start_job_actors
from pivot.events.base import Event
from pivot.events.store import EventStore
from pivot.jobs.actions import ActionRunner
from pivot.jobs.config import Config
from pivot.jobs.host_lease import HostLease, LeaseLost
from pivot.jobs.ioloop import IoLoop
from pivot.jobs.tailer import Tailer
from pivot.jobs.transport import Transport, make_transports

__all__ = ["Fence", "Term", "start_term"]


class Fence:
    """Asked before every decision is appended and every action starts.

    Once it has refused (the lease was not trusted for a moment), the term's
    in-memory state may be ahead of the log: the term is ended and, if the
    lease is still ours, a fresh one starts from the log.
    """

    def __init__(self, trusted: Callable[[], bool]) -> None:
        self._trusted = trusted
        self.tripped = False

    def ok(self) -> bool:
        if self._trusted():
            return True
        self.tripped = True
        return False


class FencedStore:
    """The store as the tailer sees it: appends only while the fence lets them."""

    def __init__(self, store: EventStore, fence: Fence) -> None:
        self._store = store
        self._fence = fence

    def append(self, events: Sequence[Event]) -> list[int]:
        if events and not self._fence.ok():
            raise LeaseLost("the job watchers' lease is no longer held")
        return self._store.append(events)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


@dataclass
class Term:
    """What runs while this process holds the lease: the actors and their connections."""

    actors: JobActors
    transports: dict[str, Transport]
    io: IoLoop
    fence: Fence

    @property
    def gave_up(self) -> str:
        """The supervisor's error once it gave up on an actor (empty while all is well)."""
        return self.actors.ctx.shutdown.error

    def stop(self, timeout: float) -> None:
        self.actors.stop(timeout)
        for t in self.transports.values():
            with contextlib.suppress(TimeoutError, OSError):
                self.io.call(t.close(), 10.0)
        self.io.stop()


def start_term(
    store: EventStore,
    config: Config,
    lease: HostLease,
    *,
    tick_seconds: float,
    retry_delay: float,
    follow_local: bool,
) -> Term:
    io = IoLoop()
    transports = make_transports(config)
    fence = Fence(lease.trusted)
    fenced = cast(EventStore, FencedStore(store, fence))
    runner = ActionRunner(config, transports, lambda _host, coro, t: io.call(coro, t))
    actors = start_job_actors(
        store,
        lambda: Tailer(fenced, config, transports, io),
        runner,
        fence.ok,
        tick_seconds=tick_seconds,
        retry_delay=retry_delay,
        follow_local=follow_local,
    )
    return Term(actors, transports, io, fence)
