"""Events of the actor system: lifecycle and supervision."""

from __future__ import annotations

from dataclasses import dataclass

from pivot.events.base import Event, event

__all__ = [
    "ActorCrashed",
    "ActorRestarted",
    "ActorStarted",
    "ActorStopped",
    "ChangesPending",
    "SupervisorGaveUp",
    "WatchStarted",
    "WatchStopped",
]


@event
@dataclass(frozen=True, kw_only=True)
class ActorStarted(Event):
    """An actor started."""

    TYPE = "actor.started"
    name: str


@event
@dataclass(frozen=True, kw_only=True)
class ActorStopped(Event):
    """An actor stopped cleanly."""

    TYPE = "actor.stopped"
    name: str


@event
@dataclass(frozen=True, kw_only=True)
class ActorCrashed(Event):
    """An actor raised out of a message handler."""

    TYPE = "actor.crashed"
    name: str
    error: str


@event
@dataclass(frozen=True, kw_only=True)
class ActorRestarted(Event):
    """The supervisor restarted a crashed actor."""

    TYPE = "actor.restarted"
    name: str
    attempt: int


@event
@dataclass(frozen=True, kw_only=True)
class SupervisorGaveUp(Event):
    """Too many restarts in the window: clean shutdown with this error."""

    TYPE = "supervisor.gave_up"
    name: str
    error: str


@event
@dataclass(frozen=True, kw_only=True)
class ChangesPending(Event):
    """Changes arrived while a wave runs: they wait and form the next wave.

    ``count``: change notifications waiting so far; ``paths``: a sample.
    """

    TYPE = "changes.pending"
    count: int
    paths: tuple[str, ...] = ()


@event
@dataclass(frozen=True, kw_only=True)
class WatchStarted(Event):
    """`pivot watch` (re)started watching: directories watched flat and deep."""

    TYPE = "watch.started"
    flat: tuple[str, ...] = ()
    deep: tuple[str, ...] = ()


@event
@dataclass(frozen=True, kw_only=True)
class WatchStopped(Event):
    """`pivot watch` stopped; ``error`` when it stopped because of one."""

    TYPE = "watch.stopped"
    error: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class WaveWaiting(Event):
    """A watch wave waits for the project's run lock (another `pivot run` holds it).

    ``holder``: the pid written in the lock file by its holder ("?" if unknown).
    """

    TYPE = "wave.waiting"
    wave_id: str
    holder: str = "?"
    stages: tuple[str, ...] = ()
