"""Changes waiting for the next wave: merged, bounded, taken all at once.

The Coordinator runs one wave at a time; whatever arrives meanwhile lands
here and becomes exactly one next wave. A frozen value: each operation
returns the new one (it is part of the Coordinator's state, see
:mod:`pivot.watch.coordination`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from pivot.watch.debounce import Batch

__all__ = ["Pending", "Taken"]


@dataclass(frozen=True, slots=True)
class Taken:
    """Everything pending at one moment."""

    paths: frozenset[str]
    count: int
    overflow: bool
    force: bool


@dataclass(frozen=True, slots=True)
class Pending:
    """Accumulated batches and force requests; memory bounded by ``max_paths``."""

    max_paths: int = 10_000
    paths: frozenset[str] = frozenset()
    count: int = 0  # change notifications merged since the last take
    overflow: bool = False
    forced: bool = False

    def add(self, batch: Batch) -> Pending:
        """With a debounced batch merged."""
        count = self.count + batch.count
        if self.overflow or batch.overflow:
            return replace(self, paths=frozenset(), count=count, overflow=True)
        paths = self.paths | batch.paths
        if len(paths) > self.max_paths:
            return replace(self, paths=frozenset(), count=count, overflow=True)
        return replace(self, paths=paths, count=count)

    def force(self) -> Pending:
        """The next wave runs every stage."""
        return replace(self, forced=True)

    @property
    def empty(self) -> bool:
        """Nothing to do."""
        return not (self.paths or self.overflow or self.forced)

    def take(self) -> tuple[Taken, Pending]:
        """Everything pending, and the empty accumulator left afterwards."""
        taken = Taken(self.paths, self.count, self.overflow, self.forced)
        return taken, Pending(self.max_paths)
