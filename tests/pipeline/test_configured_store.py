"""`pivot run` and `pivot watch` record into the configured event store, like every reader.

`event_store` in pivot.toml (or PIVOT_EVENT_STORE) moves the log; the commands
that write it must follow, or `pivot events` and the watchers' lease look at
one log while the pipeline writes another.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import threading
from pathlib import Path

from pivot.events.store import EventStore

from testkit.pipeline_project import PIVOT, Project

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "quickstart"


def _project(tmp_path: Path) -> Project:
    root = tmp_path / "quickstart"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".pivot", "__pycache__"))
    shutil.rmtree(root / "reports", ignore_errors=True)
    (root / "data/clean.csv").unlink(missing_ok=True)
    (root / "pivot.toml").write_text('event_store = "log/elsewhere.db"\n')
    return Project(root)


def _types(path: Path, actor: str) -> list[str]:
    with EventStore.open(path) as store:
        return [r.event.TYPE for r in store.read() if r.event.actor == actor]


def test_pivot_run_records_into_the_configured_store(tmp_path: Path) -> None:
    project = _project(tmp_path)
    assert project.ran() == ["clean", "stats", "histogram", "report"]
    elsewhere = project.root / "log" / "elsewhere.db"
    assert not (project.root / ".pivot" / "events.db").exists()
    assert _types(elsewhere, "pivot run").count("stage.succeeded") == 4
    shown = project.cli("events", "--json", "--type", "stage.succeeded").stdout.splitlines()
    assert len(shown) == 4


def test_pivot_watch_records_into_the_configured_store(tmp_path: Path) -> None:
    project = _project(tmp_path)
    watch = subprocess.Popen(
        [*PIVOT, "watch", "--display", "json", "--no-job-watchers"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    finished = threading.Event()

    def read() -> None:
        assert watch.stdout is not None
        for line in watch.stdout:
            if json.loads(line).get("type") == "wave.finished":
                finished.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert watch.stderr is not None
        assert finished.wait(120), watch.stderr.read() if watch.poll() is not None else "timeout"
    finally:
        watch.send_signal(signal.SIGINT)
        watch.wait(60)
    elsewhere = project.root / "log" / "elsewhere.db"
    assert not (project.root / ".pivot" / "events.db").exists()
    assert "wave.finished" in _types(elsewhere, "pivot watch")
