"""`pivot init`: start a new project in a directory (never overwriting a file)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

PIPELINE = '''\
"""The pipeline: each stage is a function; Dep/Out say what it reads and writes.

Run `pivot run` to bring every stage up to date, `pivot status` to see what
is stale and why, `pivot watch` to re-run what your edits affect.
"""

from pathlib import Path
from typing import Annotated

from pivot import Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def greet(
    out: Annotated[Path, Out("output/greeting.txt")],
    name: str = "world",  # a param: params.yaml overrides it
) -> None:
    """Write a greeting. Outputs' parent directories exist when a stage starts."""
    out.write_text(f"hello, {name}\\n")


# The next stage reads what `greet` writes, so it runs after it (and again
# whenever the greeting changes). Import Dep with Out to use it:
#
# @pipeline.stage
# def shout(
#     greeting: Annotated[Path, Dep("output/greeting.txt")],
#     out: Annotated[Path, Out("output/shout.txt")],
# ) -> None:
#     out.write_text(greeting.read_text().upper())
'''

PARAMS = """\
# Params per stage, over the defaults in pipeline.py. A change re-runs the stage.
greet:
  name: world
"""

TOML = """\
# pivot.toml: project configuration (every key is optional; see docs/configuration.md).

# The event log: a SQLite path relative to this directory, or PostgreSQL.
# event_store = ".pivot/events.db"
# event_store = "postgresql://user:password@host:5432/pivot"

# A SLURM login node reached over SSH, for job watchers (`pivot watchers`).
# [hosts.cluster]
# hostname = "login.hpc.example.org"
# username = "me"

# Programs a watcher's run_command action may execute.
# [actions.run_command]
# allow = ["notify-send"]

# Mail for notify_email actions.
# [notify.smtp]
# host = "smtp.example.org"
# port = 587
# starttls = true
# from = "pivot@example.org"
# to = ["me@example.org"]
"""

GITIGNORE_ENTRY = ".pivot/"
FILES = {"pipeline.py": PIPELINE, "params.yaml": PARAMS, "pivot.toml": TOML}


def init(
    directory: Annotated[
        Path,
        typer.Argument(
            help="Where to start the project (default: here; created if missing).",
            show_default=False,
        ),
    ] = Path(),
) -> None:
    """Start a new project: pipeline.py, params.yaml, pivot.toml.

    Writes pipeline.py (one example stage, and a second one commented out),
    params.yaml (that stage's param), pivot.toml (every setting commented
    out) and adds .pivot/ (state, logs, the event log) to .gitignore,
    creating it if needed. Refuses, writing nothing, if any of the first
    three exists. Then: `pivot run`. Exit status: 0, 1 a file exists.

    Examples:

    \b
      pivot init
      pivot init my-project && cd my-project && pivot run
    """
    from pivot.cli.store_access import fail

    existing = [name for name in FILES if (directory / name).exists()]
    if existing:
        where = directory / existing[0]
        fail(
            f"{where} already exists; pivot init writes nothing over a file "
            f"(existing: {', '.join(existing)})"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in FILES.items():
            with (directory / name).open("x") as f:  # "x": never overwrite, even in a race
                f.write(text)
        added = _ignore_pivot(directory / ".gitignore")
    except OSError as exc:
        fail(f"cannot write the project in {directory}: {exc.strerror or exc}")
    written = [*FILES, ".gitignore" + ("" if added else " (already ignores .pivot/)")]
    print(f"started a pivot project in {directory.resolve()}: {', '.join(written)}")
    hint = "" if directory == Path() else f"cd {directory} && "
    print(f"next: {hint}pivot run && pivot status")


def _ignore_pivot(gitignore: Path) -> bool:
    """Add ``.pivot/`` to ``gitignore`` unless an entry already covers it."""
    text = gitignore.read_text() if gitignore.exists() else ""
    entries = {line.strip().rstrip("/").lstrip("/") for line in text.splitlines()}
    if ".pivot" in entries:
        return False
    prefix = "" if not text or text.endswith("\n") else "\n"
    with gitignore.open("a") as f:
        f.write(f"{prefix}# pivot: state, stage logs and the event log\n{GITIGNORE_ENTRY}\n")
    return True


def register(app: typer.Typer) -> None:
    """Add `pivot init`."""
    app.command("init")(init)
