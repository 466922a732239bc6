"""A wave's events on their way to ``emit``: in order, one call at a time, from any thread.

The wave and its executors (a SLURM executor's polling thread) both emit.
:class:`WaveOutbox` serialises them and lets the wave gather what it produces
together into one call (one durable append, one fsynced commit): the wave holds
(:meth:`WaveOutbox.hold`) from the moment a poll returns until it has decided
what to start next, and flushes before it submits anything, so

- a poll's end events (several stages finishing), the stages skipped because of
  them, and the ``stage.started`` of every stage of the next submission round
  are one append; the wave's first events (``wave.started``, queued and
  up-to-date stages) go with the first round's;
- every ``stage.started`` is durable before its stage is handed to an executor
  (a ``kill -9`` after that leaves a story `pivot why` tells as interrupted),
  and so before anything the executor emits for that run.

An executor's events (:meth:`WaveOutbox.from_executor`: a SLURM job's
``stage.submitted``, the only record of its job id, its ``watcher.created``)
are never held: they are handed on at once, in the order they came, even while
the wave holds (it may be hashing a finished stage's outputs for seconds), so a
``kill -9`` then loses no job id. What the wave holds stays held: its end events
wait for their stages' records to be saved (by the wave's thread), and none of
it comes before an executor's event for its stage (a run's ``stage.started``
went out before its submit, its end comes after its last executor event).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from pivot.events.base import Event
from pivot.pipeline.executor import Emit

__all__ = ["WaveOutbox"]


class WaveOutbox:
    """Where a wave and its executors send events; thread-safe."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._lock = threading.RLock()  # an executor may emit inside its submit
        self._held: list[Event] | None = None

    def hold(self, events: Sequence[Event] = ()) -> None:
        """Keep ``events``, and what follows, until :meth:`flush` (after what is kept)."""
        with self._lock:
            if self._held is None:
                self._held = []
            self._held.extend(events)

    def emit(self, events: Sequence[Event]) -> None:
        """Hand ``events`` on (or keep them, while holding)."""
        with self._lock:
            if self._held is not None:
                self._held.extend(events)
            else:
                self._emit(events)

    def from_executor(self, events: Sequence[Event]) -> None:
        """An executor's events: handed on now, past what the wave holds."""
        with self._lock:
            self._emit(events)

    def flush(self) -> None:
        """Hand on what was held, in order, in one call (one append); stop holding."""
        with self._lock:
            held, self._held = self._held, None
            if held:
                self._emit(held)
