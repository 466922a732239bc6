"""Options that several command modules declare the same way."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

__all__ = ["PipelineOpt"]

# `pivot run`, `status`, `dag` and `watch`: which pipeline file.
PipelineOpt = Annotated[
    Path | None,
    typer.Option(
        "--pipeline",
        "-p",
        help="The pipeline file (default: pipeline.py here or in a parent directory).",
        show_default=False,
    ),
]
