"""Commands: pivot watch (issue: watch engine)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `pivot` app."""
    del app
