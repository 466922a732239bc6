"""How events look in a terminal: one coloured table row per event.

Colour says how it went: red for failures and crashes, green for
successes, yellow for skips, suppressions and cancellations, cyan for
starts, magenta for detected changes. The *subject* column is what the
event is about (stage, watcher, job...); *details* holds the other fields.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from typing import Any

from rich.table import Table
from rich.text import Text

from pivot.events.base import event_types
from pivot.events.query import subject
from pivot.terminal import plain

__all__ = ["event_style", "event_table", "format_time"]

_HIDDEN = {"at", "actor", "correlation_id"}
_STYLES = (
    (("failed", "crashed", "invalid", "gave_up", "lookup_failed"), "bold red"),
    (("succeeded", "ended", "resumed"), "green"),
    (("skipped", "suppressed", "cancelled", "paused", "removed"), "yellow"),
    (("started", "queued", "requested", "created", "submitted"), "cyan"),
    (("detected", "matched", "reloaded", "restarted"), "magenta"),
)


def event_style(type_name: str) -> str:
    """The rich style of an event type."""
    suffix = type_name.rsplit(".", 1)[-1]
    for words, style in _STYLES:
        if suffix in words or any(suffix.endswith(w) for w in words):
            return style
    return ""


def format_time(at: float, today: dt.date | None = None) -> str:
    """``14:05:09.123`` for today, ``2026-11-22 14:05:09`` for other days (local time)."""
    moment = dt.datetime.fromtimestamp(at)
    if moment.date() == (today or dt.date.today()):
        return moment.strftime("%H:%M:%S.%f")[:-3]
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, list | tuple):
        text = ",".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, separators=(",", ":"), default=str)
    elif isinstance(value, float):
        text = f"{value:.6g}"  # durations and metrics; --json keeps full precision
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= 80 else text[:77] + "..."


def _defaults(type_name: str) -> dict[str, Any]:
    cls = event_types().get(type_name)
    if cls is None:
        return {}
    return {
        f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING
    }


def details(fields: Mapping[str, Any], shown_subject: str, defaults: Mapping[str, Any]) -> str:
    """The fields not shown in other columns and not at their default, as ``key=value``."""
    parts = []
    for key, value in fields.items():
        if key in _HIDDEN or value in ("", (), [], {}, None):
            continue
        if key in defaults and defaults[key] == value and not isinstance(value, float):
            continue
        if shown_subject and str(value) == shown_subject:
            continue
        parts.append(f"{key}={_value(value)}")
    return "  ".join(parts)


def _submitted(fields: Mapping[str, Any]) -> str:
    """``SLURM job 12 on local (02:00:00, 16G, 4 cpus)  again for job 11``: the run file
    and the inputs it was decided on are left to ``--json``."""
    from pivot.pipeline.slurm_resources import describe

    resources = {"host": fields.get("host", "local"), **dict(fields.get("resources") or {})}
    text = f"SLURM job {fields.get('job_id', '')} " + describe(resources).replace("slurm@", "on ")
    again = fields.get("resubmit_of")
    return text + (f"  again for job {again}" if again else "")


def _adopted(fields: Mapping[str, Any]) -> str:
    wave = str(fields.get("submitted_in", ""))[:12]
    return f"SLURM job {fields.get('job_id', '')} on {fields.get('host', 'local')}, " + (
        f"submitted in wave {wave} by a pivot that was killed" if wave else "left by a pivot"
    )


# Event types whose details read better as a sentence than as key=value pairs.
_READABLE = {"stage.submitted": _submitted, "stage.adopted": _adopted}


def event_table(rows: Iterable[tuple[int, str, Mapping[str, Any]]], header: bool = True) -> Table:
    """A table of ``(seq, type, fields)`` rows.

    On a terminal, long subjects and actors are cut (``...``) so the details
    keep their room; into a pipe or a file every value is whole, for grep.
    """
    import sys

    whole = not sys.stdout.isatty()
    table = Table(box=None, show_header=header, header_style="bold", pad_edge=False)
    table.add_column("seq", justify="right", style="dim", no_wrap=True, min_width=6)
    table.add_column("time", no_wrap=True, min_width=12)
    table.add_column("type", no_wrap=True, min_width=18)
    table.add_column("subject", no_wrap=True, max_width=None if whole else 24)
    table.add_column("actor", style="dim", no_wrap=True, max_width=None if whole else 16)
    table.add_column("details", overflow="fold")
    today = dt.date.today()
    defaults: dict[str, dict[str, Any]] = {}
    for seq, type_name, fields in rows:
        what = subject(fields)
        table.add_row(
            str(seq),
            format_time(float(fields.get("at", 0.0)), today),
            Text(type_name, style=event_style(type_name)),
            plain(what),
            plain(fields.get("actor", "")),
            plain(
                _READABLE[type_name](fields)
                if type_name in _READABLE
                else details(fields, what, defaults.setdefault(type_name, _defaults(type_name)))
            ),
        )
    return table
