"""`pivot watchers ...`: define, inspect, control and run job watchers.

State, history and stats are read from the event log's projections
(``watcher_history``, ``watcher_stats``); commands that change something
append events, which a running ``pivot watchers run`` or ``pivot watch``
picks up on its next poll cycle.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pivot.cli.store_access import StoreOption, fail, open_store, store_errors

if TYPE_CHECKING:
    from pivot.events.store import EventStore
    from pivot.jobs.config import Config

watchers_app = typer.Typer(
    help="Job watchers: tail a SLURM job's output, match a regex, act "
    "(cancel, resubmit, notify, run a command, store a metric...).\n\n"
    "Define a watcher in YAML (see docs/watchers.md), try it on a log with "
    "`pivot watchers test w.yaml --log job.out`, attach it with "
    "`pivot watchers add w.yaml --job 1234`, and keep `pivot watchers run` "
    "(or `pivot watch`) running.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts).")]
IdArg = Annotated[str, typer.Argument(help="Watcher id (or a unique prefix of it).")]
CheckOption = Annotated[
    bool, typer.Option(help="Ask the host whether it is reachable and knows the job (warnings).")
]


def emit(obj: Any) -> None:
    """One JSON document on stdout."""
    sys.stdout.write(json.dumps(obj, default=str) + "\n")


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Mistakes in files, config or arguments: one line on stderr, exit 1."""
    from pivot.jobs.config import ConfigError
    from pivot.jobs.definition import DefinitionError
    from pivot.jobs.manage import ManageError
    from pivot.jobs.patterns import PatternError
    from pivot.jobs.slurm import ScriptError

    with store_errors():
        try:
            yield
        except (DefinitionError, ConfigError, ManageError, PatternError, ScriptError) as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


def load_config() -> Config:
    """The project's configuration (pivot.toml over ~/.config/pivot/config.toml)."""
    from pivot.jobs.config import load_config as load

    return load()


def _read_definitions(path: Path) -> list[Any]:
    from pivot.jobs.definition import parse_watchers

    return parse_watchers(path.read_text(encoding="utf-8"), str(path))


def _history(store: EventStore) -> dict[str, dict[str, Any]]:
    from pivot.projections import open_projection

    live = open_projection(store, "watcher_history")
    live.catch_up()
    watchers: dict[str, dict[str, Any]] = live.state["watchers"]
    return watchers


def _one(store: EventStore, watcher_id: str) -> tuple[str, dict[str, Any]]:
    from pivot.jobs.manage import find, load_book

    ws = find(load_book(store), watcher_id)
    entry = dict(_history(store).get(ws.watcher_id, {}))
    entry["definition"] = ws.definition.to_dict()
    entry["variables"] = dict(ws.variables)
    return ws.watcher_id, entry


@watchers_app.command("add")
def add(  # noqa: PLR0917 - typer passes options by keyword
    file: Annotated[
        Path | None,
        typer.Argument(help="Watcher YAML: one watcher or a list.", show_default=False),
    ] = None,
    job: Annotated[str, typer.Option("--job", help="Slurm job id to watch.")] = "",
    host: Annotated[
        str, typer.Option(help="Host from [hosts.NAME] in pivot.toml; `local` runs Slurm here.")
    ] = "local",
    template: Annotated[
        str | None,
        typer.Option(help="A built-in template instead of FILE (`pivot watchers templates`).",
                     show_default=False),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="A template parameter: --set NAME=VALUE (repeatable).",
                     show_default=False),
    ] = None,
    check: CheckOption = True,
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:  # fmt: skip
    """Attach the watchers in FILE (or a --template) to a job; prints each new watcher's id.

    The file is validated first (unknown keys, bad values, patterns RE2
    cannot run, conditions outside the allowed language are errors with
    the file and line); nothing is attached unless all of it is valid.
    What would only fail when the watcher fires (a program off the
    allowlist, shell syntax, no SMTP server, a job Slurm does not know, a
    host that cannot be reached) is a warning on stderr, with the fix.
    """
    from pivot.cli.watchers_reuse import parse_sets, warn
    from pivot.jobs.advice import describe, probe_job, static_warnings
    from pivot.jobs.manage import add_watchers

    if not job:
        fail("--job is required: the Slurm job id to watch")
    if (file is None) == (template is None):
        fail("give a watcher FILE or --template NAME (one of them)")
    if set_ and template is None:
        fail("--set fills a --template's parameters")
    with user_errors():
        if template is not None:
            from pivot.jobs.templates import TemplateError, get_template

            try:
                definitions = [get_template(template).render(parse_sets(set_ or []))]
            except TemplateError as exc:
                fail(str(exc))
        else:
            assert file is not None
            definitions = _read_definitions(file)
        config = load_config()
        config.host(host)
        with open_store(store, create=True) as opened:
            ids = add_watchers(opened, definitions, job, host)
        found = [(d.name, w) for d in definitions for w in static_warnings(d, config)]
        if check:
            found += [("", w) for w in probe_job(config, job, host)]
    if json_:
        emit(
            {
                "watchers": [
                    {"id": i, "name": d.name, "job": job, "host": host}
                    for i, d in zip(ids, definitions, strict=True)
                ],
                "warnings": [{"watcher": n, **w.to_json()} for n, w in found],
            }
        )
        return
    for name, w in found:
        warn(describe([w], watcher=name))
    for i in ids:
        print(i)


