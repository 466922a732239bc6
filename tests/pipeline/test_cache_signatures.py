"""The caches that let a no-op `pivot status` skip reading files still see every change.

Both the hash cache of deps and outputs (``.pivot/state.db``) and the parse
cache of project sources (``.pivot/code-cache.json``) key a file by size,
mtime, ctime and inode: a rewrite of the same size that puts the old mtime
back (``cp -p``, ``touch -r``, a restored backup) changes the ctime, which
nobody can set.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

from pivot.pipeline.state import StateStore

from testkit.pipeline_project import HEADER, make_project, wait_past_racy_window

PIPELINE = (
    HEADER
    + """
@pipeline.stage
def clean(raw: Annotated[Path, Dep("data/raw.csv")],
          out: Annotated[Path, Out("clean.csv")]) -> None:
    out.write_text(raw.read_text() + "x1")
"""
)


def _rewrite_keeping_mtime(path: Path, old: str, new: str) -> None:
    """Same size, same mtime to the nanosecond: only ctime (and content) differ."""
    before = path.stat()
    text = path.read_text()
    assert old in text and len(old) == len(new)
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_a_same_size_rewrite_with_its_old_mtime_put_back_is_seen(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    pipeline = project.write("pipeline.py", PIPELINE)
    raw = project.write("data/raw.csv", "aaaa\n")
    project.cli("run")
    wait_past_racy_window(pipeline, raw)
    assert project.status() == {"clean": []}  # and now both files are cached:
    with sqlite3.connect(project.root / ".pivot/state.db") as db:
        cached = {row[0] for row in db.execute("SELECT path FROM files")}
    assert "data/raw.csv" in cached
    assert "pipeline.py" in json.loads(project.read(".pivot/code-cache.json"))

    _rewrite_keeping_mtime(raw, "aaaa", "bbbb")
    _rewrite_keeping_mtime(pipeline, '"x1"', '"x2"')

    assert project.status() == {
        "clean": ["code changed: pipeline.py:clean", "dep changed: data/raw.csv"]
    }
    project.cli("run")
    assert project.read("clean.csv") == "bbbb\nx2"
    assert project.status() == {"clean": []}


def test_a_state_file_from_before_ctime_and_inode_were_kept_still_works(tmp_path: Path) -> None:
    folder = tmp_path / ".pivot"
    folder.mkdir()
    with sqlite3.connect(folder / "state.db") as db:
        db.execute("CREATE TABLE stages (name TEXT PRIMARY KEY, data TEXT)")
        db.execute(
            "CREATE TABLE files (path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, hash TEXT)"
        )
        db.execute("INSERT INTO files VALUES ('a.csv', 4, 123, 'old-hash')")
    state = StateStore.open(tmp_path)
    try:
        assert state.file_cache() == {}  # an old row cannot vouch for a file: read it again
        state.save_file_cache({"a.csv": (4, 123, 456, 789, "new-hash")})
        assert state.file_cache() == {"a.csv": (4, 123, 456, 789, "new-hash")}
    finally:
        state.close()
    again = StateStore.open(tmp_path)  # the columns are there now: opening adds nothing
    try:
        assert again.file_cache() == {"a.csv": (4, 123, 456, 789, "new-hash")}
    finally:
        again.close()
