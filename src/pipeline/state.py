"""What the last successful run of each stage recorded, under ``.pivot/state.db``.

A :class:`StageRecord` holds, for one stage, the code hashes, dep hashes,
params and output hashes of its last successful run: everything a skip
decision compares against. The same SQLite file keeps the size+mtime cache of
file hashes. Both load in one query each; a record is written (and committed)
right after its stage succeeds, so an interrupted run keeps what finished.

The event log holds the same facts (``StageSucceeded`` carries them), so this
file is a cache that could be rebuilt from ``.pivot/events.db``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivot.pipeline.hashing import CacheEntry

__all__ = ["STATE_DIR", "StageRecord", "StateStore"]

STATE_DIR = ".pivot"


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


class StateStore:
    """The ``.pivot/state.db`` of one project."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS stages (name TEXT PRIMARY KEY, data TEXT)")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS files "
            "(path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, hash TEXT)"
        )
        self._db.commit()

    @classmethod
    def open(cls, root: str | Path) -> StateStore:
        """The state of the project at ``root`` (created when missing)."""
        return cls(Path(root) / STATE_DIR / "state.db")

    def records(self) -> dict[str, StageRecord]:
        """Every stage's record, by stage name."""
        rows = self._db.execute("SELECT name, data FROM stages").fetchall()
        return {name: StageRecord.from_dict(json.loads(data)) for name, data in rows}

    def file_cache(self) -> dict[str, CacheEntry]:
        """The size+mtime cache of file hashes."""
        rows = self._db.execute("SELECT path, size, mtime_ns, hash FROM files").fetchall()
        return {p: (s, m, h) for p, s, m, h in rows}

    def save_record(self, stage: str, record: StageRecord) -> None:
        """Record a stage's successful run (durable when this returns)."""
        self._db.execute(
            "INSERT OR REPLACE INTO stages (name, data) VALUES (?, ?)",
            (stage, json.dumps(record.to_dict(), sort_keys=True)),
        )
        self._db.commit()

    def mark_failed(self, stage: str) -> None:
        """The stage's latest run failed: its outputs are no longer vouched for."""
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
        self._db.executemany(
            "INSERT OR REPLACE INTO files (path, size, mtime_ns, hash) VALUES (?, ?, ?, ?)",
            [(p, s, m, h) for p, (s, m, h) in entries.items()],
        )
        self._db.commit()

    def close(self) -> None:
        """Release the database."""
        self._db.close()
