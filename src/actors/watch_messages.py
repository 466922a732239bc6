"""Typed messages between the actors of `pivot watch` (frozen, plain data).

Those of the job watchers' actors are in :mod:`pivot.actors.job_messages`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pivot.watch.debounce import Batch
from pivot.watch.watched_pipeline import PipelineView, PlannedStage

__all__ = [
    "Batch",
    "Boot",
    "CancelStaleRuns",
    "ChildCrashed",
    "DebounceTick",
    "DeclaredPaths",
    "DisplayKey",
    "ForceAll",
    "PathsChanged",
    "PathsSeen",
    "Ping",
    "RunWave",
    "WatcherThreadFailed",
    "WaveDone",
    "WindowOpened",
]


@dataclass(frozen=True, slots=True)
class PathsChanged:
    """FileWatcher -> Debouncer: paths reported by the OS (already filtered).

    ``overflow``: changes may have been lost (a watcher restart), re-check everything.
    """

    paths: frozenset[str]
    overflow: bool = False


@dataclass(frozen=True, slots=True)
class PathsSeen:
    """A watcher thread -> FileWatcher: paths watchfiles reported, not yet filtered.

    The filter (ignore rules, declared paths) belongs to the actor's thread;
    the watcher threads only hand over what they saw.
    """

    paths: frozenset[str]


@dataclass(frozen=True, slots=True)
class WindowOpened:
    """Debouncer -> Coordinator: changes are arriving; a batch will follow.

    Changes left pending by a wave then wait for that batch instead of
    starting a wave in the middle of, say, a checkout. ``open=False``: no
    window is open (a restarted debouncer says so, its window was lost).
    """

    open: bool = True


@dataclass(frozen=True, slots=True)
class DebounceTick:
    """Timer -> Debouncer: a window may have closed."""


@dataclass(frozen=True, slots=True)
class WatcherThreadFailed:
    """FileWatcher's thread -> FileWatcher: watchfiles raised."""

    error: str


@dataclass(frozen=True, slots=True)
class DeclaredPaths:
    """Coordinator -> FileWatcher: deps and outs of the pipeline just loaded."""

    paths: frozenset[str] | None  # None: unchanged (only the ignore files changed)
    ignore_changed: bool = False


@dataclass(frozen=True, slots=True)
class ForceAll:
    """Display/keyboard -> Coordinator: run every stage (key `f`)."""


@dataclass(frozen=True, slots=True)
class DisplayKey:
    """KeyReader -> Display: a key that moves the TUI's log pane (see pivot.watch.keys)."""

    action: str


@dataclass(frozen=True, slots=True)
class RunWave:
    """Coordinator -> WorkerPool: run ``stages`` (in dependency order) as one wave.

    ``restart``: replace every worker first (the code changed).
    """

    wave_id: str
    view: PipelineView
    stages: tuple[PlannedStage, ...]
    trigger: str = "change"
    restart: bool = False
    reason: str = ""
    correlation_id: str = ""


@dataclass(frozen=True, slots=True)
class CancelStaleRuns:
    """Coordinator -> WorkerPool: the code of these SLURM stages of wave ``wave_id`` changed;
    cancel their jobs (they are submitted again in the next wave)."""

    wave_id: str
    stages: tuple[str, ...]
    reason: str


@dataclass(frozen=True, slots=True)
class WaveDone:
    """WorkerPool -> Coordinator: the wave ended (``restart_failed``: it never ran)."""

    wave_id: str
    stages: tuple[str, ...] = ()
    restart_failed: bool = False
    cancelled: bool = False


@dataclass(frozen=True, slots=True)
class Boot:
    """System -> Coordinator: load the pipeline and run what is stale (once watching)."""


@dataclass(frozen=True, slots=True)
class Ping:
    """Anyone -> an actor, with ``ask``: returns once every earlier message is handled."""


@dataclass(frozen=True, slots=True)
class ChildCrashed:
    """An actor -> Supervisor: I raised out of a handler and stopped."""

    name: str
    error: str
