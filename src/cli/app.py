"""The ``pivot`` command: one typer app, one module per command group.

Each command module exposes ``register(app)``; this module only assembles
them, so a group can be read (and tested) on its own.

Start-up time matters (``pivot stats`` in a prompt or a loop): :func:`main`
imports only the module of the command that argv names; ``pivot``,
``pivot --help`` or an unknown word get every group, so the help lists all.
``app`` (every group) is built on first access, for tests and tools.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

HELP = "Pipelines that rebuild themselves, and watchers for long SLURM jobs."

# Top-level command -> the module whose register(app) adds it.
COMMANDS = {
    "init": "init_cmd",
    "run": "pipeline_cmd",
    "status": "pipeline_cmd",
    "dag": "dag_cmd",
    "events": "events_cmd",
    "replay": "replay_cmd",
    "why": "why_cmd",
    "stats": "stats_cmd",
    "watch": "watch_cmd",
    "watchers": "jobs_cmd",
    "jobs": "jobs_cmd",
    "ui": "ui_cmd",
}
MODULES = tuple(dict.fromkeys(COMMANDS.values()))


def _root() -> None:
    """Pipelines that rebuild themselves, and watchers for long SLURM jobs.

    Every state transition is recorded in an event log under .pivot/; see
    `pivot events`.

    Start here:

    \b
      pivot init                 # start a project here
      pivot run                  # bring every stage up to date
      pivot status               # what is stale, and why
      pivot watch                # re-run what changes make stale
      pivot watchers add w.yaml --job 1234   # react to a job's output
      pivot events --since 1h    # what happened
    """


def version() -> str:
    """The installed pivot's version."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("pivot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def _print_version(value: bool) -> None:
    if value:
        import typer

        print(f"pivot {version()}")
        raise typer.Exit()


def build_app(modules: Sequence[str] = MODULES) -> typer.Typer:
    """The ``pivot`` app with the commands of ``modules`` (names in :data:`MODULES`)."""
    import typer

    from pivot.cli import fast_coercion, help_format

    fast_coercion.install()
    help_format.install()
    app = typer.Typer(
        name="pivot",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        add_completion=False,
        # click's classic help: one line per option, names never cut, no
        # boxes to pad a pipe with; see help_format for the value names.
        rich_markup_mode=None,
    )

    def root(
        show_version: bool = typer.Option(
            False,
            "--version",
            "-V",
            help="Print pivot's version and exit.",
            is_eager=True,
            callback=_print_version,
        ),
    ) -> None:
        del show_version

    root.__doc__ = _root.__doc__
    app.callback()(root)
    for name in modules:
        importlib.import_module(f"pivot.cli.{name}").register(app)
    return app


def modules_for(argv: Sequence[str]) -> tuple[str, ...]:
    """The command modules ``argv`` (without the program name) needs: one, or all."""
    for word in argv:
        if word.startswith("-"):
            return MODULES  # a root option (--help): show everything
        module = COMMANDS.get(word)
        return (module,) if module is not None else MODULES
    return MODULES


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        full = build_app()
        globals()["app"] = full
        return full
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:] in (["--version"], ["-V"]):  # no command group needed
        print(f"pivot {version()}")
        return
    build_app(modules_for(sys.argv[1:]))(prog_name="pivot")
