"""`pivot stats`: watcher stats read from the stored projection (no log scan)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from pivot.cli.store_access import StoreOption, open_store, store_errors


def stats(
    json_: Annotated[
        bool, typer.Option("--json", help="Print the stats as one JSON object.")
    ] = False,
    store: StoreOption = None,
) -> None:
    """Watcher stats: totals, states, action outcomes, busiest watchers.

    Read from the stored watcher_stats projection, which only folds the
    events appended since it was last brought up to date, so it stays fast
    on a log of millions of events. Fields of --json: total_watchers,
    watchers_by_state, total_events, events_by_action {type: {total, success,
    failed, suppressed, pending}}, events_last_hour, top_watchers [{id, name,
    job, events}].

    Examples: `pivot stats`, `pivot stats --json | jq .events_by_action`.
    """
    from pivot.projections import open_projection

    with store_errors():
        opened = open_store(store)
        try:
            live = open_projection(opened, "watcher_stats")
            live.catch_up()
            view = live.view()
        finally:
            opened.close()
    if json_:
        import json

        sys.stdout.write(json.dumps(view) + "\n")
        return
    from pivot.cli.projection_render import watcher_stats
    from pivot.terminal import console as make_console

    make_console().print(watcher_stats(view))


def register(app: typer.Typer) -> None:
    """Add `pivot stats`."""
    app.command("stats")(stats)
