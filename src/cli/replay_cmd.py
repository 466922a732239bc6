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
    from pivot.projections.replay import Verdict


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
    from pivot.projections.replay import replay_until
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
            if until.strip().isdigit():
                until_seq = int(until)
            else:
                until_time = parse_time(until, time.time())
        opened = open_store(store)
        try:
            if verify:
                if until is not None:
                    fail("--verify compares the stored projections as they are; drop --until")
                verdicts = verify_projections(opened, names)
            else:
                result = replay_until(opened, names, until_seq=until_seq, until_time=until_time)
        finally:
            opened.close()
    if verify:
        _report_verify(verdicts, json_)
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


def _report_verify(checked: list[Verdict], as_json: bool) -> None:
    bad = [v for v in checked if not v.ok]
    if as_json:
        sys.stdout.write(
            json.dumps(
                {
                    "ok": not bad,
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
            )
            + "\n"
        )
    else:
        for v in checked:
            print(f"{v.name}: {v.status}" + (f" (position {v.position})" if v.position else ""))
            for d in v.differences:
                echo(f"  {d}")
    if bad:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add `pivot replay`."""
    app.command("replay")(replay)
