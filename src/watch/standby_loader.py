"""Loading the pipeline in a fresh interpreter that was started ahead of time.

:func:`pivot.pipeline.loader.load_fresh` starts ``python -m
pivot.pipeline.loader`` for every reload: starting Python and importing
pivot's loader is most of its cost, and it sits between your save and your
stage running. :class:`StandbyLoader` keeps one such interpreter started
and waiting, with pivot's loader imported but no project code, so it is as
fresh as a new one; a reload only hands it the pipeline path, and a new one
is started for the next reload.

The answer is the loader's own (``{"ok": ..., "spec" | "error": ...}`` on
stdout), read exactly as ``load_fresh`` reads it.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from pivot.pipeline import lifeline
from pivot.pipeline.errors import PipelineError
from pivot.pipeline.spec import PipelineSpec

__all__ = ["StandbyLoader"]

# Imports pivot's loader (never project code), then waits for one path.
# Directory listings cached by the import system while it waited would hide
# a module created since (a checkout adding a file): forget them first.
# It dies with pivot (lifeline) before importing anything else.
_SCRIPT = """\
import importlib, sys
from pivot.pipeline import lifeline
lifeline.arm()
from pivot.pipeline import loader
line = sys.stdin.readline().strip()
importlib.invalidate_caches()
sys.exit(loader.main([line]) if line else 0)
"""


class StandbyLoader:
    """One waiting loader interpreter at a time; :meth:`load` uses it and starts the next."""

    def __init__(self, pipeline_file: Path, python: str | None = None) -> None:
        self.pipeline_file = pipeline_file
        self.python = python or sys.executable
        self._lock = threading.Lock()
        self._ready: subprocess.Popen[str] | None = None
        self._closed = False

    def _spawn(self) -> subprocess.Popen[str]:
        return lifeline.spawn(
            subprocess.Popen,
            [*lifeline.exec_prefix(), self.python, "-c", _SCRIPT],
            cwd=self.pipeline_file.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **lifeline.child_env()},
        )

    def prepare(self) -> None:
        """Start the waiting interpreter now (if none is waiting)."""
        with self._lock:
            if self._closed or (self._ready is not None and self._ready.poll() is None):
                return
            self._ready = self._spawn()

    def load(self, timeout: float | None = None) -> PipelineSpec:
        """The pipeline's spec, loaded in a fresh interpreter; PipelineError for mistakes."""
        with self._lock:
            proc, self._ready = self._ready, None
        if proc is None or proc.poll() is not None:
            proc = self._spawn()
        try:
            out, err = proc.communicate(str(self.pipeline_file) + "\n", timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            raise
        finally:
            self.prepare()
        try:
            answer = json.loads(out)
        except ValueError:
            tail = "\n".join(err.strip().splitlines()[-5:])
            raise PipelineError(
                f"the pipeline loader exited with status {proc.returncode}: {tail}"
            ) from None
        if not answer.get("ok"):
            e = answer["error"]
            raise PipelineError(e["message"], e.get("file", ""), int(e.get("line", 0)))
        return PipelineSpec.from_dict(answer["spec"])

    def close(self) -> None:
        """Stop the waiting interpreter."""
        with self._lock:
            self._closed = True
            proc, self._ready = self._ready, None
        if proc is not None:
            with contextlib.suppress(OSError):
                proc.kill()
            proc.communicate()
