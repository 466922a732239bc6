"""Events of the job-watcher domain: definitions, matches, actions, state."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pivot.events.base import Event, event

__all__ = [
    "ActionFailed",
    "ActionInterrupted",
    "ActionRequested",
    "ActionSucceeded",
    "ActionSuppressed",
    "HostingStandby",
    "HostingStarted",
    "HostingStopped",
    "MetricStored",
    "VariablesCaptured",
    "WatcherCreated",
    "WatcherEdited",
    "WatcherMatched",
    "WatcherPaused",
    "WatcherRemoved",
    "WatcherResumed",
    "WatcherStateChanged",
    "WatcherTimerFired",
]


@event
@dataclass(frozen=True, kw_only=True)
class WatcherCreated(Event):
    """A watcher was attached to a job; ``definition`` is its validated YAML."""

    TYPE = "watcher.created"
    watcher_id: str
    name: str
    job_id: str
    host: str = "local"
    definition: dict[str, Any] = field(default_factory=dict)


@event
@dataclass(frozen=True, kw_only=True)
class WatcherEdited(Event):
    """A watcher's definition was replaced (`pivot watchers edit`): same id, same position."""

    TYPE = "watcher.edited"
    watcher_id: str
    name: str
    definition: dict[str, Any] = field(default_factory=dict)
    previous: dict[str, Any] = field(default_factory=dict)


@event
@dataclass(frozen=True, kw_only=True)
class WatcherMatched(Event):
    """A line matched; ``correlation_id`` of the actions it causes is ``match_id``."""

    TYPE = "watcher.matched"
    watcher_id: str
    match_id: str
    line: str
    captures: dict[str, str] = field(default_factory=dict)
    condition_result: bool = True
    whole: str = ""
    groups: tuple[str, ...] = ()
    condition_error: str = ""
    fired: bool = False  # the match ran the actions (not only captured, not rate-limited)


@event
@dataclass(frozen=True, kw_only=True)
class VariablesCaptured(Event):
    """The watcher's cached captures changed (used by timer mode and job end)."""

    TYPE = "watcher.variables_captured"
    watcher_id: str
    variables: dict[str, str] = field(default_factory=dict)


@event
@dataclass(frozen=True, kw_only=True)
class ActionRequested(Event):
    """Intent to run an action, recorded before it runs."""

    TYPE = "action.requested"
    watcher_id: str
    action_id: str
    action_type: str
    params: dict[str, Any] = field(default_factory=dict)
    idempotent: bool = False
    attempt: int = 1
    cause: str = "match"  # match | timer | job_end | manual | restart
    job_id: str = ""
    host: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class ActionSucceeded(Event):
    """An action finished successfully."""

    TYPE = "action.succeeded"
    watcher_id: str
    action_id: str
    action_type: str
    detail: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class ActionFailed(Event):
    """An action failed (error, non-zero exit, timeout)."""

    TYPE = "action.failed"
    watcher_id: str
    action_id: str
    action_type: str
    error: str
    attempt: int = 1
    # Refused before it ran, for what one match captured (an argument with a
    # NUL byte, one that would be an option): an error of that match, not of
    # the watcher; it does not count toward max_failures and is not retried.
    refused: bool = False


@event
@dataclass(frozen=True, kw_only=True)
class ActionSuppressed(Event):
    """An action was not run (rate limit, ...): recorded, never silent."""

    TYPE = "action.suppressed"
    watcher_id: str
    action_type: str
    reason: str
    action_id: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class WatcherStateChanged(Event):
    """States: active, paused, triggered, completed, disabled."""

    TYPE = "watcher.state_changed"
    watcher_id: str
    old: str
    new: str
    reason: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class WatcherPaused(Event):
    """A watcher was paused (by a user or a `pause_watcher` action)."""

    TYPE = "watcher.paused"
    watcher_id: str
    by: str = "user"


@event
@dataclass(frozen=True, kw_only=True)
class WatcherResumed(Event):
    """A paused watcher was resumed."""

    TYPE = "watcher.resumed"
    watcher_id: str
    by: str = "user"


@event
@dataclass(frozen=True, kw_only=True)
class WatcherRemoved(Event):
    """A watcher was deleted; its history stays in the log."""

    TYPE = "watcher.removed"
    watcher_id: str


@event
@dataclass(frozen=True, kw_only=True)
class MetricStored(Event):
    """A numeric sample of a watcher's named series."""

    TYPE = "metric.stored"
    watcher_id: str
    name: str
    value: float


@event
@dataclass(frozen=True, kw_only=True)
class ActionInterrupted(Event):
    """An action's intent was recorded but not its result (pivot stopped meanwhile).

    Found on restart; ``retried`` is true for idempotent actions, which are run
    again; others are only reported.
    """

    TYPE = "action.interrupted"
    watcher_id: str
    action_id: str
    action_type: str
    retried: bool = False


@event
@dataclass(frozen=True, kw_only=True)
class WatcherTimerFired(Event):
    """Timer mode: the watcher's timer came due (its actions follow, or are suppressed)."""

    TYPE = "watcher.timer_fired"
    watcher_id: str


@event
@dataclass(frozen=True, kw_only=True)
class HostingStarted(Event):
    """This process now hosts the project's job watchers: it holds the lease.

    ``reason``: ``free`` (nobody held it), ``holder gone`` (the holder was a
    process of this machine that no longer exists), ``expired`` (the holder
    did not renew it for ``ttl`` seconds). ``previous`` names the holder it
    replaced; its intents without a result are reported as interrupted.
    """

    TYPE = "watchers.hosting_started"
    holder: str
    pid: int
    host: str
    command: str = ""
    reason: str = ""
    previous: str = ""


@event
@dataclass(frozen=True, kw_only=True)
class HostingStopped(Event):
    """This process stopped hosting the job watchers (``reason``: stopped, lease lost)."""

    TYPE = "watchers.hosting_stopped"
    holder: str
    pid: int
    host: str
    reason: str = "stopped"


@event
@dataclass(frozen=True, kw_only=True)
class HostingStandby(Event):
    """Another process hosts the job watchers; this one stands by to take over.

    Recorded once per holder seen, not on every look.
    """

    TYPE = "watchers.standing_by"
    pid: int
    host: str
    holder_pid: int
    holder_host: str
    holder_command: str = ""
    holder_since: float = 0.0
