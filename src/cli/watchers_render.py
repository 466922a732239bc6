"""How a single watcher and its metrics look in a terminal."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.table import Table
from rich.text import Text

from pivot.cli.event_render import format_time
from pivot.terminal import console as make_console
from pivot.terminal import plain

__all__ = ["dry_run_report", "metric_table", "watcher_detail"]

_STATE_STYLE = {
    "active": "green",
    "paused": "yellow",
    "triggered": "cyan",
    "completed": "dim",
    "disabled": "bold red",
    "removed": "dim",
}


def watcher_detail(watcher_id: str, entry: dict[str, Any]) -> None:
    """Definition, state, captures, then the recent matches and actions."""
    console = make_console()
    d = entry["definition"]
    state = "removed" if entry.get("removed") else entry.get("state", "active")
    head = Table.grid(padding=(0, 2))
    head.add_row("id", plain(watcher_id))
    head.add_row("name", plain(d["name"]))
    head.add_row("job", plain(f"{entry.get('job', '')} on {entry.get('host', '')}"))
    head.add_row("state", Text(state, style=_STATE_STYLE.get(state, "")))
    head.add_row("pattern", plain(d["pattern"]))
    if d.get("condition"):
        head.add_row("condition", plain(d["condition"]))
    head.add_row("actions", ", ".join(a["type"] for a in d["actions"]))
    c = entry.get("counts", {})
    if c:
        head.add_row(
            "counts",
            f"{c['matches']} matches, {c['actions']} actions: {c['succeeded']} ok, "
            f"{c['failed']} failed, {c['suppressed']} suppressed",
        )
    if entry.get("variables"):
        head.add_row(
            "captures", plain(", ".join(f"{k}={v}" for k, v in entry["variables"].items()))
        )
    console.print(head)
    today = dt.date.today()
    if entry.get("matches"):
        t = Table(title="recent matches", title_justify="left", box=None, header_style="bold")
        for col in ("time", "line", "captures", "condition"):
            t.add_column(col, overflow="fold")
        for m in entry["matches"][-10:]:
            t.add_row(
                format_time(m["at"], today),
                plain(m["line"][:120]),
                plain(", ".join(f"{k}={v}" for k, v in m["captures"].items())),
                "yes" if m["condition"] else Text("no", style="yellow"),
            )
        console.print(t)
    if entry.get("actions"):
        t = Table(title="recent actions", title_justify="left", box=None, header_style="bold")
        for col in ("time", "action", "result", "detail"):
            t.add_column(col, overflow="fold")
        for a in entry["actions"][-10:]:
            style = {
                "succeeded": "green",
                "failed": "red",
                "suppressed": "yellow",
                "interrupted": "yellow",
            }
            t.add_row(
                format_time(a["at"], today),
                a["type"],
                Text(a["result"], style=style.get(a["result"], "")),
                plain(a["detail"][:160]),
            )
        console.print(t)


def metric_table(series: dict[str, list[tuple[float, float]]]) -> None:
    """One table per series: time and value, with count, min, max and last."""
    console = make_console()
    today = dt.date.today()
    for name, points in sorted(series.items()):
        values = [v for _, v in points]
        t = Table(
            title=f"{name}: {len(values)} samples, min {min(values):g}, max {max(values):g}, "
            f"last {values[-1]:g}",
            title_justify="left",
            box=None,
            header_style="bold",
        )
        t.add_column("time")
        t.add_column("value", justify="right")
        for at, v in points[-20:]:
            t.add_row(format_time(at, today), f"{v:g}")
        console.print(t)


def dry_run_report(result: dict[str, Any]) -> None:
    """What `pivot watchers test` found, match by match, then timer ticks and job end."""
    console = make_console()
    matches = result["matches"]
    head = Text()
    head.append(plain(result["watcher"], "bold"))
    head.append(
        f": {result['lines']} lines, {len(matches)} matches, final state {result['final_state']}"
    )
    console.print(head)
    for w in result.get("warnings", []):
        console.print(Text("  warning: ", style="yellow") + plain(f"{w['field']}: {w['message']}"))
        for i, line in enumerate(str(w["fix"]).splitlines()):
            console.print(plain(("    fix: " if i == 0 else "         ") + line))
    for m in matches:
        console.print(Text(f"line {m['line_number']}: ", style="magenta") + plain(m["line"][:200]))
        if m["captures"]:
            shown = ", ".join(f"{k}={v!r}" for k, v in m["captures"].items())
            console.print(plain("  captures: " + shown))
        _outcome(console, m)
    for t in result.get("timer_ticks", []):
        console.print(Text(f"timer tick {t['tick']}", style="cyan"))
        _outcome(console, t)
    for a in result["job_end_actions"]:
        console.print(
            Text("at job end", style="cyan") + plain(f": would run {a['type']} {a['params']}")
        )


def _outcome(console: Any, m: dict[str, Any]) -> None:
    for a in m["actions"]:
        why = a["params"].get("error") or a["params"].get("refused")
        if why:
            console.print(Text("  would fail ", style="red") + plain(f"{a['type']}: {why}"))
            continue
        console.print(Text("  would run ", style="green") + plain(f"{a['type']} {a['params']}"))
    for reason in m["suppressed"]:
        console.print(Text("  suppressed ", style="yellow") + plain(reason))
    held = m.get("held_back", "")
    if held:
        console.print(Text("  ") + plain(held, "yellow"))
