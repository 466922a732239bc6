"""Replay: projections as of a point in the log, and checking the stored ones.

:func:`replay_until` folds the log from the start up to a sequence number or
a moment (events with ``at`` at or before it) into fresh states and views,
nothing stored: "what were the watcher stats at 14:05 yesterday". A view
that depends on the clock (events in the last hour) is computed as of that
moment.

:func:`verify` rebuilds every projection up to the position its stored
state claims (all in one read of the log) and compares the two; any
difference means the stored state was not produced by folding the log (a
bug, or a hand edit) and is listed path by path.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pivot.events.store import EventStore, Recorded
from pivot.projections import (
    PROJECTIONS,
    Projection,
    State,
    get_projection,
    open_projection,
    rebuild,
)

__all__ = ["Replay", "Verdict", "differences", "replay_until", "verify"]


@dataclass
class Replay:
    """States and views of the chosen projections as of ``seq`` / ``at``."""

    seq: int
    at: float
    states: dict[str, Any]
    views: dict[str, Any]


def replay_until(
    store: EventStore,
    names: Iterable[str] | None = None,
    *,
    until_seq: int | None = None,
    until_time: float | None = None,
) -> Replay:
    """Rebuild projections from the log up to ``until_seq`` or ``until_time`` (or the end)."""
    chosen = [get_projection(n) for n in (names if names is not None else PROJECTIONS)]
    types = sorted({t for p in chosen for t in p.types})
    last: list[Recorded] = []

    def stream() -> Iterator[Recorded]:
        for rec in store.read(types=types, until=until_seq):
            if until_time is not None and rec.event.at > until_time:
                continue
            if not last:
                last.append(rec)
            else:
                last[0] = rec
            yield rec

    states = rebuild(store, [p.name for p in chosen], records=stream())
    seq = last[0].seq if last else 0
    if until_time is not None:
        at = until_time
    elif until_seq is not None:
        at = last[0].event.at if last else 0.0
    else:
        at = time.time()
    views = {p.name: p.view(states[p.name], at) for p in chosen}
    return Replay(seq, at, states, views)


@dataclass
class Verdict:
    """The comparison of one stored projection with its rebuild."""

    name: str
    status: str  # "ok" | "differs" | "not stored" | "outdated version"
    position: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether nothing differs."""
        return self.status != "differs"


def verify(store: EventStore, names: Iterable[str] | None = None) -> list[Verdict]:
    """Compare every stored projection with a rebuild up to its stored position."""
    chosen = list(names if names is not None else PROJECTIONS)
    verdicts: dict[str, Verdict] = {}
    stored: dict[str, tuple[State, int]] = {}
    for name in chosen:
        live = open_projection(store, name)
        position = live.stored_position
        if position is None:
            verdicts[name] = Verdict(name, "not stored")
        elif live.position != position:  # stored under another version
            verdicts[name] = Verdict(name, "outdated version", position)
        else:
            stored[name] = (live.state, position)
    rebuilt = _rebuild_each(store, {name: position for name, (_, position) in stored.items()})
    for name, (state, position) in stored.items():
        diffs = differences(_normal(state), _normal(rebuilt[name]))
        verdicts[name] = Verdict(name, "differs" if diffs else "ok", position, diffs)
    return [verdicts[name] for name in chosen]


def _rebuild_each(store: EventStore, positions: dict[str, int]) -> dict[str, State]:
    """Each projection folded from the log up to its own position.

    One read of the log serves them all (a rebuild per projection would
    read the events they share, e.g. every watcher event, once each).
    """
    if not positions:
        return {}
    chosen = [get_projection(name) for name in positions]
    states = {p.name: p.initial() for p in chosen}
    routes: dict[str, list[Projection]] = {}
    for p in chosen:
        for type_name in p.types:
            routes.setdefault(type_name, []).append(p)
    for rec in store.read(types=sorted(routes), until=max(positions.values())):
        for p in routes.get(rec.event.TYPE, ()):
            if rec.seq <= positions[p.name]:
                states[p.name] = p.apply(states[p.name], rec)
    return states


def _normal(state: Any) -> Any:
    # Stored states went through JSON (tuples became lists); compare like for like.
    return json.loads(json.dumps(state))


def differences(stored: Any, rebuilt: Any, path: str = "$", limit: int = 20) -> list[str]:
    """Human-readable differences (``$.stages.train.state: stored 'x', log says 'y'``)."""
    out: list[str] = []
    _diff(stored, rebuilt, path, out, limit)
    return out


def _diff(a: Any, b: Any, path: str, out: list[str], limit: int) -> None:
    if len(out) >= limit or a == b:
        return
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if key not in a:
                out.append(f"{path}.{key}: missing from the stored state")
            elif key not in b:
                out.append(f"{path}.{key}: stored but not in the rebuild")
            else:
                _diff(a[key], b[key], f"{path}.{key}", out, limit)
            if len(out) >= limit:
                return
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _diff(x, y, f"{path}[{i}]", out, limit)
    else:
        out.append(f"{path}: stored {_short(a)}, the log gives {_short(b)}")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."
