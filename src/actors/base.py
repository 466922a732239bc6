"""What every actor shares: the registry of live actors, the
event store, the shutdown switch, and a base class reporting crashes.

Actors address each other by name through :class:`Registry`, so when the
supervisor replaces a crashed actor the others reach the new one.
"""

from __future__ import annotations

import logging
import threading
import traceback
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar

import pykka

from pivot.events.actors import ActorStarted, ActorStopped
from pivot.events.store import EventStore

__all__ = ["ActorContext", "Registry", "Shell", "Shutdown"]

log = logging.getLogger(__name__)


class Registry:
    """Thread-safe map from actor name to its current reference."""

    def __init__(self) -> None:
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._lock = threading.Lock()

    def set(self, name: str, ref: pykka.ActorRef[Any]) -> None:
        """Make ``ref`` the actor known as ``name``."""
        with self._lock:
            self._refs[name] = ref

    def get(self, name: str) -> pykka.ActorRef[Any] | None:
        """The current actor called ``name``, if any."""
        with self._lock:
            return self._refs.get(name)

    def names(self) -> list[str]:
        """Every registered name."""
        with self._lock:
            return list(self._refs)

    def tell(self, name: str, message: object) -> bool:
        """Send ``message`` to ``name``; False when that actor is not running."""
        ref = self.get(name)
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True


@dataclass
class Shutdown:
    """Set once: the whole system must stop (``error`` when it stops because of one)."""

    event: threading.Event = field(default_factory=threading.Event)
    error: str = ""
    code: int = 0

    def request(self, error: str = "", code: int | None = None) -> None:
        """Ask the main thread to shut everything down."""
        if error and not self.error:
            self.error = error
        if code is not None:
            self.code = code
        elif error:
            self.code = 1
        self.event.set()


@dataclass
class ActorContext:
    """Everything an actor of the watch system may use (``store.emit`` never raises)."""

    store: EventStore
    registry: Registry
    shutdown: Shutdown


class Shell(pykka.ThreadingActor):
    """Base of the watch system's actors: lifecycle events, crash reports to the supervisor."""

    name: ClassVar[str] = "actor"

    def __init__(self, ctx: ActorContext) -> None:
        super().__init__()
        self.ctx = ctx

    def on_start(self) -> None:
        self.ctx.store.emit(ActorStarted(name=self.name, actor=self.name))
        try:
            self.started()
        except Exception as exc:
            # pykka does not call on_failure for on_start; report it the same way.
            self.on_failure(type(exc), exc, exc.__traceback__)
            raise

    def started(self) -> None:
        """Set-up run in the actor's thread before any message (override)."""

    def on_stop(self) -> None:
        self.ctx.store.emit(ActorStopped(name=self.name, actor=self.name))

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback_: TracebackType | None,
    ) -> None:
        from pivot.actors.watch_messages import ChildCrashed

        error = "".join(traceback.format_exception_only(exception_value)).strip()
        log.debug(
            "%s crashed:\n%s",
            self.name,
            "".join(traceback.format_exception(exception_type, exception_value, traceback_)),
        )
        if not self.ctx.registry.tell("supervisor", ChildCrashed(self.name, error)):
            self.ctx.shutdown.request(f"{self.name} crashed: {error}")
