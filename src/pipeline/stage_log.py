"""A stage's log file: ``.pivot/logs/<stage>.log``, emptied before each run starts.

A SLURM stage's log is a symlink to its current job's own file
(:mod:`pivot.pipeline.slurm_logs`); readers open the path each time, so they
follow it when it is switched to another job.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from pivot.pipeline.state import STATE_DIR

__all__ = ["empty_log", "log_path"]


def log_path(root: str | Path, stage: str) -> Path:
    """Where a stage's stdout and stderr go: ``.pivot/logs/<stage>.log``."""
    return Path(root) / STATE_DIR / "logs" / f"{stage}.log"


def empty_log(path: Path) -> None:
    """Empty a stage's log before its ``stage.started`` is emitted.

    Whoever follows the log from that event on (`pivot run`'s output, watch's
    log pane) must see only this run's lines, never the last run's traceback;
    the worker opening it later would be too late. A symlink (to a SLURM
    job's own file) is replaced by the empty file, never followed: that job's
    file stays as it was.
    """
    # A log that cannot be written here fails the worker's own open, which says so.
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            path.unlink()
        path.write_bytes(b"")
