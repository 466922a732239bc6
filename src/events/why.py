"""`pivot why STAGE`: from the log alone, why a stage last ran (or ran before that).

By default the stage's last *real* run is explained (a no-op `pivot run`
after it only skips the stage as up to date, which is summarised as what
came later); ``run=2`` explains the run before, and so on. A stage that
never really ran has its last skip explained.

The answer follows correlation ids backwards: the stage's event carries its
wave's id; the wave (``wave.started``) carries the id of what caused it,
e.g. the change batch (``changes.detected``) with the paths and their time.
The stage's ``stage.queued`` reasons say through which deps (``dep changed:
data/raw.csv``), code or params it was affected, and ``upstream will run:
prepare`` points at an upstream stage of the same wave, whose own reasons
are given too. A run on SLURM names its jobs (:mod:`pivot.events.run_jobs`:
submitted, adopted after a killed pivot, resubmitted by a watcher), each
with its host and the last state Slurm reported. :func:`explain` is a pure
fold over recorded events; :data:`WHY_TYPES` are the types it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pivot.events import pipeline as ev
from pivot.events.base import Event
from pivot.events.run_jobs import JOB_TYPES, RunJobs
from pivot.events.store import EventStore, Recorded

__all__ = ["WHY_TYPES", "Explanation", "explain", "explain_from_store"]

_STAGE_TYPES = ev.STAGE_EVENTS
WHY_TYPES: tuple[str, ...] = tuple(
    sorted(
        {c.TYPE for c in _STAGE_TYPES}
        | {ev.WaveStarted.TYPE, ev.ChangesDetected.TYPE}
        | set(JOB_TYPES)
    )
)
# Outcome of a stage event, in the order a wave produces them.
_OUTCOME = {
    ev.StageQueued: "queued",
    ev.StageStarted: "running",
    ev.StageSucceeded: "succeeded",
    ev.StageFailed: "failed",
    ev.StageSkipped: "skipped",
    ev.StageCancelled: "cancelled",
}
# A stage event of one of these types in a wave makes that wave a real run.
_RUN_TYPES = (ev.StageStarted, ev.StageSucceeded, ev.StageFailed)
_DEP, _UPSTREAM = "dep changed: ", "upstream will run: "


@dataclass
class Explanation:
    """Why ``stage`` ran or was skipped (plain data: ``as_dict()`` is ``--json``).

    ``run`` is which run was asked for (1: the last real one); ``runs_seen``
    how many of the stage's runs the log holds, counted back from the newest
    as far as that one (``runs_seen < run``: the log has no such run).
    ``later`` summarises the stage's events after the explained one: the
    runs and skips since, and the newest (e.g. the "up to date" skip of the
    no-op run after it), or None when nothing came after. ``jobs``: the
    run's SLURM jobs, oldest first (``job_id``, ``host``, ``how``:
    submitted, adopted or resubmitted, ``resubmit_of``, ``submitted_in``,
    ``state``: the last Slurm reported, "" if no poll saw it, ``exit_code``).
    """

    stage: str
    outcome: str = ""  # "" when the log has no such event of the stage
    seq: int = 0
    at: float = 0.0
    detail: str = ""  # skip/cancel reason or failure
    wave: dict[str, Any] | None = None
    reasons: list[str] = field(default_factory=list)
    deps: list[str] = field(default_factory=list)
    cause: dict[str, Any] | None = None
    upstream: dict[str, list[str]] = field(default_factory=dict)
    chain: list[dict[str, Any]] = field(default_factory=list)
    run: int = 1
    runs_seen: int = 0
    later: dict[str, Any] | None = None
    jobs: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "stage": self.stage,
            "outcome": self.outcome,
            "seq": self.seq,
            "at": self.at,
            "detail": self.detail,
            "wave": self.wave,
            "reasons": self.reasons,
            "deps": self.deps,
            "cause": self.cause,
            "upstream": self.upstream,
            "chain": self.chain,
            "run": self.run,
            "runs_seen": self.runs_seen,
            "later": self.later,
            "jobs": self.jobs,
        }


def _link(rec: Recorded, id_field: str) -> dict[str, Any]:
    return {
        "seq": rec.seq,
        "type": rec.event.TYPE,
        "at": rec.event.at,
        "id": getattr(rec.event, id_field),
        "correlation_id": rec.event.correlation_id,
    }


@dataclass
class _Waves:
    """What the log says about waves: their start, their change batch, queued reasons."""

    started: dict[str, Recorded] = field(default_factory=dict)
    batches: dict[str, Recorded] = field(default_factory=dict)
    # Per wave id: every stage's queued reasons (for upstream causes).
    queued: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    jobs: RunJobs = field(default_factory=RunJobs)

    def add(self, rec: Recorded) -> None:
        e = rec.event
        self.jobs.add(rec)
        if isinstance(e, ev.WaveStarted):
            self.started[e.wave_id] = rec
        elif isinstance(e, ev.ChangesDetected):
            self.batches.setdefault(e.batch_id, rec)
        elif isinstance(e, ev.StageQueued):
            self.queued.setdefault(e.correlation_id, {})[e.stage] = list(e.reasons)


def _details(e: Event) -> tuple[str, str]:
    """(outcome, detail) of a stage event."""
    detail = ""
    if isinstance(e, ev.StageSkipped | ev.StageCancelled):
        detail = e.reason
    elif isinstance(e, ev.StageFailed):
        detail = e.error
    return _OUTCOME[type(e)], detail


def _runs(mine: list[Recorded]) -> list[int]:
    """Index in ``mine`` of the last event of each real run, oldest first.

    A real run is a wave in which the stage started, succeeded or failed
    (a cancel in such a wave ends the run; a cancel or skip alone is not a
    run). A stage runs at most once per wave, and a stage's events of one
    wave are contiguous (one wave at a time), so a run is the stretch of
    its events sharing one wave id.
    """
    ends: list[int] = []
    wave: str | None = None
    for i, rec in enumerate(mine):
        e = rec.event
        same = bool(ends) and wave == e.correlation_id
        if isinstance(e, _RUN_TYPES) or (same and isinstance(e, ev.StageCancelled)):
            if same:
                ends[-1] = i
            else:
                ends.append(i)
                wave = e.correlation_id
    return ends


def _pick(mine: list[Recorded], run: int) -> tuple[int | None, int]:
    """(index in ``mine`` of the event to explain, runs seen counting back to it).

    The end of the ``run``-th real run counted from the newest; when the
    stage never really ran and ``run`` is 1, its newest event (a skip).
    """
    ends = _runs(mine)
    if len(ends) >= run:
        return ends[-run], run
    if not ends and run == 1 and mine:
        return len(mine) - 1, 0
    return None, len(ends)


def _later(after: list[Recorded]) -> dict[str, Any] | None:
    if not after:
        return None
    newest = after[-1]
    outcome, detail = _details(newest.event)
    ends = _runs(after)
    return {
        "runs": len(ends),
        "skips": sum(isinstance(r.event, ev.StageSkipped) for r in after),
        "latest": {"outcome": outcome, "detail": detail, "seq": newest.seq, "at": newest.event.at},
    }


def explain(stage: str, records: Iterable[Recorded], run: int = 1) -> Explanation:
    """Fold the log (at least :data:`WHY_TYPES`, in order) into an explanation of one run.

    ``run`` 1 is the stage's last real run (see :func:`_runs`), 2 the one
    before, and so on; skips after it are summarised in ``later``.
    """
    waves = _Waves()
    mine: list[Recorded] = []
    for rec in records:
        waves.add(rec)
        e = rec.event
        if isinstance(e, _STAGE_TYPES) and e.stage == stage:
            mine.append(rec)
    return _answer(stage, mine, waves, run)


def _answer(stage: str, mine: list[Recorded], waves: _Waves, run: int) -> Explanation:
    """The explanation of the picked event of ``mine``, with its wave's context."""
    index, runs_seen = _pick(mine, run)
    out = Explanation(stage, run=run, runs_seen=runs_seen)
    if index is None:
        return out
    last = mine[index]
    out.later = _later(mine[index + 1 :])
    e = last.event
    wave_id = e.correlation_id
    out.outcome, out.detail = _details(e)
    out.seq, out.at = last.seq, e.at
    wave_stages = waves.queued.get(wave_id, {})
    out.reasons = wave_stages.get(stage, [])
    out.jobs = waves.jobs.of(wave_id, stage)
    out.deps = [r.removeprefix(_DEP) for r in out.reasons if r.startswith(_DEP)]
    _explain_upstream(out, wave_stages)
    out.chain.append(_link(last, "stage"))
    wave = waves.started.get(wave_id)
    if wave is None:
        return out
    w = wave.event
    assert isinstance(w, ev.WaveStarted)
    out.wave = {"wave_id": w.wave_id, "trigger": w.trigger, "at": w.at, "seq": wave.seq}
    out.chain.append(_link(wave, "wave_id"))
    batch = waves.batches.get(w.correlation_id) if w.correlation_id else None
    if batch is not None:
        b = batch.event
        assert isinstance(b, ev.ChangesDetected)
        out.chain.append(_link(batch, "batch_id"))
        wanted = set(out.deps) | {d for ds in out.upstream.values() for d in _deps(ds)}
        out.cause = {
            "type": b.TYPE,
            "batch_id": b.batch_id,
            "kind": b.kind,
            "paths": list(b.paths),
            "count": b.count,
            "overflow": b.overflow,
            "at": b.at,
            "seq": batch.seq,
            "via_deps": [p for p in b.paths if p in wanted],
        }
    return out


