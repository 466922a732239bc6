"""What the watch display shows, folded from events (pure, no terminal).

:class:`Board` is the state of the live table (stage rows in pipeline order,
current wave, recent events, error panel, the log pane of one stage's
output); :func:`plain_line` is the one line `--display plain` prints for a
transition; :func:`json_line` the record `--display json` prints.

The log pane shows the *selected* stage, or, until the user selects one
(:meth:`Board.select`), the stage that started last. A stage's lines are
those of its current run only: they are cleared when it starts again.
"""

from __future__ import annotations

import json
import time
from collections import deque
from dataclasses import dataclass, field

from pivot.events import actors as ev_actors
from pivot.events import pipeline as ev
from pivot.events.base import Event
from pivot.pipeline.plan import describe_reasons
from pivot.pipeline.run_output import describe, wave_counts

__all__ = ["Board", "StageRow", "json_line", "output_json", "plain_line"]

RECENT = 12
ERROR_LINES = 12  # of a failed stage's traceback, in the error panel
_PLAN_NOTE = "\n(nothing ran; the next change plans again)"  # ends a plan error's panel
LOG_LINES = 2000  # kept per stage for the log pane (its log file has them all)
UP_TO_DATE = "up to date"
# States after which a row's reasons are about the past ("upstream x ran").
ENDED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(slots=True)
class StageRow:
    """One line of the stage table."""

    name: str
    state: str = UP_TO_DATE
    duration: float | None = None
    reasons: tuple[str, ...] = ()
    started_at: float | None = None
    pid: int = 0  # the worker that ran it last; known when it ends (0: not yet, or unknown)
    job: str = ""  # the SLURM job of its current or last run ("" : it ran locally)
    job_state: str = ""  # that job's state as Slurm last said (or submitted, adopted)

    @property
    def shown_state(self) -> str:
        """The state column: ``running``, or for a SLURM run ``running: SLURM job 12 pending``."""
        if self.job and self.state == "running":
            return f"running: SLURM job {self.job} {self.job_state}"
        return self.state

    @property
    def reason(self) -> str:
        """Why it last ran (or was skipped), as a sentence in the right tense."""
        return describe_reasons(self.reasons, ran=self.state in ENDED)


