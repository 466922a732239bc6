"""`pivot replay --verify` checks what exists and says what it checked (real CLI, real log)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

PIVOT = [str(Path(sys.executable).with_name("pivot"))]

PIPELINE = """
from pathlib import Path
from typing import Annotated

from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def copy(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("out.txt")]) -> None:
    out.write_text(src.read_text())
"""


def pivot(root: Path, *args: str, code: int = 0) -> str:
    proc = subprocess.run(
        [*PIVOT, *args], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == code, (args, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    return proc.stdout


def test_verify_reads_the_whole_log_folds_what_is_not_stored_and_compares_what_is(
    tmp_path: Path,
) -> None:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "in.txt").write_text("x\n")
    pivot(tmp_path, "run")
    events = len(pivot(tmp_path, "events", "--json").splitlines())
    out = pivot(tmp_path, "replay", "--verify")
    assert f"log: all {events} events decode (up to seq {events})" in out, out
    assert f"pipeline_status: not stored (folded from the log up to seq {events}" in out, out
    assert f"verified: {events} events read; 0 stored projection(s) compared" in out, out
    pivot(tmp_path, "stats")  # stores the stats projections
    out = pivot(tmp_path, "replay", "--verify")
    assert "pipeline_stats: ok (position" in out, out
    doc = json.loads(pivot(tmp_path, "replay", "--verify", "--json"))
    assert doc["ok"] and doc["log"] == {"events": events, "last_seq": events, "error": ""}
    with sqlite3.connect(tmp_path / ".pivot" / "events.db") as db:
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = 2", (b"garbage",))
    out = pivot(tmp_path, "replay", "--verify", code=1)
    assert "log: FAILED after 1 events: event #2" in out, out
    assert "projections not checked" in out
