"""Command: `pivot ui`, the watchers web page and its API.

The web stack (starlette, uvicorn) is imported inside the command, so
other commands never load it (see tests/cli_events/test_cli_startup.py).
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from pivot.cli.store_access import StoreOption, fail, store_errors


def ui(
    *,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on. Anything but loopback needs --token."),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port (0: any free one).")] = 8765,
    token: Annotated[
        str | None,
        typer.Option(
            help="Require 'Authorization: Bearer TOKEN' on every API and WebSocket request "
            "(default: $PIVOT_UI_TOKEN); letters, digits and - . _ ~ + only.",
            show_default=False,
        ),
    ] = None,
    open_: Annotated[bool, typer.Option("--open", help="Open the page in a browser.")] = False,
    watchers: Annotated[
        bool,
        typer.Option(
            "--watchers/--no-watchers",
            help="Host the project's job watchers here, so a watcher created in the page "
            "starts watching at once; while another process (`pivot watch`, `pivot "
            "watchers run`) hosts them, stand by and take over when it stops.",
        ),
    ] = True,
    tick: Annotated[
        float,
        typer.Option(min=0.05, help="How often the hosted watchers wake up, in seconds."),
    ] = 1.0,
    store: StoreOption = None,
) -> None:
    """Serve the watchers page, its REST + WebSocket API and live pipeline status.

    The page lists, creates, pauses, triggers, copies and removes job watchers,
    shows their events live, their stats and store_metric charts, and the
    pipeline's stages while `pivot watch` runs. The API's schema is at
    /openapi.json. Examples: `pivot ui --open`, `pivot ui --port 0`,
    `PIVOT_UI_TOKEN=s3cret pivot ui --host 0.0.0.0`.
    """
    from pivot.jobs.config import ConfigError
    from pivot.ui.auth import BindError, check_bind, check_token
    from pivot.ui.server import ServeOptions, serve

    secret = token if token is not None else os.environ.get("PIVOT_UI_TOKEN", "")
    try:
        check_token(secret)
        check_bind(host, secret)
    except BindError as exc:
        fail(str(exc))
    options = ServeOptions(host=host, port=port, token=secret, open_browser=open_,
                           host_watchers=watchers, store=store, tick_seconds=tick)  # fmt: skip
    with store_errors():
        try:
            serve(options, lambda line: print(line, file=sys.stderr, flush=True))
        except ConfigError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
        except KeyboardInterrupt:
            raise typer.Exit(130) from None


def register(app: typer.Typer) -> None:
    """Add `pivot ui`."""
    app.command("ui")(ui)
