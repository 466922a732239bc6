"""What the last successful run of each stage recorded, under ``.pivot/state.db``.

A :class:`StageRecord` holds, for one stage, the code hashes, dep hashes,
params and output hashes of its last successful run: everything a skip
decision compares against. The same SQLite file keeps the cache of file
hashes (by size, mtime, ctime and inode). Both load in one query each; a
record is written (and committed) right after its stage succeeds, so an
interrupted run keeps what finished.

The event log holds the same facts (``StageSucceeded`` carries them), so this
file is a cache that could be rebuilt from ``.pivot/events.db``.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivot.pipeline.hashing import CacheEntry
from pivot.storage import StorageError, describe, sqlite_file_problem, storage_error

__all__ = ["STATE_DIR", "StageRecord", "StateStore"]

STATE_DIR = ".pivot"

# What a storage error calls this file, for the user.
RECORDS = "the stage records file"


@dataclass(frozen=True)
class StageRecord:
    """One stage's last successful run (``failed`` once a later run failed)."""

    fingerprint: str
    code: Mapping[str, str] = field(default_factory=dict)
    deps: Mapping[str, str | None] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    outs: Mapping[str, str | None] = field(default_factory=dict)
    at: float = 0.0
    duration: float = 0.0
    failed: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data."""
        return {
            "fingerprint": self.fingerprint,
            "code": dict(self.code),
            "deps": dict(self.deps),
            "params": dict(self.params),
            "outs": dict(self.outs),
            "at": self.at,
            "duration": self.duration,
            "failed": self.failed,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> StageRecord:
        """Inverse of :meth:`to_dict`."""
        return cls(
            fingerprint=data.get("fingerprint", ""),
            code=dict(data.get("code", {})),
            deps=dict(data.get("deps", {})),
            params=dict(data.get("params", {})),
            outs=dict(data.get("outs", {})),
            at=float(data.get("at", 0.0)),
            duration=float(data.get("duration", 0.0)),
            failed=bool(data.get("failed", False)),
        )


def _own(value: Any) -> dict[str, Any]:
    return value if type(value) is dict else dict(value)


def _parsed_record(data: Mapping[str, Any]) -> StageRecord:
    """:meth:`StageRecord.from_dict` of a document just parsed: its mappings are taken,
    not copied (nothing else holds them; 10,000 records, 40,000 copies)."""
    return StageRecord(
        data.get("fingerprint", ""),
        _own(data.get("code", {})),
        _own(data.get("deps", {})),
        _own(data.get("params", {})),
        _own(data.get("outs", {})),
        float(data.get("at", 0.0)),
        float(data.get("duration", 0.0)),
        bool(data.get("failed", False)),
    )


class StateStore:
    """The ``.pivot/state.db`` of one project.

    A damaged, full or unwritable file raises :class:`~pivot.storage.StorageError`
    (from every method), never a bare ``sqlite3`` error, and never is it
    silently replaced: the records are what lets stages be skipped.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        problem = sqlite_file_problem(self.path)
        if problem:
            raise StorageError(describe("damaged", problem, self.path, RECORDS))
        with self._failures():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        try:
            with self._failures():
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS stages (name TEXT PRIMARY KEY, data TEXT)"
                )
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER, "
                    "mtime_ns INTEGER, hash TEXT, ctime_ns INTEGER, ino INTEGER)"
                )
                self._db.commit()
                self._add_signature_columns()
        except BaseException:
            self._db.close()
            raise

    def _add_signature_columns(self) -> None:
        """A file from before the cache keyed ctime and inode gets their columns
        (its rows, without them, never match: those files are hashed once again)."""
        have = {row[1] for row in self._db.execute("PRAGMA table_info(files)")}
        for column in ("ctime_ns", "ino"):
            if column not in have:
                try:
                    self._db.execute(f"ALTER TABLE files ADD COLUMN {column} INTEGER")
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):  # another process added it
                        raise
        self._db.commit()

    @contextlib.contextmanager
    def _failures(self) -> Iterator[None]:
        """sqlite3 and OS errors as :class:`StorageError` saying what to do."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:
            db = getattr(self, "_db", None)
            if db is not None and db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.rollback()  # a failed commit leaves its transaction open
            error = storage_error(exc, self.path, RECORDS)
            if error is None:
                raise
            raise error from exc

    rebuilt = 0
    """How many records :meth:`open` rebuilt from the event log (the file was missing)."""

    @classmethod
    def open(cls, root: str | Path) -> StateStore:
        """The state of the project at ``root``.

        When the file is missing it is created, holding the records the
        event log ``.pivot/events.db`` vouches for (see
        :mod:`pivot.pipeline.records_from_log`), read before the file exists
        so that a failure to read them leaves nothing half made.
        """
        folder = Path(root) / STATE_DIR
        path = folder / "state.db"
        if path.exists():
            return cls(path)
        from pivot.pipeline.records_from_log import read_records

        records = read_records(folder / "events.db")
        store = cls(path)
        try:
            store.save_records(records)
        except BaseException:
            store.close()
            raise
        store.rebuilt = len(records)
        return store

    def records(self) -> dict[str, StageRecord]:
        """Every stage's record, by stage name."""
        with self._failures():
            rows = self._db.execute("SELECT name, data FROM stages").fetchall()
        # One JSON document of every record: one parse, not one per stage.
        datas = json.loads(f"[{','.join(data for _, data in rows)}]")
        return {name: _parsed_record(data) for (name, _), data in zip(rows, datas, strict=True)}

    def file_cache(self) -> dict[str, CacheEntry]:
        """The cache of file hashes, by path (see :mod:`pivot.pipeline.hashing`)."""
        with self._failures():
            rows = self._db.execute(
                "SELECT path, size, mtime_ns, ctime_ns, ino, hash FROM files "
                "WHERE ctime_ns IS NOT NULL AND ino IS NOT NULL"
            ).fetchall()
            return {p: (s, m, c, i, h) for p, s, m, c, i, h in rows}

    def save_record(self, stage: str, record: StageRecord) -> None:
        """Record a stage's successful run (durable when this returns)."""
        self.save_records({stage: record})

    def save_records(self, records: Mapping[str, StageRecord]) -> None:
        """Save several records in one transaction (rebuilding the file)."""
        if not records:
            return
        with self._failures():
            self._db.executemany(
                "INSERT OR REPLACE INTO stages (name, data) VALUES (?, ?)",
                [(n, json.dumps(r.to_dict(), sort_keys=True)) for n, r in records.items()],
            )
            self._db.commit()

    def mark_failed(self, stage: str) -> None:
        """The stage's latest run failed: its outputs are no longer vouched for."""
        with self._failures():
            row = self._db.execute("SELECT data FROM stages WHERE name = ?", (stage,)).fetchone()
            if row is None:
                return
            data = json.loads(row[0])
            data["failed"] = True
            self._db.execute("UPDATE stages SET data = ? WHERE name = ?", (json.dumps(data), stage))
            self._db.commit()

    def save_file_cache(self, entries: Mapping[str, CacheEntry]) -> None:
        """Write back hash cache entries."""
        if not entries:
            return
        with self._failures():
            self._db.executemany(
                "INSERT OR REPLACE INTO files (path, size, mtime_ns, ctime_ns, ino, hash) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(p, s, m, c, i, h) for p, (s, m, c, i, h) in entries.items()],
            )
            self._db.commit()

    def close(self) -> None:
        """Release the database."""
        self._db.close()
