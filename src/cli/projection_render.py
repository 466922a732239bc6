"""Terminal renderings of projection views (pipeline status, watcher history, stats)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from pivot.cli.event_render import format_time
from pivot.terminal import plain

__all__ = ["render_view"]

_STATE_STYLE = {
    "succeeded": "green",
    "failed": "bold red",
    "running": "cyan",
    "queued": "cyan",
    "skipped": "yellow",
    "cancelled": "yellow",
    "active": "green",
    "paused": "yellow",
    "disabled": "red",
    "triggered": "magenta",
    "completed": "dim",
}


def _state(text: str) -> Text:
    return Text(text or "-", style=_STATE_STYLE.get(text, ""))


def _when(at: float | None) -> str:
    return format_time(at) if at else "-"


def _seconds(value: float | None) -> str:
    return f"{value:.2f}s" if value is not None else "-"


def _short(text: str, width: int = 60) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= width else flat[: width - 3] + "..."


def pipeline_status(view: dict[str, Any]) -> RenderableType:
    """Per stage: state, last run, duration, reason, last error."""
    table = Table(title="pipeline status", title_justify="left", box=None, header_style="bold")
    for name in ("stage", "state", "last run", "duration", "reason", "last error"):
        table.add_column(name, overflow="fold")
    for stage, s in sorted(view.get("stages", {}).items()):
        table.add_row(
            plain(stage),
            _state(s["state"]),
            _when(s["last_run"]),
            _seconds(s["duration"]),
            plain(_short(s["reason"])),
            plain(_short(s["last_error"]), style="red"),
        )
    parts: list[RenderableType] = [table]
    wave = view.get("wave")
    if wave:
        parts.append(
            Text(
                f"last wave {wave['wave_id'][:8]} ({wave['trigger']}) started "
                f"{_when(wave['started_at'])}: {wave['succeeded']} succeeded, "
                f"{wave['failed']} failed, {wave['skipped']} skipped, "
                f"{wave['cancelled']} cancelled"
            )
        )
    error = view.get("pipeline_error")
    if error:
        line = f":{error['line']}" if error.get("line") else ""
        where = f" ({error['file']}{line})" if error.get("file") else ""
        parts.append(plain(f"pipeline invalid{where}: {error['error']}", style="bold red"))
    planned = view.get("plan_error")
    if planned:
        parts.append(plain(f"wave not planned: {planned['error']}", style="bold red"))
    if not view.get("stages"):
        parts.append(Text("no stage events recorded", style="dim"))
    return Group(*parts)


def pipeline_stats(view: dict[str, Any]) -> RenderableType:
    """Per stage: runs, failures, durations, top triggers; waves per day."""
    table = Table(title="pipeline stages", title_justify="left", box=None, header_style="bold")
    for name in ("stage", "runs", "failed", "last", "took", "p50", "p95", "triggered by"):
        right = name in ("runs", "failed", "took", "p50", "p95")
        table.add_column(name, justify="right" if right else "left")
    for s in view["stages"]:
        triggers = ", ".join(f"{t['trigger']} x{t['count']}" for t in s["triggers"])
        table.add_row(
            plain(s["stage"]),
            str(s["runs"]),
            Text(str(s["failed"]), style="red" if s["failed"] else ""),
            _state(s["last_outcome"]),
            _seconds(s["last_duration"]),
            _seconds(s["p50"]),
            _seconds(s["p95"]),
            plain(triggers or "-"),
        )
    waves = view["waves"]
    by_trigger = ", ".join(f"{k} {v}" for k, v in waves["by_trigger"].items())
    days = ", ".join(f"{d['day'][5:]} {d['waves']}" for d in waves["by_day"])
    head = Table.grid(padding=(0, 2))
    head.add_row("waves", f"{waves['total']}" + (f" ({by_trigger})" if by_trigger else ""))
    head.add_row("per day", f"{waves['per_day']:g} over the last 7 days (UTC): {days}")
    top = ", ".join(f"{t['trigger']} x{t['count']}" for t in view["triggers"][:5])
    head.add_row("top triggers", plain(top or "-"))
    parts: list[RenderableType] = [head, Text(""), table]
    if not view["stages"]:
        parts.append(Text("no stage events recorded", style="dim"))
    return Group(*parts)


def watcher_stats(view: dict[str, Any]) -> RenderableType:
    """Totals, states, outcomes per action type, busiest watchers."""
    head = Table.grid(padding=(0, 2))
    head.add_row("watchers", str(view["total_watchers"]))
    head.add_row(
        "by state",
        ", ".join(f"{k} {v}" for k, v in view["watchers_by_state"].items()) or "-",
    )
    head.add_row(
        "watcher events", f"{view['total_events']} ({view['events_last_hour']} in the last hour)"
    )
    actions = Table(title="actions", title_justify="left", box=None, header_style="bold")
    for name in ("type", "total", "success", "failed", "suppressed"):
        actions.add_column(name, justify="left" if name == "type" else "right")
    for action, c in view["events_by_action"].items():
        actions.add_row(
            plain(action),
            str(c["total"]),
            Text(str(c["success"]), style="green"),
            Text(str(c["failed"]), style="red" if c["failed"] else ""),
            Text(str(c["suppressed"]), style="yellow" if c["suppressed"] else ""),
        )
    top = Table(title="busiest watchers", title_justify="left", box=None, header_style="bold")
    for name in ("id", "name", "job", "events"):
        top.add_column(name, justify="right" if name == "events" else "left")
    for w in view["top_watchers"]:
        top.add_row(plain(w["id"]), plain(w["name"]), plain(w["job"]), str(w["events"]))
    return Group(head, Text(""), actions, Text(""), top)


def watcher_history(view: dict[str, Any]) -> RenderableType:
    """Per watcher: state, counts of matches, actions and outcomes, last match."""
    table = Table(title="watcher history", title_justify="left", box=None, header_style="bold")
    for name in ("watcher", "name", "job", "state", "matches", "actions", "ok", "failed",
                 "suppressed", "last match"):  # fmt: skip
        table.add_column(name, overflow="fold")
    for wid, w in sorted(view.get("watchers", {}).items()):
        c = w["counts"]
        last = w["matches"][-1]["line"] if w["matches"] else ""
        state = "removed" if w["removed"] else w["state"]
        table.add_row(
            plain(wid), plain(w["name"]), plain(w["job"]), _state(state), str(c["matches"]),
            str(c["actions"]), str(c["succeeded"]), str(c["failed"]), str(c["suppressed"]),
            plain(_short(last, 40)),
        )  # fmt: skip
    return table


_RENDERERS: dict[str, Callable[[dict[str, Any]], RenderableType]] = {
    "pipeline_status": pipeline_status,
    "pipeline_stats": pipeline_stats,
    "watcher_stats": watcher_stats,
    "watcher_history": watcher_history,
}


def render_view(name: str, view: dict[str, Any]) -> RenderableType:
    """The rendering of projection ``name``'s view (JSON text for unknown ones)."""
    renderer = _RENDERERS.get(name)
    if renderer is None:
        import json

        from rich.json import JSON

        return JSON(json.dumps(view, default=str))
    return renderer(view)
