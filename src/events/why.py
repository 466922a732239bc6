"""`pivot why STAGE`: from the log alone, why a stage last ran or was skipped.

The answer follows correlation ids backwards: the stage's latest event
carries its wave's id; the wave (``wave.started``) carries the id of what
caused it, e.g. the change batch (``changes.detected``) with the paths and
their time. The stage's ``stage.queued`` reasons say through which deps
(``dep changed: data/raw.csv``), code or params it was affected, and
``upstream will run: prepare`` points at an upstream stage of the same wave,
whose own reasons are given too. :func:`explain` is a pure fold over
recorded events; :data:`WHY_TYPES` are the types it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from pivot.events import pipeline as ev
from pivot.events.base import Event
from pivot.events.store import EventStore, Recorded

__all__ = ["WHY_TYPES", "Explanation", "explain", "explain_from_store"]

_STAGE_TYPES = (
    ev.StageQueued,
    ev.StageStarted,
    ev.StageSucceeded,
    ev.StageFailed,
    ev.StageSkipped,
    ev.StageCancelled,
)
WHY_TYPES: tuple[str, ...] = tuple(
    sorted({c.TYPE for c in _STAGE_TYPES} | {ev.WaveStarted.TYPE, ev.ChangesDetected.TYPE})
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
_DEP, _UPSTREAM = "dep changed: ", "upstream will run: "


@dataclass
class Explanation:
    """Why ``stage`` last ran or was skipped (plain data: ``as_dict()`` is ``--json``)."""

    stage: str
    outcome: str = ""  # "" when the log never mentions the stage
    seq: int = 0
    at: float = 0.0
    detail: str = ""  # skip/cancel reason or failure
    wave: dict[str, Any] | None = None
    reasons: list[str] = field(default_factory=list)
    deps: list[str] = field(default_factory=list)
    cause: dict[str, Any] | None = None
    upstream: dict[str, list[str]] = field(default_factory=dict)
    chain: list[dict[str, Any]] = field(default_factory=list)

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
        }


def _link(rec: Recorded, id_field: str) -> dict[str, Any]:
    return {
        "seq": rec.seq,
        "type": rec.event.TYPE,
        "at": rec.event.at,
        "id": getattr(rec.event, id_field),
        "correlation_id": rec.event.correlation_id,
    }


def explain(stage: str, records: Iterable[Recorded]) -> Explanation:
    """Fold the log (at least :data:`WHY_TYPES`, in order) into an explanation."""
    waves: dict[str, Recorded] = {}
    batches: dict[str, Recorded] = {}
    # Per wave id: every stage's queued reasons (for upstream causes), and ours.
    queued: dict[str, dict[str, list[str]]] = {}
    last: Recorded | None = None
    for rec in records:
        e = rec.event
        if isinstance(e, ev.WaveStarted):
            waves[e.wave_id] = rec
        elif isinstance(e, ev.ChangesDetected):
            batches.setdefault(e.batch_id, rec)
        elif isinstance(e, _STAGE_TYPES):
            if isinstance(e, ev.StageQueued):
                queued.setdefault(e.correlation_id, {})[e.stage] = list(e.reasons)
            if e.stage == stage:
                last = rec
    out = Explanation(stage)
    if last is None:
        return out
    e = last.event
    wave_id = e.correlation_id
    out.outcome, out.seq, out.at = _OUTCOME[type(e)], last.seq, e.at
    if isinstance(e, ev.StageSkipped | ev.StageCancelled):
        out.detail = e.reason
    elif isinstance(e, ev.StageFailed):
        out.detail = e.error
    wave_stages = queued.get(wave_id, {})
    out.reasons = wave_stages.get(stage, [])
    out.deps = [r.removeprefix(_DEP) for r in out.reasons if r.startswith(_DEP)]
    _explain_upstream(out, wave_stages)
    out.chain.append(_link(last, "stage"))
    wave = waves.get(wave_id)
    if wave is None:
        return out
    w = wave.event
    assert isinstance(w, ev.WaveStarted)
    out.wave = {"wave_id": w.wave_id, "trigger": w.trigger, "at": w.at, "seq": wave.seq}
    out.chain.append(_link(wave, "wave_id"))
    batch = batches.get(w.correlation_id) if w.correlation_id else None
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


def explain_from_store(stage: str, store: EventStore) -> Explanation:
    """:func:`explain` over the log, reading only the events it needs.

    Reads backwards to the stage's last event, then to its wave's start
    and to the change batch behind it, and folds just that stretch: on a
    long log this reads a few pages instead of the whole log.
    """
    stage_types = sorted(c.TYPE for c in _STAGE_TYPES)
    last = _newest(store, stage_types, lambda e: getattr(e, "stage", None) == stage)
    if last is None:
        return Explanation(stage)
    wave_id = last.event.correlation_id
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
        return explain(stage, [r for r in (queued, last) if r is not None])
    records: list[Recorded] = []
    cause_id = wave.event.correlation_id
    if cause_id:
        batch = _newest(
            store,
            [ev.ChangesDetected.TYPE],
            lambda e: getattr(e, "batch_id", None) == cause_id,
            until=wave.seq,
        )
        if batch is not None:
            records.append(batch)
    records += store.read(after=wave.seq - 1, until=last.seq, types=WHY_TYPES)
    return explain(stage, records)


def _newest(
    store: EventStore, types: list[str], wanted: Callable[[Event], bool], until: int | None = None
) -> Recorded | None:
    return next((r for r in store.read_backwards(until, types) if wanted(r.event)), None)
