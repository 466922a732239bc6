"""Waves a killed pivot left unfinished, recorded as interrupted at the next start.

A `kill -9` (or a crash, or a power cut) of the process running a wave leaves
``wave.started`` and perhaps ``stage.started`` in the log with no end, and
every projection would say "running" for ever. Waves of one project run one
at a time, under its run lock (:mod:`pivot.pipeline.lock`), so a process that
holds the lock knows that no wave is running: if the log's latest wave event
is a ``wave.started``, that wave was interrupted. :func:`close_unfinished`
decides what closes it (a pure function over its events):
``stage.cancelled`` for each stage it queued or started and never ended, then
``wave.interrupted``. :func:`find_interrupted` reads the log for them, and
:class:`Takeover` adds what the run lock killed of a dead holder's workers:
`pivot run` appends them after taking the lock, `pivot watch` when it starts
and whenever it takes the lock from a process that died holding it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from pivot.events import pipeline as ev
from pivot.events.base import Event

if TYPE_CHECKING:
    from pivot.events.store import EventStore
    from pivot.pipeline.lock import Holder

__all__ = ["WAVE_TYPES", "Takeover", "close_unfinished", "describe", "find_interrupted"]

WAVE_TYPES = (ev.WaveStarted.TYPE, ev.WaveFinished.TYPE, ev.WaveInterrupted.TYPE)
_STAGE_TYPES = tuple(c.TYPE for c in ev.STAGE_EVENTS)


def close_unfinished(
    started: ev.WaveStarted, stage_events: Iterable[Event], *, pid: int = 0, actor: str = ""
) -> list[Event]:
    """The events that record ``started``'s wave as interrupted.

    ``stage_events``: the log's stage events since ``started`` (any wave;
    those of other waves are ignored). A stage the wave was to run
    (``started.stages``), queued or started, and never ended is cancelled:
    stage events are recorded once the stages are on their way, so a kill
    can come after a stage started and before the log says so.
    """
    open_stages: dict[str, None] = dict.fromkeys(started.stages)
    for e in stage_events:
        if e.correlation_id != started.wave_id or not hasattr(e, "stage"):
            continue
        stage = str(getattr(e, "stage", ""))
        if isinstance(e, ev.StageQueued | ev.StageStarted):
            open_stages[stage] = None
        elif isinstance(e, ev.STAGE_ENDS):
            open_stages.pop(stage, None)
    who = f"pivot (pid {pid})" if pid else "the pivot process running it"
    reason = f"interrupted: {who} ended without finishing the wave"
    closing: list[Event] = [
        ev.StageCancelled(stage=stage, reason=reason, actor=actor, correlation_id=started.wave_id)
        for stage in open_stages
    ]
    closing.append(
        ev.WaveInterrupted(
            wave_id=started.wave_id,
            stages=tuple(open_stages),
            pid=pid,
            reason=reason,
            actor=actor,
            correlation_id=started.correlation_id,
        )
    )
    return closing


def find_interrupted(store: EventStore, *, pid: int = 0, actor: str = "") -> list[Event]:
    """The events that close the log's latest wave if it never ended (often none).

    Call only while holding the project's run lock (otherwise the latest
    wave may be running right now in another process), and append them.
    """
    latest = next(store.read_backwards(types=WAVE_TYPES, limit=1), None)
    if latest is None or not isinstance(latest.event, ev.WaveStarted):
        return []
    stages = (r.event for r in store.read(after=latest.seq, types=_STAGE_TYPES))
    return close_unfinished(latest.event, stages, pid=pid, actor=actor)


class Takeover:
    """What a new holder of the run lock records about the holder before it.

    Pass :meth:`on_leftover` to :func:`pivot.pipeline.lock.run_lock`; once the
    lock is held, :meth:`events` gives ``workers.orphans_stopped`` for the
    leftovers it killed and the events closing an interrupted wave.
    """

    def __init__(self, actor: str) -> None:
        self.actor = actor
        self.stopped: list[Event] = []

    def on_leftover(self, previous: Holder, pids: list[int]) -> None:
        """The run lock's hook: it is killing ``pids`` left by ``previous``."""
        self.stopped.append(
            ev.OrphansStopped(holder=previous.pid, pids=tuple(pids), actor=self.actor)
        )

    def needed(self, previous: Holder) -> bool:
        """Whether :meth:`events` may find anything beyond a first check at start."""
        return bool(self.stopped) or previous.died_holding()

    def events(self, store: EventStore, previous: Holder) -> list[Event]:
        """The events to append now (taken: a second call gives only new ones)."""
        found, self.stopped = self.stopped, []
        pid = previous.pid if previous.died_holding() else 0
        return [*found, *find_interrupted(store, pid=pid, actor=self.actor)]


def describe(events: Sequence[Event]) -> list[str]:
    """One line for the user per thing :class:`Takeover` recorded."""
    lines = []
    for e in events:
        if isinstance(e, ev.OrphansStopped):
            lines.append(
                f"note: stopped {len(e.pids)} process(es) left running by pivot "
                f"(pid {e.holder}), which ended without stopping them: "
                + ", ".join(map(str, e.pids))
            )
        elif isinstance(e, ev.WaveInterrupted):
            who = f"pivot (pid {e.pid})" if e.pid else "a pivot process"
            what = f" ({', '.join(e.stages)} did not finish)" if e.stages else ""
            lines.append(
                f"note: {who} was stopped in the middle of a run{what}; recorded it as interrupted"
            )
    return lines
