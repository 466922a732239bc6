"""A projection kept in the database next to the log, updated incrementally.

The state (one JSON document) and the log position it reflects live in the
table ``pivot_projections`` of the store's own database and are always
written in one transaction. The write is conditional on the position read
before folding (``UPDATE ... WHERE position = old``), so when two processes
catch up the same projection at once, one commits and the other reloads the
stored state and continues from there: every event is counted exactly once,
also after a crash between two checkpoints.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Literal

from pivot.projections.base import Projection, State

if TYPE_CHECKING:
    from pivot.events.backends import Backend, Cursor
    from pivot.events.store import EventStore

__all__ = ["CHECKPOINT_EVERY", "LiveProjection", "ensure_table", "read_row", "write_row"]

CHECKPOINT_EVERY = 50_000

# States are plain JSON data, never cyclic: skipping the cycle check makes
# encoding a large state (watcher_history's, megabytes) ~30% faster.
_ENCODER = json.JSONEncoder(separators=(",", ":"), check_circular=False)

_CREATE = (
    "CREATE TABLE IF NOT EXISTS pivot_projections ("
    "name TEXT PRIMARY KEY, version INTEGER NOT NULL, "
    "position BIGINT NOT NULL, state TEXT NOT NULL)"
)


def ensure_table(backend: Backend) -> None:
    """Create the projections table if this database has none yet."""
    backend.ensure_table("pivot_projections", _CREATE)


def read_row(backend: Backend, name: str) -> tuple[int, int, str] | None:
    """``(version, position, document)`` stored under ``name``, or None."""
    ensure_table(backend)
    with backend.transaction(write=False) as cur:
        cur.execute(
            backend.sql("SELECT version, position, state FROM pivot_projections WHERE name = ?"),
            (name,),
        )
        row = cur.fetchone()
    if row is None:
        return None
    return int(row["version"]), int(row["position"]), str(row["state"])


def write_row(
    backend: Backend,
    cur: Cursor,
    name: str,
    *,
    version: int,
    position: int,
    document: str,
    expected: int | Literal["older"] | None,
) -> bool:
    """Store ``document`` at ``position`` under ``name`` in ``cur``'s transaction.

    ``expected``: the position the caller last read (None: no row yet), and
    the write happens only if the row is still there; ``"older"``: only if
    the stored row is older than ``position`` or of another version (a
    deterministic fold's state at a position is the same whoever wrote it,
    so a newer one is never replaced by an older one). Returns whether the
    row now holds exactly this version and position.
    """
    if expected is None:
        cur.execute(
            backend.sql(
                "INSERT INTO pivot_projections (name, version, position, state) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING"
            ),
            (name, version, position, document),
        )
    elif expected == "older":
        cur.execute(
            backend.sql(
                "INSERT INTO pivot_projections (name, version, position, state) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET version = excluded.version, "
                "position = excluded.position, state = excluded.state "
                "WHERE pivot_projections.position < excluded.position "
                "OR pivot_projections.version <> excluded.version"
            ),
            (name, version, position, document),
        )
    else:
        cur.execute(
            backend.sql(
                "UPDATE pivot_projections SET version = ?, position = ?, state = ? "
                "WHERE name = ? AND position = ?"
            ),
            (version, position, document, name, expected),
        )
    cur.execute(
        backend.sql("SELECT version, position FROM pivot_projections WHERE name = ?"), (name,)
    )
    row = cur.fetchone()
    # Ours if the stored row now says exactly what we wrote (the transaction
    # sees its own write; a lost race leaves the other's).
    return row is not None and (int(row["version"]), int(row["position"])) == (version, position)


class LiveProjection:
    """One projection's stored state, and the means to bring it up to date.

    ``state`` is the raw folded state; :meth:`view` what users see.
    """

    def __init__(self, store: EventStore, projection: Projection) -> None:
        self.store = store
        self.projection = projection
        self.state: State = projection.initial()
        self.position = 0
        self._stored_position: int | None = None
        ensure_table(store.backend)
        self.reload()

    @property
    def stored_position(self) -> int | None:
        """The position of the stored state (None when nothing is stored yet)."""
        return self._stored_position

    @property
    def name(self) -> str:
        """The projection's name."""
        return self.projection.name

    def reload(self) -> None:
        """Load the stored state (or start over if none, or of another version)."""
        row = read_row(self.store.backend, self.projection.name)
        if row is None:
            self._stored_position = None
            self.state, self.position = self.projection.initial(), 0
        elif row[0] != self.projection.version:
            self._stored_position = row[1]
            self.state, self.position = self.projection.initial(), 0
        else:
            self._stored_position = row[1]
            self.position = self._stored_position
            self.state = json.loads(row[2])

    def catch_up(self, until: int | None = None) -> int:
        """Fold every event newer than the stored position; returns how many were read.

        The state is written (with its position) every
        :data:`CHECKPOINT_EVERY` events and at the end.
        """
        target = self.store.last_seq() if until is None else until
        if target <= self.position:
            return 0
        applied = 0
        since_checkpoint = 0
        apply = self.projection.apply
        state = self.state
        for rec in self.store.read(self.position, types=self.projection.types, until=target):
            state = apply(state, rec)
            applied += 1
            since_checkpoint += 1
            if since_checkpoint >= CHECKPOINT_EVERY:
                self.state = state
                if not self._save(rec.seq):
                    return applied + self._restart(until)
                state = self.state
                since_checkpoint = 0
        self.state = state
        if not self._save(target):
            return applied + self._restart(until)
        return applied

    def _restart(self, until: int | None) -> int:
        # Another process stored a newer state first: take it, go on from there.
        self.reload()
        return self.catch_up(until)

    def _save(self, position: int) -> bool:
        """Store state and position atomically unless someone else moved it."""
        backend = self.store.backend
        document = _ENCODER.encode(self.state)
        with backend.transaction() as cur:
            mine = write_row(backend, cur, self.projection.name, version=self.projection.version,
                             position=position, document=document,
                             expected=self._stored_position)  # fmt: skip
        if mine:
            self._stored_position = position
            self.position = position
        return mine

    def reset(self) -> None:
        """Forget the stored state; the next :meth:`catch_up` rebuilds from the log."""
        backend = self.store.backend
        with backend.transaction() as cur:
            cur.execute(
                backend.sql("DELETE FROM pivot_projections WHERE name = ?"),
                (self.projection.name,),
            )
        self.reload()

    def view(self, now: float | None = None) -> dict[str, Any]:
        """What users see of the current state (``now`` defaults to the clock)."""
        return self.projection.view(self.state, time.time() if now is None else now)
