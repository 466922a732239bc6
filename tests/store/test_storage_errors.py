"""The pure parts of telling a user what is wrong with pivot's own files."""

from __future__ import annotations

import errno
import sqlite3
from pathlib import Path

from pivot.events.pipeline import StageFailed, StageSucceeded
from pivot.pipeline.records_from_log import fold
from pivot.storage import sqlite_file_problem, storage_error


def _db(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x TEXT)")
        db.executemany("INSERT INTO t VALUES (?)", [("x" * 500,)] * 50)
    return path


def test_sqlite_file_problem_sees_garbage_and_a_cut_page(tmp_path: Path) -> None:
    good = _db(tmp_path / "good.db")
    assert sqlite_file_problem(good) == ""
    assert sqlite_file_problem(tmp_path / "absent.db") == ""
    (tmp_path / "empty.db").write_bytes(b"")
    assert sqlite_file_problem(tmp_path / "empty.db") == ""  # SQLite's own new file
    (tmp_path / "junk.db").write_bytes(b"junk" * 100)
    assert sqlite_file_problem(tmp_path / "junk.db") == "not a SQLite database"
    cut = tmp_path / "cut.db"
    cut.write_bytes(good.read_bytes()[:-10])
    assert sqlite_file_problem(cut).startswith("truncated: ")
    # A pending -wal may legitimately hold what the main file lacks.
    (tmp_path / "cut.db-wal").write_bytes(b"w")
    assert sqlite_file_problem(cut) == ""


def test_storage_error_names_the_problem_and_ignores_what_is_not_one(tmp_path: Path) -> None:
    path = tmp_path / ".pivot" / "events.db"
    path.parent.mkdir()
    full = storage_error(OSError(errno.ENOSPC, "No space left on device"), path, "the log")
    assert full is not None and "no space left" in str(full) and "free space" in str(full)
    denied = storage_error(OSError(errno.EACCES, "Permission denied"), path, "the log")
    assert denied is not None and "cannot write in" in str(denied)
    damaged = sqlite3.DatabaseError("file is not a database")
    damaged.sqlite_errorcode = 26
    error = storage_error(damaged, path, "the log")
    assert error is not None and "damaged" in str(error) and "mv " in str(error)
    locked = sqlite3.OperationalError("database is locked")
    locked.sqlite_errorcode = 5
    assert storage_error(locked, path, "the log") is None
    assert storage_error(ValueError("a bug"), path, "the log") is None


def test_fold_rebuilds_records_and_a_later_failure_withdraws_one() -> None:
    records = fold(
        [
            StageSucceeded(stage="a", duration=1.0, fingerprint="f1", deps={"x": "h"}),
            StageSucceeded(stage="b", duration=2.0, fingerprint="f2"),
            StageFailed(stage="b", error="boom"),
            StageFailed(stage="c", error="never succeeded"),
            StageSucceeded(stage="a", duration=3.0, fingerprint="f3"),
        ]
    )
    assert set(records) == {"a", "b"}
    assert records["a"].fingerprint == "f3" and records["a"].duration == 3.0
    assert records["b"].failed and not records["a"].failed
