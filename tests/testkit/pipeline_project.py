"""A real project in a temporary directory, driven through the real `pivot` CLI.

Not a conftest.py on purpose: the suite keeps one (see
docs/solutions/nested-conftest-shadows-require.md); tests import this module
as ``testkit.pipeline_project``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

PIVOT = [sys.executable, "-c", "from pivot.cli.app import main; main()"]


class Project:
    """A folder with a pipeline.py; ``cli`` runs `pivot ...` in it."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        return path

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text()

    def cli(
        self, *args: str, ok: bool | None = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*PIVOT, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
            check=False,
        )
        if ok is True:
            assert proc.returncode == 0, (
                f"pivot {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}"
            )
        elif ok is False:
            assert proc.returncode != 0, f"pivot {' '.join(args)} succeeded:\n{proc.stdout}"
        return proc

    def run_json(self, *args: str, ok: bool | None = True) -> dict[str, Any]:
        proc = self.cli("run", "--json", *args, ok=ok)
        doc: dict[str, Any] = json.loads(proc.stdout)
        return doc

    def ran(self, *args: str) -> list[str]:
        """Stages that succeeded in a `pivot run` (in completion-agnostic plan order)."""
        doc = self.run_json(*args)
        return [s["stage"] for s in doc["stages"] if s["status"] == "succeeded"]

    def status(self) -> dict[str, list[str]]:
        """`pivot status --json` as stage -> reasons (empty: up to date)."""
        doc = json.loads(self.cli("status", "--json").stdout)
        return {s["stage"]: s["reasons"] for s in doc["stages"]}


def wait_past_racy_window(*paths: Path, timeout: float = 60) -> None:
    """Wait until pivot may cache results about ``paths``: their mtime and ctime are
    older than its racy window (a file changed in it is always read again)."""
    import time

    from pivot.pipeline.hashing import racy

    deadline = time.monotonic() + timeout
    while any(racy(p.stat()) for p in paths):
        assert time.monotonic() < deadline, f"still in the racy window: {paths}"
        time.sleep(0.05)


def make_project(tmp_path: Path) -> Project:
    """A fresh project folder under pytest's ``tmp_path``."""
    root = tmp_path / "proj"
    root.mkdir()
    return Project(root)


HEADER = """
from pathlib import Path
from typing import Annotated

from pivot import Dep, Out, Pipeline

pipeline = Pipeline()
"""
