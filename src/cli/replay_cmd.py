"""`pivot replay`: projections rebuilt from the log as of a point; `--verify`."""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated

import typer

from pivot.cli.store_access import StoreOption, fail, open_store, store_errors
from pivot.terminal import echo

if TYPE_CHECKING:
    from pivot.projections.replay import LogCheck, Verdict


def replay(
    until: Annotated[
        str | None,
        typer.Option(
            metavar="SEQ|TIME",
            help="Stop at this seq (a number) or TIME (2h, yesterday 14:05, "
            "2026-11-23T14:05, ...). Default: the end of the log.",
            show_default=False,
        ),
    ] = None,
    projection: Annotated[
        list[str] | None,
        typer.Option(
            "--projection",
            "-p",
            help="Only this projection (repeatable): pipeline_status, pipeline_stats, "
            "watcher_history, watcher_stats.",
            show_default=False,
        ),
    ] = None,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify",
            help="Rebuild each stored projection and compare; exit 1 on any difference.",
        ),
    ] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    store: StoreOption = None,
) -> None:
    """Rebuild projections from the log, as they were at --until.

    Examples:

    \b
      pivot replay --until 'yesterday 14:05' --projection watcher_stats
      pivot replay --until 1200 --json
      pivot replay --verify     # stored projections == rebuilt from the log?
    """
    from pivot.events.timespec import parse_time
    from pivot.projections import UnknownProjectionError, get_projection
    from pivot.projections.replay import check_log, replay_until
    from pivot.projections.replay import verify as verify_projections

    names = projection or None
    try:
        for name in names or ():
            get_projection(name)
    except UnknownProjectionError as exc:
        fail(str(exc))
    with store_errors():
        until_seq = until_time = None
        if until is not None:
            if until.isascii() and until.strip().isdigit():
                until_seq = int(until)
            else:
                until_time = parse_time(until, time.time())
        with open_store(store) as opened:
            if verify:
                if until is not None:
                    fail("--verify compares the stored projections as they are; drop --until")
                log = check_log(opened)
                verdicts = verify_projections(opened, names) if log.ok else []
            else:
                result = replay_until(opened, names, until_seq=until_seq, until_time=until_time)
    if verify:
        _report_verify(log, verdicts, json_)
        return
    if json_:
        document = {"seq": result.seq, "at": result.at, "projections": result.views}
        sys.stdout.write(json.dumps(document, default=str) + "\n")
        return
    from rich.text import Text

    from pivot.cli.event_render import format_time
    from pivot.cli.projection_render import render_view
    from pivot.terminal import console as make_console

    console = make_console()
    console.print(Text(f"as of seq {result.seq} ({format_time(result.at)})", style="bold"))
    for name, view in result.views.items():
        console.print()
        console.print(render_view(name, view))


def _report_verify(log: LogCheck, checked: list[Verdict], as_json: bool) -> None:
    """Say what --verify checked and found; exit 1 on an unreadable event or a difference."""
    bad = [v for v in checked if not v.ok]
    ok = log.ok and not bad
    if as_json:
        document = {
            "ok": ok,
            "log": {"events": log.events, "last_seq": log.last_seq, "error": log.error},
            "projections": [
                {
                    "name": v.name,
                    "status": v.status,
                    "position": v.position,
                    "differences": v.differences,
                }
                for v in checked
            ],
        }
        sys.stdout.write(json.dumps(document) + "\n")
    else:
        for line in verify_lines(log, checked):
            echo(line)
    if not ok:
        raise typer.Exit(1)


def verify_lines(log: LogCheck, checked: list[Verdict]) -> list[str]:
    """The text report of --verify: the log, each projection, then what was verified."""
    if not log.ok:
        return [
            f"log: FAILED after {log.events} events: {log.error}",
            "projections not checked: the log does not read to its end",
        ]
    lines = [f"log: all {log.events} events decode (up to seq {log.last_seq})"]
    for v in checked:
        if v.status == "not stored":
            lines.append(
                f"{v.name}: not stored (folded from the log up to seq {v.position} without "
                "error; nothing stored to compare)"
            )
        elif v.status == "ok":
            lines.append(f"{v.name}: ok (position {v.position}; equals its rebuild from the log)")
        else:
            lines.append(
                f"{v.name}: {v.status}" + (f" (position {v.position})" if v.position else "")
            )
        lines.extend(f"  {d}" for d in v.differences)
    compared = sum(1 for v in checked if v.status in ("ok", "differs"))
    differ = sum(1 for v in checked if v.status == "differs")
    folded = sum(1 for v in checked if v.status == "not stored")
    verdict = f"{differ} differ" if differ else "verified"
    lines.append(
        f"{verdict}: {log.events} events read; {compared} stored projection(s) compared with "
        f"their rebuild, {folded} not stored (folded only)"
    )
    return lines


def register(app: typer.Typer) -> None:
    """Add `pivot replay`."""
    app.command("replay")(replay)