def _deps(reasons: list[str]) -> list[str]:
    return [r.removeprefix(_DEP) for r in reasons if r.startswith(_DEP)]


def _explain_upstream(out: Explanation, wave_stages: dict[str, list[str]]) -> None:
    """Follow ``upstream will run: X`` within the wave, breadth first."""
    todo = [r.removeprefix(_UPSTREAM) for r in out.reasons if r.startswith(_UPSTREAM)]
    while todo:
        name = todo.pop(0)
        if name in out.upstream or name == out.stage:
            continue
        reasons = wave_stages.get(name, [])
        out.upstream[name] = reasons
        todo += [r.removeprefix(_UPSTREAM) for r in reasons if r.startswith(_UPSTREAM)]


def explain_from_store(stage: str, store: EventStore, run: int = 1) -> Explanation:
    """:func:`explain` over the log, reading only the events it needs.

    Reads the stage's events backwards as far as the asked run, then its
    wave's start and the change batch behind it, and folds just that
    stretch: on a long log this reads a few pages instead of the whole log.
    """
    mine = _back_to_run(stage, store, run)
    index, _ = _pick(mine, run)
    if index is None:
        return _answer(stage, mine, _Waves(), run)
    last = mine[index]
    wave_id = last.event.correlation_id
    waves = _Waves()
    wave = _newest(
        store,
        [ev.WaveStarted.TYPE],
        lambda e: getattr(e, "wave_id", None) == wave_id,
        until=last.seq,
    )
    if wave is None:  # a stage event outside any recorded wave: explain it alone
        queued = _newest(
            store,
            [ev.StageQueued.TYPE],
            lambda e: getattr(e, "stage", None) == stage and e.correlation_id == wave_id,
            until=last.seq,
        )
        if queued is not None:
            waves.add(queued)
        for rec in store.read(after=mine[0].seq - 1, until=last.seq, types=JOB_TYPES):
            waves.add(rec)
        return _answer(stage, mine, waves, run)
    cause_id = wave.event.correlation_id
    if cause_id:
        batch = _newest(
            store,
            [ev.ChangesDetected.TYPE],
            lambda e: getattr(e, "batch_id", None) == cause_id,
            until=wave.seq,
        )
        if batch is not None:
            waves.add(batch)
    for rec in store.read(after=wave.seq - 1, until=last.seq, types=WHY_TYPES):
        waves.add(rec)
    return _answer(stage, mine, waves, run)


def _back_to_run(stage: str, store: EventStore, run: int) -> list[Recorded]:
    """The stage's events, oldest first, from the start of its ``run``-th last run on.

    Reads backwards and stops at the first event of an older wave once that
    many runs were seen (the whole log when it has fewer).
    """
    stage_types = sorted(c.TYPE for c in _STAGE_TYPES)
    newest_first: list[Recorded] = []
    run_waves: list[str] = []
    for rec in store.read_backwards(None, stage_types):
        e = rec.event
        if getattr(e, "stage", None) != stage:
            continue
        if len(run_waves) == run and e.correlation_id != run_waves[-1]:
            break
        if isinstance(e, _RUN_TYPES) and (not run_waves or run_waves[-1] != e.correlation_id):
            run_waves.append(e.correlation_id)
        newest_first.append(rec)
    newest_first.reverse()
    return newest_first


def _newest(
    store: EventStore, types: list[str], wanted: Callable[[Event], bool], until: int | None = None
) -> Recorded | None:
    return next((r for r in store.read_backwards(until, types) if wanted(r.event)), None)