@dataclass(slots=True)
class Board:
    """The display's model: apply events (and stage output, and keys), read fields."""

    stages: dict[str, StageRow] = field(default_factory=dict)
    wave: str = ""
    wave_trigger: str = ""
    wave_count: int = 0
    wave_running: bool = False
    waiting_for: str = ""  # pid of the `pivot run` a wave waits for
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=RECENT))
    error: str = ""
    stopped: str = ""
    logs: dict[str, deque[str]] = field(default_factory=dict)
    last_started: str = ""
    selected: str = ""  # "" follows the stage that started last
    show_log: bool = True
    scroll: int = 0  # lines above the newest shown at the bottom of the pane

    def row(self, name: str) -> StageRow:
        """The row of ``name``, created when first seen."""
        r = self.stages.get(name)
        if r is None:
            r = self.stages[name] = StageRow(name)
        return r

    # -- the log pane --------------------------------------------------------------
    @property
    def log_stage(self) -> str:
        """The stage whose output the pane shows ("" before any stage started)."""
        return self.selected or self.last_started

    def output(self, stage: str, line: str) -> None:
        """A line the stage printed in its current run."""
        self.logs.setdefault(stage, deque(maxlen=LOG_LINES)).append(line)

    def log_window(self, height: int) -> list[str]:
        """The ``height`` lines of the pane, scrolled; the scroll is clamped to the log."""
        lines = self.logs.get(self.log_stage, ())
        self.scroll = max(0, min(self.scroll, len(lines) - height))
        end = len(lines) - self.scroll
        return list(lines)[max(0, end - height) : end]

    def select(self, step: int) -> None:
        """Show the output of the next (``step`` 1) or previous (-1) stage of the table."""
        names = list(self.stages)
        if not names:
            return
        current = self.log_stage
        i = names.index(current) + step if current in names else (0 if step > 0 else -1)
        self.selected = names[i % len(names)]
        self.scroll = 0

    def follow(self) -> None:
        """Go back to showing the stage that started last."""
        self.selected, self.scroll = "", 0

    def scroll_by(self, lines: int) -> None:
        """Scroll the pane up (positive) or down (negative)."""
        self.scroll = max(0, self.scroll + lines)

    def toggle_log(self) -> None:
        """Show or hide the log pane."""
        self.show_log = not self.show_log

    # -- events ----------------------------------------------------------------------
    def apply(self, e: Event) -> None:  # noqa: PLR0912, PLR0915 - one branch per event type
        """Fold one event into the board."""
        line = plain_line(e)
        if line:
            self.recent.append(time.strftime("%H:%M:%S ", time.localtime(e.at)) + line)
        if isinstance(e, ev.PipelineReloaded):
            self._reloaded(e)
            self.error = ""
        elif isinstance(e, ev.PipelineInvalid):
            self.error = f"{_where(e)}{e.error}\n(the last valid pipeline is kept; nothing runs)"
        elif isinstance(e, ev.WavePlanFailed):
            self.error = f"{_where(e)}{e.error}{_PLAN_NOTE}"
        elif isinstance(e, ev_actors.WaveWaiting):
            self.waiting_for = e.holder
        elif isinstance(e, ev.WaveStarted):
            if self.error.endswith(_PLAN_NOTE):  # planned this time
                self.error = ""
            self.waiting_for = ""
            self.wave_count += 1
            self.wave = e.wave_id[:8]
            self.wave_trigger = e.trigger
            self.wave_running = True
        elif isinstance(e, ev.WaveFinished):
            self.wave_running = False
        elif isinstance(e, ev.StageQueued):
            r = self.row(e.stage)
            r.state, r.reasons = "queued", e.reasons
        elif isinstance(e, ev.StageStarted):
            r = self.row(e.stage)
            r.state, r.started_at, r.duration, r.pid = "running", e.at, None, 0
            r.job = r.job_state = ""
            self.logs[e.stage] = deque(maxlen=LOG_LINES)  # this run's output only
            self.last_started = e.stage
            if not self.selected:
                self.scroll = 0
        elif isinstance(e, ev.StageSubmitted | ev.StageAdopted):
            r = self.row(e.stage)
            r.job, r.job_state = e.job_id, e.TYPE.removeprefix("stage.")
        elif isinstance(e, ev.StageJobState):
            r = self.row(e.stage)
            if r.job == e.job_id:
                r.job_state = e.state
        elif isinstance(e, ev.StageSucceeded):
            r = self.row(e.stage)
            r.state, r.duration, r.pid = "succeeded", e.duration, e.pid
            if self.error.startswith(f"{e.stage} failed"):
                self.error = ""
        elif isinstance(e, ev.StageFailed):
            r = self.row(e.stage)
            r.state, r.duration, r.pid = "failed", e.duration, e.pid
            tb = "\n".join(e.traceback.strip().splitlines()[-ERROR_LINES:])
            self.error = f"{e.stage} failed: {e.error}" + (f"\n{tb}" if tb else "")
        elif isinstance(e, ev.StageSkipped):
            r = self.row(e.stage)
            if e.reason == UP_TO_DATE:
                r.state, r.reasons = UP_TO_DATE, ()
            else:
                r.state, r.reasons = "skipped", (e.reason,)
        elif isinstance(e, ev.StageCancelled):
            r = self.row(e.stage)
            r.state, r.reasons = "cancelled", (e.reason,)
        elif isinstance(e, ev_actors.SupervisorGaveUp):
            self.error = e.error
        elif isinstance(e, ev_actors.WatchStopped):
            self.stopped = e.error or "stopped"

    def _reloaded(self, e: ev.PipelineReloaded) -> None:
        if not e.stages:  # a log from before the order was recorded
            for name in e.removed:
                self.stages.pop(name, None)
            for name in (*e.added, *e.modified):
                self.row(name)
            return
        # The table follows the pipeline's order; rows keep their last state.
        self.stages = {name: self.stages.get(name) or StageRow(name) for name in e.stages}
        if self.selected not in self.stages:
            self.selected = ""


def _where(e: ev.PipelineInvalid | ev.WavePlanFailed) -> str:
    """``file:line: `` (or ``file: ``, or nothing) before a pipeline error."""
    if not e.file:
        return ""
    return f"{e.file}:{e.line}: " if e.line else f"{e.file}: "


