"""The real `pivot` process: --follow sees appends of another process; errors, no tracebacks."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

from pivot.events import EventStore
from pivot.events.pipeline import StageFailed, StageStarted

PIVOT = str(Path(sys.executable).with_name("pivot"))


def _lines(stream: object) -> queue.Queue[str]:
    q: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in stream:  # type: ignore[attr-defined]
            q.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return q


def test_follow_streams_events_appended_by_another_process(tmp_path: Path) -> None:
    location = str(tmp_path / "events.db")
    with EventStore.open(location) as store:
        store.append([StageStarted(stage="before")])
    proc = subprocess.Popen(
        [PIVOT, "events", "--follow", "--json", "--type", "stage.failed,stage.started",
         "--store", location],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        lines = _lines(proc.stdout)
        first = json.loads(lines.get(timeout=60))
        assert (first["seq"], first["data"]["stage"]) == (1, "before")
        # Another writer (this test process, a different store instance) appends.
        with EventStore.open(location) as writer:
            writer.append([StageStarted(stage="a"), StageFailed(stage="a", error="x")])
            got = [json.loads(lines.get(timeout=30)) for _ in range(2)]
            assert [(g["seq"], g["type"]) for g in got] == [
                (2, "stage.started"),
                (3, "stage.failed"),
            ]
            writer.append([StageStarted(stage="b")])
            assert json.loads(lines.get(timeout=30))["data"]["stage"] == "b"
        assert proc.poll() is None  # still following
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_real_process_reports_a_corrupt_store_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "events.db"
    bad.write_bytes(b"\x00garbage" * 1000)
    proc = subprocess.run(
        [PIVOT, "stats", "--store", str(bad)], capture_output=True, text=True, timeout=60,
        check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: the event log") and "Traceback" not in proc.stderr
    assert proc.stderr.count("\n") == 1
