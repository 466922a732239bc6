"""Changes waiting for the next wave: merged, bounded, taken all at once.

The Coordinator runs one wave at a time; whatever arrives meanwhile lands
here and becomes exactly one next wave.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pivot.watch.debounce import Batch

__all__ = ["Pending", "Taken"]


@dataclass(frozen=True, slots=True)
class Taken:
    """Everything pending at one moment."""

    paths: frozenset[str]
    count: int
    overflow: bool
    force: bool


@dataclass(slots=True)
class Pending:
    """Accumulates batches and force requests; memory bounded by ``max_paths``."""

    max_paths: int = 10_000
    _paths: set[str] = field(default_factory=set)
    _count: int = 0
    _overflow: bool = False
    _force: bool = False

    def add(self, batch: Batch) -> None:
        """Merge a debounced batch."""
        self._count += batch.count
        if batch.overflow:
            self._overflow = True
        if self._overflow:
            self._paths.clear()
            return
        self._paths |= batch.paths
        if len(self._paths) > self.max_paths:
            self._overflow = True
            self._paths.clear()

    def force(self) -> None:
        """The next wave runs every stage."""
        self._force = True

    @property
    def count(self) -> int:
        """Change notifications merged since the last :meth:`take`."""
        return self._count

    @property
    def empty(self) -> bool:
        """Nothing to do."""
        return not (self._paths or self._overflow or self._force)

    def take(self) -> Taken:
        """Everything pending; the accumulator is empty afterwards."""
        taken = Taken(frozenset(self._paths), self._count, self._overflow, self._force)
        self._paths = set()
        self._count = 0
        self._overflow = False
        self._force = False
        return taken
