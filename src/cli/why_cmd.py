"""`pivot why STAGE`: why a stage last ran or was skipped, from the log."""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from pivot.cli.store_access import StoreOption, fail, open_store, store_errors

if TYPE_CHECKING:
    from pivot.events.store import EventStore
    from pivot.events.why import Explanation


def why(
    stage: Annotated[str, typer.Argument(help="The stage to explain.")],
    json_: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    store: StoreOption = None,
) -> None:
    """Why STAGE last ran or was skipped: its reasons, its wave, the change batch behind it.

    Follows correlation ids backwards through the log: the stage's last event
    -> its wave -> the detected changes (paths, time) that started the wave,
    and shows which changed paths are deps of the stage (or of an upstream
    stage that had to run first). A stage the log and the pipeline do not
    know is an error listing the known ones.

    Examples: `pivot why train`, `pivot why train --json | jq .cause.paths`.
    """
    from pivot.events.why import explain_from_store

    with store_errors():
        opened = open_store(store)
        try:
            answer = explain_from_store(stage, opened)
            if not answer.outcome:
                _no_events(stage, opened)
        finally:
            opened.close()
    if json_:
        sys.stdout.write(json.dumps(answer.as_dict()) + "\n")
        return
    _print(answer)


def _no_events(stage: str, store: EventStore) -> NoReturn:
    """The log never mentions ``stage``: not run yet (the pipeline has it) or unknown."""
    from pivot.cli.known_names import logged_names, pipeline_stages, unknown_message

    declared = pipeline_stages()
    if stage in declared:
        fail(f"stage {stage!r} has not run yet: the event log has no event about it")
    seen = logged_names(store, "stage")
    if stage in seen:  # named by a wave, but it never got to run
        fail(f"stage {stage!r} has no event of its own in the log yet")
    fail(unknown_message("stage", stage, declared + sorted(seen.difference(declared))))


def _print(a: Explanation) -> None:
    from rich.console import Console
    from rich.markup import escape

    from pivot.cli.event_render import event_style, format_time

    console = Console(highlight=False)
    style = event_style(f"stage.{a.outcome}") or "bold"
    line = (
        f"[bold]{escape(a.stage)}[/] [{style}]{a.outcome}[/] at {format_time(a.at)} (seq {a.seq})"
    )
    if a.detail:
        line += f": {escape(a.detail)}"
    console.print(line)
    if a.wave:
        console.print(
            f"  in wave {a.wave['wave_id'][:12]} (trigger: {escape(a.wave['trigger'])}, "
            f"started {format_time(a.wave['at'])}, seq {a.wave['seq']})"
        )
    if a.reasons:
        console.print("  queued because:")
        _print_reasons(console, a.reasons, a.upstream, depth=2, seen={a.stage})
    elif a.outcome in ("succeeded", "failed", "running"):
        console.print("  [dim](no queued reasons recorded for this run)[/]")
    cause = a.cause
    if cause:
        more = f" of {cause['count']}" if cause["count"] > len(cause["paths"]) else ""
        console.print(
            f"  caused by {cause['kind']} changes detected at {format_time(cause['at'])} "
            f"(seq {cause['seq']}, batch {cause['batch_id'][:12]}): "
            f"{len(cause['paths'])}{more} paths"
            + (" [yellow](overflow: everything rebuilt)[/]" if cause["overflow"] else "")
        )
        for path in cause["paths"]:
            mark = "  [green]<- dep[/]" if path in cause["via_deps"] else ""
            console.print(f"    {escape(path)}{mark}")
    elif a.wave:
        console.print(f"  the wave was started by: {escape(a.wave['trigger'])} (no change batch)")
    chain = " -> ".join(f"{link['type']} #{link['seq']}" for link in a.chain)
    console.print(f"  [dim]chain: {chain}[/]")


def register(app: typer.Typer) -> None:
    """Add `pivot why`."""
    app.command("why")(why)


def _print_reasons(
    console: Any, reasons: list[str], upstream: dict[str, list[str]], depth: int, seen: set[str]
) -> None:
    """Each reason; ``upstream will run: X`` followed down to X's own reasons."""
    from rich.markup import escape

    for reason in reasons:
        console.print(f"{'  ' * depth}{escape(reason)}")
        name = reason.removeprefix("upstream will run: ")
        if name != reason and name in upstream and name not in seen:
            console.print(f"{'  ' * (depth + 1)}[dim]{escape(name)} ran because:[/]")
            _print_reasons(console, upstream[name], upstream, depth + 2, seen | {name})
