"""Commands: `pivot events` (list, follow, export, import, catalogue), and via
their own modules `pivot replay`, `pivot why`, `pivot stats`.

Imports of the store happen inside the commands, so `pivot --help` and
other command groups do not pay for them.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pivot.cli.store_access import StoreOption, fail, open_store, store_errors

if TYPE_CHECKING:
    from pivot.events.query import EventQuery
    from pivot.events.store import EventStore

FOLLOW_POLL_SECONDS = 0.2

events_app = typer.Typer(
    help="Show the event log: every state transition pivot recorded.",
    invoke_without_command=True,
    rich_markup_mode="rich",
)

TIME_HELP = "now, 2h, 15m, 1h30m, 3d, today, yesterday 14:05, 14:05, 2026-11-23T14:05, @EPOCH"


@events_app.callback()
def list_events(  # noqa: PLR0917 - typer passes options by keyword; ctx first
    ctx: typer.Context,
    type_: Annotated[
        list[str] | None,
        typer.Option(
            "--type",
            "-t",
            metavar="TYPE",
            help="Only these event types; repeat or comma-separate; globs work "
            "(--type 'stage.*'). See `pivot events catalogue`.",
            show_default=False,
        ),
    ] = None,
    stage: Annotated[
        str | None,
        typer.Option(help="Only events about this stage.", metavar="STAGE", show_default=False),
    ] = None,
    watcher: Annotated[
        str | None,
        typer.Option(help="Only events of this watcher id.", metavar="ID", show_default=False),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            help=f"Only events at or after TIME ({TIME_HELP}).", metavar="TIME", show_default=False
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Only events at or before TIME.", metavar="TIME", show_default=False),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            min=1,
            help="Show only the newest N matching events.",
            show_default=False,
        ),
    ] = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow",
            "-f",
            help="Keep running and show new events as they are appended (by any process).",
        ),
    ] = False,
    json_: Annotated[
        bool, typer.Option("--json", help="One JSON object per line instead of a table.")
    ] = False,
    store: StoreOption = None,
) -> None:
    """Show recorded events, oldest first, as a coloured table or JSON lines.

    Examples:

    \b
      pivot events --type 'stage.*' --since 2h
      pivot events --stage train --json | jq .data.error
      pivot events --follow            # like tail -f, Ctrl-C to stop
    """
    if ctx.invoked_subcommand is not None:
        if any((type_, stage, watcher, since, until, limit, follow, json_)):
            fail("give the listing options after `pivot events`, not before a subcommand")
        ctx.obj = store
        return
    with store_errors():
        query = _query(type_ or [], stage, watcher, since, until)
        opened = open_store(store)
        try:
            if follow:  # waiting forever for a mistyped name helps nobody
                _check_names(opened, stage, watcher)
            if _show(opened, query, limit, follow, json_) == 0:
                _check_names(opened, stage, watcher)
        except KeyboardInterrupt:
            pass
        except BrokenPipeError:  # `pivot events | head`
            sys.stderr.close()
        finally:
            opened.close()


def _query(
    types: list[str], stage: str | None, watcher: str | None, since: str | None, until: str | None
) -> EventQuery:
    from pivot.events.base import event_types
    from pivot.events.query import EventQuery, UnknownEventTypeError, expand_types
    from pivot.events.timespec import parse_time

    now = time.time()
    try:
        chosen = expand_types(types, event_types())
    except UnknownEventTypeError as exc:
        fail(str(exc))
    return EventQuery(
        types=chosen,
        stage=stage,
        watcher=watcher,
        since=parse_time(since, now) if since else None,
        until=parse_time(until, now) if until else None,
    )


def _check_names(store: EventStore, stage: str | None, watcher: str | None) -> None:
    """A --stage or --watcher that neither the log nor the pipeline knows is an error."""
    from pivot.cli.known_names import logged_names, pipeline_stages
    from pivot.names import USAGE_EXIT, unknown_name

    if stage is not None:
        seen = logged_names(store, "stage")
        if stage not in seen:
            declared = pipeline_stages()
            if stage not in declared:
                known = declared + sorted(seen.difference(declared))
                fail(unknown_name("stage", stage, known), USAGE_EXIT)
    if watcher is not None:
        seen = logged_names(store, "watcher_id")
        if watcher not in seen:
            hint = "; see `pivot watchers list`"
            fail(unknown_name("watcher", watcher, sorted(seen), hint))


Row = tuple[int, str, dict[str, Any]]


def _rows(store: EventStore, query: EventQuery, after: int, until: int | None) -> Iterator[Row]:
    from pivot.events.base import EventDecodeError, decode

    for seq, type_name, version, data in store.read_payloads(after, types=query.types, until=until):
        try:
            fields = decode(type_name, version, data).to_dict()
        except EventDecodeError as exc:  # e.g. written by a newer pivot: show as stored
            fields = {**data, "undecodable": str(exc)}
        if query.matches(fields):
            yield seq, type_name, fields


def _show(
    store: EventStore, query: EventQuery, limit: int | None, follow: bool, as_json: bool
) -> int:
    """Print the matching events (and, with ``follow``, new ones); how many were shown."""
    end = store.last_seq()
    after = 0
    if limit is not None and query.only_types and not query.types:
        after = max(0, end - limit)  # unfiltered: the newest N are simply the last N seqs
    elif query.since is not None:
        after = store.seq_at(query.since)  # skip what is surely older
    rows: Iterator[Row] | deque[Row] = _rows(store, query, after, end)
    if limit is not None:
        rows = deque(rows, maxlen=limit)
    printer = _Printer(as_json)
    printer.print(rows, header=True)
    position = end
    while follow:
        time.sleep(FOLLOW_POLL_SECONDS)
        newest = store.last_seq()
        if newest > position:
            printer.print(_rows(store, query, position, newest), header=False)
            position = newest
    return printer.shown


class _Printer:
    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.printed_header = False
        self.shown = 0

    def print(self, rows: Iterator[Row] | deque[Row], header: bool) -> None:
        if self.as_json:
            from pivot.events.query import json_line, to_json

            out = sys.stdout
            for seq, type_name, fields in rows:
                out.write(json_line(to_json(seq, type_name, fields)))
                out.write("\n")
                self.shown += 1
            out.flush()
            return
        from pivot.cli.event_render import event_table
        from pivot.terminal import console as make_console

        batch = list(rows)
        self.shown += len(batch)
        if batch:
            make_console().print(event_table(batch, header=header or not self.printed_header))
            self.printed_header = True
        sys.stdout.flush()


@events_app.command("export")
def export_events(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="Where to write: a .jsonl path, or - for stdout.")],
    skip_damaged: Annotated[
        bool,
        typer.Option(
            "--skip-damaged",
            help="Leave out events that do not read (saying which), instead of stopping.",
        ),
    ] = False,
    store: StoreOption = None,
) -> None:
    """Write the whole log as JSON lines, exactly as stored (see `pivot events import`).

    To save a damaged log: `pivot events export --skip-damaged saved.jsonl`, move
    the log aside, then `pivot events import saved.jsonl`.
    """
    from pivot.events.transfer import export_jsonl
    from pivot.terminal import echo

    damaged: list[int] = []

    def on_damaged(seq: int, message: str) -> None:
        damaged.append(seq)
        echo(f"skipped: {message.split(';', maxsplit=1)[0]}", err=True)

    skip = on_damaged if skip_damaged else None
    with store_errors(), open_store(store or ctx.obj) as opened:
        if file == "-":
            count = export_jsonl(opened, sys.stdout, skip)
        else:
            target = Path(file)
            partial = target.with_name(target.name + ".partial")
            try:
                with partial.open("w", encoding="utf-8") as out:
                    count = export_jsonl(opened, out, skip)
                partial.replace(target)
            except OSError as exc:
                fail(f"cannot write {file}: {exc.strerror or exc}")
    left_out = f" ({len(damaged)} damaged left out)" if damaged else ""
    print(f"exported {count} events to {file}{left_out}", file=sys.stderr)


@events_app.command("import")
def import_events(
    ctx: typer.Context,
    file: Annotated[str, typer.Argument(help="A file written by `pivot events export`, or -.")],
    store: StoreOption = None,
) -> None:
    """Load an exported log into an EMPTY store, keeping every seq (all or nothing).

    Example: pivot events --store copy.db import backup.jsonl
    """
    from pivot.events.transfer import ImportFileError, NonEmptyStoreError, import_jsonl

    with store_errors():
        opened = open_store(store or ctx.obj, create=True)
        try:
            if file == "-":
                count = import_jsonl(opened, sys.stdin, "<stdin>")
            else:
                try:
                    with Path(file).open(encoding="utf-8") as lines:
                        count = import_jsonl(opened, lines, file)
                except OSError as exc:
                    fail(f"cannot read {file}: {exc.strerror or exc}")
                except UnicodeDecodeError as exc:
                    fail(f"{file}: not UTF-8 text ({exc.reason} at byte {exc.start})")
        except (ImportFileError, NonEmptyStoreError) as exc:
            fail(str(exc))
        finally:
            opened.close()
    print(f"imported {count} events into {opened.location}", file=sys.stderr)


@events_app.command("catalogue")
def catalogue(
    write: Annotated[
        Path | None,
        typer.Option(help="Write the Markdown page to this file.", show_default=False),
    ] = None,
    check: Annotated[
        Path | None,
        typer.Option(
            help="Exit 1 if this file differs from the generated page.", show_default=False
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="The catalogue as JSON.")] = False,
) -> None:
    """Every event type with its fields, generated from the event classes.

    docs/events.md is this command's output: pivot events catalogue --write docs/events.md
    """
    import json

    from pivot.events.catalogue import catalogue_data, pivot_event_types, render_markdown

    types = pivot_event_types()
    if json_:
        print(json.dumps(catalogue_data(types), indent=2))
        return
    page = render_markdown(types)
    if check is not None:
        current = check.read_text(encoding="utf-8") if check.is_file() else ""
        if current != page:
            fail(f"{check} is stale; regenerate it: pivot events catalogue --write {check}")
        print(f"{check} is up to date ({len(types)} event types)")
        return
    if write is not None:
        write.write_text(page, encoding="utf-8")
        print(f"wrote {write} ({len(types)} event types)", file=sys.stderr)
        return
    sys.stdout.write(page)


def register(app: typer.Typer) -> None:
    """Add `events` to the `pivot` app (`replay`, `why`, `stats` have modules of their own)."""
    app.add_typer(events_app, name="events")