@watchers_app.command("list")
def list_(
    all_: Annotated[bool, typer.Option("--all", help="Include removed watchers.")] = False,
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Every watcher: id, name, job, host, state, matches and action outcomes."""
    with user_errors(), open_store(store) as opened:
        watchers = _history(opened)
    rows = {
        wid: w for wid, w in sorted(watchers.items()) if all_ or not w.get("removed", False)
    }  # fmt: skip
    if json_:
        emit(
            [
                {"id": wid, "name": w["name"], "job": w["job"], "host": w["host"],
                 "state": "removed" if w["removed"] else w["state"], "counts": w["counts"]}
                for wid, w in rows.items()
            ]
        )  # fmt: skip
        return
    if not rows:
        print("no watchers (add one with `pivot watchers add FILE.yaml --job ID`)")
        return
    from pivot.cli.projection_render import watcher_history
    from pivot.terminal import console as make_console

    make_console().print(watcher_history({"watchers": rows}))


@watchers_app.command("show")
def show(watcher_id: IdArg, json_: JsonOption = False, store: StoreOption = None) -> None:
    """One watcher: its definition, state, captures, recent matches and actions."""
    with user_errors(), open_store(store) as opened:
        wid, entry = _one(opened, watcher_id)
    if json_:
        emit({"id": wid, **entry})
        return
    from pivot.cli.watchers_render import watcher_detail

    watcher_detail(wid, entry)


def _change(action: str, watcher_id: str, store: str | None, json_: bool) -> None:
    from pivot.jobs import manage

    fn = {"pause": manage.pause, "resume": manage.resume, "rm": manage.remove}[action]
    with user_errors(), open_store(store) as opened:
        wid = fn(opened, watcher_id)
    done = {"pause": "paused", "resume": "resumed", "rm": "removed"}[action]
    if json_:
        emit({"id": wid, "result": done})
    else:
        print(f"{wid} {done}")


@watchers_app.command("pause")
def pause(watcher_id: IdArg, json_: JsonOption = False, store: StoreOption = None) -> None:
    """Pause a watcher: it keeps reading (no line is lost) but does not act."""
    _change("pause", watcher_id, store, json_)


@watchers_app.command("resume")
def resume(watcher_id: IdArg, json_: JsonOption = False, store: StoreOption = None) -> None:
    """Resume a paused watcher."""
    _change("resume", watcher_id, store, json_)


@watchers_app.command("rm")
def rm(watcher_id: IdArg, json_: JsonOption = False, store: StoreOption = None) -> None:
    """Remove a watcher. Its history stays in the event log."""
    _change("rm", watcher_id, store, json_)


@watchers_app.command("events")
def events(
    watcher_id: Annotated[
        str | None, typer.Argument(help="Only this watcher (id or prefix).", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="Newest N events.")] = 50,
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """The watchers' events (matches, actions and results, state changes), oldest first."""
    from collections import deque

    from pivot.events.base import event_types
    from pivot.events.query import to_json

    with user_errors(), open_store(store) as opened:
        wanted = ""
        if watcher_id is not None:
            wanted, _ = _one(opened, watcher_id)
        types = sorted(
            name
            for name, cls in event_types().items()
            if "watcher_id" in getattr(cls, "__dataclass_fields__", {})
        )
        rows: deque[tuple[int, str, dict[str, Any]]] = deque(maxlen=limit)
        names: dict[str, str] = {}
        for raw in opened.read_raw(types=types):
            wid = str(raw.data.get("watcher_id", ""))
            if raw.type in ("watcher.created", "watcher.edited"):
                names[wid] = str(raw.data.get("name", ""))
            if not wanted or wid == wanted:
                # The watcher's name (as it was then) with every event, not just its id.
                rows.append((raw.seq, raw.type, {"watcher_name": names.get(wid, ""),
                                                 **raw.data}))  # fmt: skip
    if json_:
        emit([to_json(seq, t, fields) for seq, t, fields in rows])
        return
    if not rows:
        print("no watcher events yet")
        return
    from pivot.cli.event_render import event_table
    from pivot.terminal import console as make_console

    make_console().print(event_table(rows))


@watchers_app.command("stats")
def stats(json_: JsonOption = False, store: StoreOption = None) -> None:
    """Totals over all watchers: states, action outcomes, busiest watchers."""
    import time

    from pivot.projections import open_projection

    with user_errors(), open_store(store) as opened:
        live = open_projection(opened, "watcher_stats")
        live.catch_up()
        view = live.projection.view(live.state, time.time())
    if json_:
        emit(view)
        return
    from pivot.cli.projection_render import watcher_stats
    from pivot.terminal import console as make_console

    make_console().print(watcher_stats(view))


@watchers_app.command("metrics")
def metrics(
    watcher_id: IdArg,
    name: Annotated[str | None, typer.Option(help="Only this series.", show_default=False)] = None,
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """The numeric series a watcher stored with `store_metric`, by name."""
    from pivot.events.watchers import MetricStored

    with user_errors(), open_store(store) as opened:
        wid, _ = _one(opened, watcher_id)
        series: dict[str, list[tuple[float, float]]] = {}
        for raw in opened.read_raw(types=[MetricStored.TYPE]):
            d = raw.data
            if d.get("watcher_id") == wid and (name is None or d.get("name") == name):
                series.setdefault(str(d["name"]), []).append((float(d["at"]), d["value"]))
    if json_:
        emit({"id": wid, "series": {k: [{"at": a, "value": v} for a, v in s]
                                    for k, s in series.items()}})  # fmt: skip
        return
    if not series:
        print(f"watcher {wid} stored no metrics yet")
        return
    from pivot.cli.watchers_render import metric_table

    metric_table(series)