def plain_line(e: Event) -> str | None:  # noqa: PLR0911, PLR0912 - one branch per event type
    """The log line for a transition, or None for events not worth a line."""
    if isinstance(e, ev.ChangesDetected):
        shown = ", ".join(e.paths[:5])
        more = f" (+{e.count - len(e.paths[:5])} more)" if e.count > len(e.paths[:5]) else ""
        over = " [too many to list: re-checking everything]" if e.overflow else ""
        return f"changes ({e.kind}): {shown}{more}{over}"
    if isinstance(e, ev.PipelineReloaded):
        parts = [
            f"{label} {', '.join(names)}"
            for label, names in (
                ("added", e.added),
                ("removed", e.removed),
                ("modified", e.modified),
            )
            if names
        ]
        return "pipeline loaded" + (": " + "; ".join(parts) if parts else "")
    if isinstance(e, ev.PipelineInvalid):
        return f"pipeline error: {_where(e)}{e.error} (keeping the last valid pipeline)"
    if isinstance(e, ev.WavePlanFailed):
        return f"wave not planned: {_where(e)}{e.error} (nothing runs until the next change)"
    if isinstance(e, ev.WorkersRestarted):
        what = "started" if e.reason == "start" else f"restarted ({e.reason})"
        return f"workers {what}: {e.jobs} fresh process{'es' if e.jobs != 1 else ''}"
    if isinstance(e, ev.WorkersRestartFailed):
        return f"workers restart failed: {e.error} (the next wave retries)"
    if isinstance(e, ev.WaveStarted):
        return f"wave {e.wave_id[:8]} started ({e.trigger}): {', '.join(e.stages)}"
    if isinstance(e, ev.WaveFinished):
        return f"wave {e.wave_id[:8]} finished in {e.duration:.2f}s: {wave_counts(e)}"
    if isinstance(e, ev.StageStarted):
        return f"stage {e.stage} started"
    if isinstance(e, ev.StageSubmitted | ev.StageAdopted | ev.StageJobState):
        return describe(e)  # "train: submitted as SLURM job 12 on local", as pivot run says
    if isinstance(e, ev.StageSucceeded):
        where = f", worker pid {e.pid}" if e.pid else ""
        return f"stage {e.stage} succeeded ({e.duration:.2f}s{where})"
    if isinstance(e, ev.StageFailed):
        first = e.error.strip().splitlines()[-1] if e.error.strip() else "failed"
        where = f" (worker pid {e.pid})" if e.pid else ""
        return f"stage {e.stage} failed{where}: {first}"
    if isinstance(e, ev.StageSkipped):
        return f"stage {e.stage} skipped: {e.reason}"
    if isinstance(e, ev.StageCancelled):
        return f"stage {e.stage} cancelled: {e.reason}"
    if isinstance(e, ev.StageQueued):
        return f"stage {e.stage} queued: {describe_reasons(e.reasons)}"
    if isinstance(e, ev.WaveCodeChecked):
        return _code_checked(e)
    if isinstance(e, ev_actors.WaveWaiting):
        return (
            f"wave {e.wave_id[:8]} waiting for another pivot run (pid {e.holder}) to finish: "
            f"{', '.join(e.stages)}"
        )
    if isinstance(e, ev_actors.ChangesPending):
        return f"{e.count} change(s) waiting for the next wave: {', '.join(e.paths)}"
    if isinstance(e, ev_actors.ActorCrashed):
        return f"actor {e.name} crashed: {e.error}"
    if isinstance(e, ev_actors.ActorRestarted):
        return f"actor {e.name} restarted (attempt {e.attempt})"
    if isinstance(e, ev_actors.SupervisorGaveUp):
        return f"giving up: {e.error}"
    if isinstance(e, ev_actors.WatchStarted):
        return f"watching {len(e.flat) + len(e.deep)} folder(s)"
    if isinstance(e, ev_actors.WatchStopped):
        return "stopped" + (f": {e.error}" if e.error else "")
    if e.TYPE.startswith(HOSTED) and e.TYPE not in QUIET:
        return _generic(e)
    return None


def _code_checked(e: ev.WaveCodeChecked) -> str | None:
    if e.error:
        return None  # the next wave's reload says it, with file and line
    if not e.stale:
        return "code changed: the running SLURM jobs are not affected"
    names = ", ".join(e.stale)
    return f"code changed: cancelling the SLURM jobs of {names}; submitted again in the next wave"


# Events of job watchers hosted by `pivot watch` (see pivot.watch.job_watchers).
HOSTED = ("watcher.", "watchers.", "action.", "job.", "metric.")
QUIET = frozenset({"job.seen", "watcher.timer_fired"})
_COMMON = frozenset({"at", "actor", "correlation_id"})


def _generic(e: Event) -> str:
    parts = []
    for key, value in e.to_dict().items():
        if key in _COMMON or value in ("", None, (), [], {}):
            continue
        text = str(value)
        parts.append(f"{key}={text if len(text) <= 60 else text[:57] + '...'}")
    return f"{e.TYPE}: {', '.join(parts)}"


def json_line(e: Event, seq: int | None = None) -> str:
    """The `--display json` record of an event: exactly its `pivot events --json` line.

    ``{"seq", "type", "at", "actor", "correlation_id", "data": {...}}``;
    ``seq`` is its position in the log (None if it could not be recorded).
    """
    from pivot.events.query import json_line as one_line
    from pivot.events.query import to_json

    return one_line(to_json(seq or None, e.TYPE, e.to_dict()))


def output_json(stage: str, line: str, at: float) -> str:
    """The `--display json` record of one line a stage printed (``stage.output``).

    The same shape as an event's (``seq`` None: it is not an event of the
    log; the stage's log file, ``.pivot/logs``, keeps its output).
    """
    record = {
        "seq": None,
        "type": "stage.output",
        "at": at,
        "actor": "",
        "correlation_id": "",
        "data": {"stage": stage, "line": line},
    }
    return json.dumps(record, separators=(",", ":"))
