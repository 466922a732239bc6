"""The debounce window: a true quiet period, a maximum wait, bounded memory.

Pure state over explicit timestamps, so every rule is tested without threads:

- a batch closes when no change arrived for ``quiet`` seconds;
- or sooner, once no change arrived for ``settle`` seconds *and* every
  changed file is closed by whoever wrote it (the caller asks, at
  :meth:`Debounce.early_check`, and says so; see
  :mod:`pivot.watch.writers`): an editor's save is complete, so waiting for
  the whole quiet period only adds latency. While some writer still has a
  file open the caller asks again every ``settle`` seconds, and the quiet
  period stays the bound. Only a *save* closes early: at most
  ``early_paths`` distinct paths, in a window opened at least ``burst_gap``
  after the last change of the window before. The start of a checkout (more
  paths, or a chunk of it that follows another) keeps the quiet period, so
  the bulk rule below can see it;
- or when ``max_wait`` seconds passed since its first change, so a stream
  that never stops still produces batches;
- except for a *bulk* change (at least ``bulk_paths`` distinct paths in the
  window: a `git checkout`, an unzip, an rsync), which is waited out for up
  to ``bulk_max_wait`` seconds as long as it keeps going, with a longer quiet
  period (``bulk_quiet``: a slow disk pauses mid-checkout): a wave started in
  the middle of a checkout would run on half-written trees and be followed
  by more waves. A stream touching few paths (a growing log) keeps the
  normal maximum wait;
- at most ``max_paths`` distinct paths are kept; beyond that the batch is
  marked ``overflow`` (its paths are dropped, only a small sample and the
  count are kept) and its consumer must re-check everything. Memory stays
  bounded however many changes arrive.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

__all__ = ["Batch", "Debounce"]

SAMPLE_SIZE = 20


@dataclass(frozen=True, slots=True)
class Batch:
    """Changed paths that arrived within one debounce window.

    ``count`` is the number of change notifications; with ``overflow`` the
    batch was too large and ``paths`` holds only a sample.
    """

    paths: frozenset[str]
    count: int
    overflow: bool = False


@dataclass(slots=True)
class Debounce:
    """Collects changes and says when the current window closes."""

    quiet: float = 0.1
    max_wait: float = 2.0
    settle: float = 0.02
    early_paths: int = 8
    burst_gap: float = 0.1
    max_paths: int = 10_000
    bulk_paths: int = 100
    bulk_quiet: float = 0.5
    bulk_max_wait: float = 30.0
    _paths: set[str] = field(default_factory=set)
    _sample: list[str] = field(default_factory=list)
    _count: int = 0
    _overflow: bool = False
    _first: float | None = None
    _last: float | None = None
    _asked: float | None = None  # when the caller last found a writer still busy
    _previous: float | None = None  # the last change of the window taken before

    def __post_init__(self) -> None:
        if self.quiet < 0 or self.max_wait < 0 or self.settle < 0:
            raise ValueError("quiet period, settle time and maximum wait must not be negative")
        if self.max_paths < 1:
            raise ValueError("max_paths must be at least 1")

    @property
    def pending(self) -> bool:
        """Whether a window is open (some change not yet taken)."""
        return self._count > 0

    def add(self, paths: Iterable[str], now: float, overflow: bool = False) -> None:
        """Record changes seen at ``now``; ``overflow`` marks a source that already lost paths."""
        added = False
        for p in paths:
            added = True
            self._count += 1
            if self._overflow:
                if len(self._sample) < SAMPLE_SIZE and p not in self._sample:
                    self._sample.append(p)
                continue
            self._paths.add(p)
            if len(self._paths) > self.max_paths:
                self._go_overflow()
        if overflow:
            added = True
            self._count = max(self._count, 1)
            if not self._overflow:
                self._go_overflow()
        if not added:
            return
        if self._first is None:
            self._first = now
        self._last = now

    def _go_overflow(self) -> None:
        self._overflow = True
        self._sample = sorted(self._paths)[:SAMPLE_SIZE]
        self._paths = set()

    def deadline(self) -> float | None:
        """When the open window closes (None when nothing is pending)."""
        if self._first is None or self._last is None:
            return None
        quiet = max(self.quiet, self.bulk_quiet) if self.bulk else self.quiet
        return min(self._last + quiet, self._first + self.longest_wait)

    @property
    def bulk(self) -> bool:
        """Whether the open window holds a bulk change (many distinct paths)."""
        return self._overflow or len(self._paths) >= self.bulk_paths

    @property
    def longest_wait(self) -> float:
        """How long the open window may stay open after its first change."""
        return max(self.max_wait, self.bulk_max_wait) if self.bulk else self.max_wait

    def ready(self, now: float) -> bool:
        """Whether the open window has closed at ``now``."""
        due = self.deadline()
        return due is not None and now >= due

    @property
    def paths(self) -> frozenset[str]:
        """The distinct paths of the open window (a sample once it overflowed)."""
        return frozenset(self._sample if self._overflow else self._paths)

    def early_check(self) -> float | None:
        """When to ask whether every changed file's writer closed it (None: do not ask).

        Not for a window of more than ``early_paths`` paths, nor one opened less
        than ``burst_gap`` after the last change of the window before, nor when
        ``settle`` is no shorter than ``quiet``.
        """
        if self._first is None or self._last is None or self.settle >= self.quiet:
            return None
        if len(self._paths) > self.early_paths or self.bulk:
            return None
        if self._previous is not None and self._first - self._previous < self.burst_gap:
            return None  # a burst going on: this window may be its next chunk
        at = self._last + self.settle
        if self._asked is not None and self._asked >= at:
            at = self._asked + self.settle
        return at

    def writes_busy(self, now: float) -> None:
        """The caller asked at ``now`` and some changed file is still open for writing."""
        self._asked = now

    def wakeup(self) -> float | None:
        """When the caller must look at the window next: the deadline, or the next question."""
        due = self.deadline()
        early = self.early_check()
        if due is None or early is None:
            return due
        return min(due, early)

    def take(self) -> Batch:
        """Close the window and return its batch (an empty batch if none was open)."""
        if self._overflow:
            batch = Batch(frozenset(self._sample), self._count, overflow=True)
        else:
            batch = Batch(frozenset(self._paths), self._count)
        self._paths = set()
        self._sample = []
        self._count = 0
        self._overflow = False
        if self._last is not None:
            self._previous = self._last
        self._first = None
        self._last = None
        self._asked = None
        return batch
