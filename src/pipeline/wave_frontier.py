"""Which stages of a wave may start now, and which can no longer run.

The bookkeeping :mod:`pivot.pipeline.execute` does between steps, kept apart
and pure (no executor, no events): a :class:`Frontier` holds the stages not
yet started, how many of each one's upstream have not yet succeeded, and a
heap (by plan order) of those whose upstream all succeeded. Each step it
looks only at what changed since the last one: the statuses set since then.
The wave used to scan every pending stage on every step, which is quadratic:
at 10,000 stages that scan was about 40 s of a first full run.

A stage downstream of one that failed, was skipped or was cancelled is
skipped, in plan order, its own downstream after it, with the reason naming
the first such upstream (``upstream failed: a``, ``upstream cancelled: a``).
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterable, Mapping, Sequence

__all__ = ["ENDED", "Frontier"]

ENDED = ("failed", "skipped", "cancelled")
"""Statuses whose downstream is skipped."""


class Frontier:
    """The not-yet-started stages of one wave (``to_run`` in plan order, ``ups`` each
    one's upstream among them)."""

    def __init__(self, to_run: Sequence[str], ups: Mapping[str, Sequence[str]]) -> None:
        self.index = {n: i for i, n in enumerate(to_run)}
        self.ups = ups
        self.downs: dict[str, list[str]] = {n: [] for n in to_run}
        for n in to_run:
            for u in ups[n]:
                self.downs[u].append(n)
        self.pending = dict.fromkeys(to_run)  # not started, not skipped; in plan order
        self._unmet = {n: len(ups[n]) for n in to_run}  # upstream not yet succeeded
        self._ready: list[tuple[int, str]] = []  # heap by plan order
        self._queued: set[str] = set()  # the names in it, each once
        self.put_back(n for n in to_run if not ups[n])
        self._seen = 0  # statuses already looked at

    def _newly_ended(self, status: dict[str, str]) -> list[str]:
        """Stages whose status was set since the last look, in that order.

        A stage's status is set once and never removed, so the new ones are
        the last entries of the (insertion-ordered) mapping.
        """
        new = len(status) - self._seen
        self._seen = len(status)
        return list(itertools.islice(reversed(status), new))[::-1] if new > 0 else []

    def settle(self, status: dict[str, str]) -> list[tuple[str, str]]:
        """Take in the statuses set since the last call; returns each pending stage that
        can no longer run, with why (``upstream failed: a``), in plan order; they leave
        :attr:`pending` (the caller records them ``skipped``)."""
        skipped: dict[str, str] = {}

        def now(stage: str) -> str | None:
            return skipped.get(stage) or status.get(stage)

        doomed: list[tuple[int, str]] = []
        for name in self._newly_ended(status):
            if status[name] == "succeeded":
                for down in self.downs.get(name, ()):
                    self._unmet[down] -= 1
                    if not self._unmet[down]:
                        self.put_back([down])
            elif status[name] in ENDED:
                doomed.extend((self.index[d], d) for d in self.downs.get(name, ()))
        heapq.heapify(doomed)
        out: list[tuple[str, str]] = []
        while doomed:  # in plan order, so a skipped stage's downstream follows it
            _, name = heapq.heappop(doomed)
            if name not in self.pending:
                continue
            bad = [u for u in self.ups[name] if now(u) in ENDED]
            del self.pending[name]
            skipped[name] = "skipped"
            what = "cancelled" if now(bad[0]) == "cancelled" else "failed"
            out.append((name, f"upstream {what}: {bad[0]}"))
            for down in self.downs[name]:
                heapq.heappush(doomed, (self.index[down], down))
        return out

    def next_ready(self) -> str | None:
        """The first pending stage (in plan order) whose upstream all succeeded, taken
        off the ready heap (:meth:`put_back` what does not start); None when none is."""
        while self._ready:
            _, name = heapq.heappop(self._ready)
            self._queued.discard(name)
            if name in self.pending:
                return name
        return None

    def put_back(self, stages: Iterable[str]) -> None:
        """Offer ``stages`` (pending, upstream all succeeded) to :meth:`next_ready`; those it
        gave that did not start go back here. Each is queued once."""
        for name in stages:
            if name not in self._queued:
                self._queued.add(name)
                heapq.heappush(self._ready, (self.index[name], name))

    def started(self, stage: str) -> None:
        """``stage`` was handed to its executor (or ended without running)."""
        self.pending.pop(stage, None)

    def retry(self, stages: Iterable[str]) -> None:
        """Started stages to run again (their worker died): pending and ready once more."""
        again = list(stages)
        order = sorted([*self.pending, *again], key=self.index.__getitem__)
        self.pending = dict.fromkeys(order)
        self.put_back(again)

    def drain(self) -> list[str]:
        """Every pending stage, in plan order; none is pending after."""
        names = list(self.pending)
        self.pending.clear()
        return names
