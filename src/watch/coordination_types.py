"""Plain data of the Coordinator's decisions (:mod:`pivot.watch.coordination`).

Its state (frozen; a phase says what is in flight), the inputs that are
results of its commands, and the commands themselves: what the actor does
at once (:class:`Append`, :class:`Tell`, :class:`RequestShutdown`) and the
work it runs off its thread (:class:`Examine`, :class:`Load`,
:class:`PlanWave`), each answered by one result input.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pivot.actors.watch_messages import Batch, Boot, ForceAll, WaveDone, WindowOpened
from pivot.events.base import Event
from pivot.watch.pending import Pending, Taken
from pivot.watch.watched_pipeline import LoadError, PipelineView, PlannedStage

__all__ = [
    "Append",
    "BatchExamined",
    "CheckRunningCode",
    "CheckedLoad",
    "Command",
    "CoordinatorState",
    "Examine",
    "Examining",
    "Idle",
    "Input",
    "Load",
    "Loading",
    "Phase",
    "PipelineLoaded",
    "PlanFailed",
    "PlanWave",
    "Planning",
    "RequestShutdown",
    "Running",
    "RunningCodeChecked",
    "Settings",
    "Tell",
    "WavePlanned",
]


# -- state ---------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Settings:
    """What `pivot watch` was started with; ids are ``id_prefix`` + a counter."""

    root: Path
    pipeline_file: Path
    targets: tuple[str, ...] = ()
    force_first: bool = False
    restarted: bool = False
    id_prefix: str = ""


@dataclass(frozen=True, slots=True)
class Idle:
    """Nothing in flight."""


@dataclass(frozen=True, slots=True)
class Examining:
    """The batch ``batch_id`` is being examined (hashes, own writes)."""

    batch_id: str


@dataclass(frozen=True, slots=True)
class Loading:
    """The pipeline is loading; then plan every stage with ``force``, as ``trigger``."""

    batch_id: str
    force: bool
    trigger: str


@dataclass(frozen=True, slots=True)
class Planning:
    """A wave is being planned."""

    batch_id: str
    trigger: str


@dataclass(frozen=True, slots=True)
class Running:
    """Wave ``wave_id`` runs on the worker pool; ``jobs``: its stages that run as SLURM jobs."""

    wave_id: str
    jobs: frozenset[str] = frozenset()


Phase = Idle | Examining | Loading | Planning | Running


@dataclass(frozen=True, slots=True)
class CheckedLoad:
    """The pipeline a stale-code check loaded (:mod:`pivot.watch.checked_load`): ``read``,
    the digest of each code path the load read (the same before and after it)."""

    view: PipelineView
    aliases: Mapping[Path, Path]
    read: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class CoordinatorState:
    """Everything the Coordinator decides from; never mutated (``replace`` it)."""

    settings: Settings
    phase: Phase = Idle()
    booted: bool = False
    stopped: bool = False  # asked to shut down: decide nothing more
    view: PipelineView | None = None  # the last valid pipeline
    invalid: bool = False  # the last load failed
    pending: Pending = field(default_factory=Pending)
    restart_needed: bool = False
    carry: frozenset[str] = frozenset()  # stages of a wave whose restart failed
    incoming: bool = False  # the debouncer has a window open
    code_seen: Mapping[str, str | None] = field(default_factory=dict)  # path -> digest
    aliases: Mapping[Path, Path] = field(default_factory=dict)  # symlink target -> declared
    ids: int = 0
    checking: bool = False  # a CheckRunningCode is in flight
    recheck: frozenset[str] = frozenset()  # code paths changed since it began
    checked: CheckedLoad | None = None  # its load, for the next wave while still current


# -- inputs that are results of commands ---------------------------------------
@dataclass(frozen=True, slots=True)
class BatchExamined:
    """Result of :class:`Examine`: the code paths that really changed, the data paths
    that count, and the digests seen (all of them, to keep)."""

    batch_id: str
    taken: Taken
    code: frozenset[str]
    data: frozenset[str]
    ignore_changed: bool
    code_seen: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class PipelineLoaded:
    """Result of :class:`Load` (``aliases``: of the loaded view's symlinked paths)."""

    batch_id: str
    result: PipelineView | LoadError
    aliases: Mapping[Path, Path] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WavePlanned:
    """Result of :class:`PlanWave`: the stages to run, in order (none: nothing stale)."""

    batch_id: str
    view: PipelineView
    stages: tuple[PlannedStage, ...]


@dataclass(frozen=True, slots=True)
class PlanFailed:
    """Result of :class:`PlanWave` when planning raised a user's mistake (a
    :class:`~pivot.pipeline.errors.PipelineError`: a dep or output pivot cannot read)."""

    batch_id: str
    error: str
    file: str = ""
    line: int = 0


@dataclass(frozen=True, slots=True)
class RunningCodeChecked:
    """Result of :class:`CheckRunningCode`: the pipeline as loaded meanwhile (``aliases``:
    of its symlinked paths); the digests of the checked code paths right before and right
    after the load."""

    wave_id: str
    result: PipelineView | LoadError
    aliases: Mapping[Path, Path] = field(default_factory=dict)
    before: Mapping[str, str | None] = field(default_factory=dict)
    after: Mapping[str, str | None] = field(default_factory=dict)


Input = (
    Boot
    | WindowOpened
    | Batch
    | ForceAll
    | WaveDone
    | BatchExamined
    | PipelineLoaded
    | WavePlanned
    | PlanFailed
    | RunningCodeChecked
)


# -- commands ------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Append:
    """Append these events to the store (one append), in order."""

    events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class Tell:
    """Send ``message`` to the actor called ``to``."""

    to: str
    message: object


@dataclass(frozen=True, slots=True)
class RequestShutdown:
    """Stop `pivot watch` with ``error`` and exit status ``code``."""

    error: str
    code: int


@dataclass(frozen=True, slots=True)
class Examine:
    """Off the actor's thread: :func:`examine`; answers :class:`BatchExamined`."""

    batch_id: str
    taken: Taken
    view: PipelineView | None
    invalid: bool
    aliases: Mapping[Path, Path]
    code_seen: Mapping[str, str | None]


@dataclass(frozen=True, slots=True)
class Load:
    """Off the actor's thread: drop ``stale_bytecode``, load the pipeline in a fresh
    interpreter; answers :class:`PipelineLoaded`."""

    batch_id: str
    stale_bytecode: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class PlanWave:
    """Off the actor's thread: the pipeline's stages to run; answers :class:`WavePlanned`
    (:class:`PlanFailed` for a user's mistake)."""

    batch_id: str
    view: PipelineView
    targets: frozenset[str] | None
    force: bool


@dataclass(frozen=True, slots=True)
class CheckRunningCode:
    """Off the actor's thread, beside wave ``wave_id``: drop ``stale_bytecode``, load the
    pipeline, digest those files before and after; answers :class:`RunningCodeChecked`."""

    wave_id: str
    stale_bytecode: frozenset[str] = frozenset()


Command = Append | Tell | RequestShutdown | Examine | Load | PlanWave | CheckRunningCode
