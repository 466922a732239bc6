"""The supervisor: restarts a crashed actor, within a bounded intensity.

pykka has no supervision: an actor that raises out of a handler is stopped
for good. Each actor reports its crash here (see
:class:`pivot.actors.base.Shell`); the supervisor records it, starts a
replacement from the actor's factory and registers it under the same name.
More than ``max_restarts`` crashes of one actor within ``window`` seconds
and it gives up: a ``supervisor.gave_up`` event and a clean shutdown with
the error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pykka

from pivot.actors.base import ActorContext, Shell
from pivot.actors.watch_messages import ChildCrashed
from pivot.events.actors import ActorCrashed, ActorRestarted, SupervisorGaveUp
from pivot.watch.supervision import RestartBudget

__all__ = ["Factory", "Supervisor"]

# Starts an actor; ``True`` when it replaces one that crashed.
Factory = Callable[[bool], pykka.ActorRef[Any]]


class Supervisor(Shell):
    """Owns the factories of the watch system's actors and their restart budgets."""

    name = "supervisor"

    def __init__(
        self,
        ctx: ActorContext,
        factories: dict[str, Factory],
        max_restarts: int = 3,
        window: float = 10.0,
    ) -> None:
        super().__init__(ctx)
        self.factories = factories
        self.budgets = {n: RestartBudget(max_restarts, window) for n in factories}

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, ChildCrashed):
            self._crashed(message)
        return None

    def _crashed(self, message: ChildCrashed) -> None:
        store = self.ctx.store
        store.emit(ActorCrashed(name=message.name, error=message.error, actor=self.name))
        if self.ctx.shutdown.event.is_set():
            return
        budget = self.budgets.get(message.name)
        factory = self.factories.get(message.name)
        if budget is None or factory is None or not budget.allow(time.monotonic()):
            error = f"{message.name} crashed too often: {message.error}"
            store.emit(SupervisorGaveUp(name=message.name, error=error, actor=self.name))
            self.ctx.shutdown.request(error)
            return
        try:
            ref = factory(True)
        except Exception as exc:
            error = f"could not restart {message.name}: {exc}"
            store.emit(SupervisorGaveUp(name=message.name, error=error, actor=self.name))
            self.ctx.shutdown.request(error)
            return
        self.ctx.registry.set(message.name, ref)
        store.emit(ActorRestarted(name=message.name, attempt=budget.attempts, actor=self.name))
