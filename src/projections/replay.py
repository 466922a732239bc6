"""Replay: projections as of a point in the log, and checking the stored ones.

:func:`replay_until` folds the log from the start up to a sequence number or
a moment (events with ``at`` at or before it) into fresh states and views,
nothing stored: "what were the watcher stats at 14:05 yesterday". A view
that depends on the clock (events in the last hour) is computed as of that
moment.

:func:`verify` checks what exists: it first reads and decodes every event
of the log (:func:`check_log`: a damaged row, or one this pivot cannot
read, is reported by seq), then rebuilds every projection (all in one read
of the log): one that is stored is rebuilt up to the position its stored
state claims and compared, and any difference (the stored state was not
produced by folding the log: a bug, or a hand edit) is listed path by path;
one that is not stored is folded over the whole log, which shows that it can
be, with nothing to compare.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from pivot.events.base import EventDecodeError
from pivot.events.store import EventStore, Recorded
from pivot.projections import (
    PROJECTIONS,
    Projection,
    State,
    get_projection,
    open_projection,
    rebuild,
)

__all__ = ["LogCheck", "Replay", "Verdict", "check_log", "differences", "replay_until", "verify"]


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


@dataclass
class LogCheck:
    """What reading every event of the log found."""

    events: int = 0
    last_seq: int = 0
    error: str = ""  # the first event that does not decode ("" when all do)

    @property
    def ok(self) -> bool:
        """Whether every event decoded."""
        return not self.error


def check_log(store: EventStore) -> LogCheck:
    """Read and decode every event of the log, stopping at the first that does not decode."""
    check = LogCheck()
    try:
        for rec in store.read():
            check.events += 1
            check.last_seq = rec.seq
    except EventDecodeError as exc:
        check.error = str(exc)
    return check


def verify(store: EventStore, names: Iterable[str] | None = None) -> list[Verdict]:
    """Compare every stored projection with a rebuild up to its stored position.

    A projection that is not stored is folded over the whole log (its
    verdict's ``position`` is where that fold ended): status "not stored".
    """
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
    end = store.last_seq()
    unstored = [name for name, v in verdicts.items() if v.status == "not stored"]
    positions = {name: position for name, (_, position) in stored.items()}
    rebuilt = _rebuild_each(store, {**positions, **dict.fromkeys(unstored, end)})
    for name in unstored:
        verdicts[name].position = end if rebuilt else 0
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
