"""Selecting and showing events: what `pivot events` filters on and prints.

Pure functions over stored events: :class:`EventQuery` says which events a
user asked for (types, stage, watcher, time range), :func:`expand_types`
turns ``--type`` patterns into catalogue names (globs allowed, unknown names
refused), and :func:`to_json` gives the one-object-per-line form of
``--json``::

    {"seq": 12, "type": "stage.failed", "at": 1763906700.5, "actor": "worker-pool",
     "correlation_id": "9f...", "data": {"stage": "train", "error": "...", "duration": 1.2}}
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "EventQuery",
    "UnknownEventTypeError",
    "expand_types",
    "json_line",
    "subject",
    "to_json",
]

_COMMON = ("at", "actor", "correlation_id")
# Fields that say what an event is about, most specific first.
_SUBJECT_FIELDS = ("stage", "watcher_id", "job_id", "name", "wave_id", "batch_id")


class UnknownEventTypeError(ValueError):
    """A ``--type`` that names no event in the catalogue."""


def expand_types(patterns: Iterable[str], known: Iterable[str]) -> tuple[str, ...]:
    """Catalogue names matching ``patterns`` (exact or globs like ``stage.*``), sorted.

    Empty ``patterns`` means every type (returned as ``()``, i.e. no filter).
    """
    names = sorted(known)
    chosen: set[str] = set()
    for raw in patterns:
        for pattern in (p.strip() for p in raw.split(",")):
            if not pattern:
                continue
            hits = fnmatch.filter(names, pattern)
            if not hits:
                raise UnknownEventTypeError(
                    f"no event type matches {pattern!r}; known types: {', '.join(names)}"
                )
            chosen.update(hits)
    return tuple(sorted(chosen))


@dataclass(frozen=True)
class EventQuery:
    """Which events to show. Empty fields do not filter.

    ``stage`` matches an event's ``stage`` field or its ``stages`` list (a
    wave); ``watcher`` its ``watcher_id``; ``since``/``until`` bound ``at``
    (seconds since the epoch, inclusive).
    """

    types: tuple[str, ...] = ()
    stage: str | None = None
    watcher: str | None = None
    since: float | None = None
    until: float | None = None

    @property
    def only_types(self) -> bool:
        """Whether the type filter (which the store applies itself) is all there is."""
        return self.stage is None and self.watcher is None and self.since is None and (
            self.until is None
        )  # fmt: skip

    def matches(self, fields: Mapping[str, Any]) -> bool:
        """Whether an event's fields (``Event.to_dict()``) pass every filter but types.

        The store applies the type filter itself (see :attr:`types`).
        """
        at = fields.get("at", 0.0)
        if self.since is not None and at < self.since:
            return False
        if self.until is not None and at > self.until:
            return False
        if self.stage is not None:
            stages = fields.get("stages") or ()
            if fields.get("stage") != self.stage and self.stage not in stages:
                return False
        return self.watcher is None or fields.get("watcher_id") == self.watcher


def subject(fields: Mapping[str, Any]) -> str:
    """What an event is about (its stage, watcher, job...), for the table's column."""
    for name in _SUBJECT_FIELDS:
        value = fields.get(name)
        if value:
            return str(value)
    return ""


def to_json(seq: int | None, type_name: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """The ``--json`` object of one event (``fields`` as from ``Event.to_dict()``).

    Also what `pivot watch --display json` prints, so both read the same;
    ``seq`` is None for a record that is not in the log.
    """
    return {
        "seq": seq,
        "type": type_name,
        "at": fields.get("at"),
        "actor": fields.get("actor", ""),
        "correlation_id": fields.get("correlation_id", ""),
        "data": {k: v for k, v in fields.items() if k not in _COMMON},
    }


_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False, default=str)


def json_line(obj: Any) -> str:
    """Compact one-line JSON (tuples as lists; anything else odd as its str)."""
    return _ENCODER.encode(obj)
