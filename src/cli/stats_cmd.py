"""`pivot stats`: pipeline and watcher stats read from stored projections (no log scan)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pivot.cli.store_access import StoreOption, open_store, store_errors

_SECTIONS = (("pipeline", "pipeline_stats"), ("watchers", "watcher_stats"))


def stats(
    json_: Annotated[
        bool, typer.Option("--json", help="Print the stats as one JSON object.")
    ] = False,
    store: StoreOption = None,
) -> None:
    """Pipeline and watcher stats: runs, failures, durations, triggers.

    Read from the stored pipeline_stats and watcher_stats projections, which
    only fold the events appended since they were last brought up to date,
    so this stays fast on a log of millions of events.

    Per stage: runs, failures, the last outcome and duration, p50 and p95 of
    its last 100 successful runs, and what triggers it most (code, params,
    which dep, which upstream stage). Waves in all, by trigger and per (UTC)
    day over the last 7 days. For watchers: totals, states, action outcomes,
    the busiest watchers.

    --json prints {"pipeline": {stages [{stage, runs, succeeded, failed,
    cancelled, skipped, last_outcome, last_at, last_duration, p50, p95,
    triggers [{trigger, count}]}], waves {total, by_trigger, by_day [{day,
    waves}], per_day}, triggers}, "watchers": {total_watchers,
    watchers_by_state, total_events, events_by_action {type: {total,
    success, failed, suppressed, pending}}, events_last_hour, top_watchers
    [{id, name, job, events}]}}.

    Examples:

    \b
      pivot stats
      pivot stats --json | jq '.pipeline.stages[] | {stage, p95}'
    """
    from pivot.projections import open_projection

    with store_errors(), open_store(store) as opened:
        views = {}
        for key, name in _SECTIONS:
            live = open_projection(opened, name)
            live.catch_up()
            views[key] = live.view()
    if json_:
        import json

        sys.stdout.write(json.dumps(views) + "\n")
        return
    from rich.console import Group
    from rich.text import Text

    from pivot.cli.projection_render import pipeline_stats, watcher_stats
    from pivot.terminal import console as make_console

    make_console().print(
        Group(
            pipeline_stats(views["pipeline"]),
            Text(""),
            watcher_stats(views["watchers"]),
        )
    )


def register(app: typer.Typer) -> None:
    """Add `pivot stats`."""
    app.command("stats")(stats)
