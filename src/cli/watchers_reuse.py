"""`pivot watchers templates | copy | edit | export`: reuse watchers across jobs.

Templates come from :mod:`pivot.jobs.templates` (the catalogue the web page
shows too); `copy` attaches a watcher's definition to another job; `export`
prints YAML that `pivot watchers add` accepts back; `edit` opens that YAML
in ``$EDITOR``, validates it like `add` does and records the change.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from pivot.cli.store_access import StoreOption, fail, open_store
from pivot.cli.watchers_cmd import (
    CheckOption,
    IdArg,
    JsonOption,
    emit,
    load_config,
    user_errors,
)
from pivot.terminal import printable

__all__ = ["parse_sets", "register", "warn"]


def parse_sets(values: list[str]) -> dict[str, str]:
    """``--set key=value`` options as a mapping; a malformed one is a user error."""
    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            fail(f"--set {item!r}: write --set NAME=VALUE (see `pivot watchers templates`)")
        out[key.strip()] = value
    return out


def warn(lines: list[str]) -> None:
    """Warnings on stderr, neutralised (they quote user and job text)."""
    for line in lines:
        print(printable(line), file=sys.stderr)


def templates_cmd(json_: JsonOption = False) -> None:
    """The built-in watcher templates and their parameters (use with `add --template`)."""
    from pivot.jobs.templates import templates

    catalogue = templates()
    if json_:
        emit(
            [
                {
                    "name": t.name,
                    "title": t.title,
                    "description": t.description,
                    "params": [
                        {"name": p.name, "description": p.description, "default": p.default,
                         "kind": p.kind}
                        for p in t.params
                    ],
                    "yaml": t.example_yaml(),
                }
                for t in catalogue
            ]
        )  # fmt: skip
        return
    for t in catalogue:
        print(printable(f"{t.name}: {t.title}. {t.description}"))
        for p in t.params:
            default = "required" if p.default is None else f"default: {p.default}"
            print(printable(f"    --set {p.name}=...  {p.description} ({p.kind}; {default})"))
    print("\nattach one: pivot watchers add --template NAME --job ID [--set NAME=VALUE ...]")


def copy(  # noqa: PLR0917 - typer passes options by keyword
    watcher_id: IdArg,
    job: Annotated[str, typer.Option("--job", help="The job to attach the copy to.")],
    host: Annotated[str, typer.Option(help="Host of that job.")] = "local",
    check: CheckOption = True,
    json_: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Attach a copy of a watcher to another job; prints the new watcher's id."""
    from pivot.jobs.advice import check_definition, describe
    from pivot.jobs.manage import copy_watcher, find, load_book

    with user_errors():
        config = load_config()
        config.host(host)
        with open_store(store) as opened:
            definition = find(load_book(opened), watcher_id).definition
            new_id = copy_watcher(opened, watcher_id, job, host)
        found = check_definition(definition, config, probe_jobs=check, job_id=job, host=host)
    if json_:
        emit({"id": new_id, "name": definition.name, "job": job, "host": host,
              "warnings": [w.to_json() for w in found]})  # fmt: skip
        return
    warn(describe(found))
    print(new_id)


def export(watcher_id: IdArg, json_: JsonOption = False, store: StoreOption = None) -> None:
    """Print a watcher's definition as YAML that `pivot watchers add` accepts back."""
    from pivot.jobs.manage import find, load_book

    with user_errors(), open_store(store) as opened:
        ws = find(load_book(opened), watcher_id)
    if json_:
        emit({"id": ws.watcher_id, "name": ws.name, "yaml": ws.definition.to_yaml(),
              "definition": ws.definition.to_dict()})  # fmt: skip
        return
    sys.stdout.write(ws.definition.to_yaml())


def edit(watcher_id: IdArg, json_: JsonOption = False, store: StoreOption = None) -> None:
    """Edit a watcher's YAML in $EDITOR; a valid change is recorded (same id, same position).

    An invalid file changes nothing: the error names the line, and the
    edited file is kept so the edit is not lost.
    """
    from pivot.jobs.advice import describe, static_warnings
    from pivot.jobs.definition import DefinitionError, parse_watchers
    from pivot.jobs.manage import edit_watcher, find, load_book

    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    with user_errors():
        config = load_config()
        with open_store(store) as opened:
            ws = find(load_book(opened), watcher_id)
            fd, name = tempfile.mkstemp(prefix=f"pivot-watcher-{ws.watcher_id}-", suffix=".yaml")
            path = Path(name)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(ws.definition.to_yaml())
            try:
                subprocess.run([*shlex.split(editor), str(path)], check=True)
            except (OSError, subprocess.CalledProcessError) as exc:
                fail(f"editor {editor!r} failed ({exc}); nothing changed; your file: {path}")
            try:
                parsed = parse_watchers(path.read_text(encoding="utf-8"), str(path))
            except DefinitionError as exc:
                fail(f"{exc}; nothing changed; your edit is kept in {path}")
            if len(parsed) != 1:
                fail(f"{path}: one watcher expected, found {len(parsed)}; nothing changed")
            changed = edit_watcher(opened, ws.watcher_id, parsed[0])
    path.unlink(missing_ok=True)
    found = static_warnings(parsed[0], config)
    if json_:
        emit({"id": ws.watcher_id, "changed": changed,
              "warnings": [w.to_json() for w in found]})  # fmt: skip
        return
    warn(describe(found))
    print(f"{ws.watcher_id} {'edited' if changed else 'unchanged'}")


def register(app: typer.Typer) -> None:
    """Add templates, copy, export and edit to the watchers group."""
    app.command("templates")(templates_cmd)
    app.command("copy")(copy)
    app.command("export")(export)
    app.command("edit")(edit)
