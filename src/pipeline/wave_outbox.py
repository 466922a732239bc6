"""A wave's events on their way to ``emit``: in order, one call at a time, from any thread.

The wave and its executors (a SLURM executor's polling thread) both emit.
:class:`WaveOutbox` serialises them, and keeps two orders the log promises:

- the wave's first events (``wave.started``, queued and up-to-date stages)
  are held until its first stages are submitted and then handed on together
  with their ``stage.started`` in one call (one durable append), so the
  stages need not wait for a write;
- a run's ``stage.started`` is handed on before any event its executor emits
  for it (:meth:`WaveOutbox.submitting`), yet after the submit returned, so
  a local worker is not kept waiting for the append.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence

from pivot.events.base import Event
from pivot.pipeline.executor import Emit

__all__ = ["WaveOutbox"]


class WaveOutbox:
    """Where a wave and its executors send events; thread-safe."""

    def __init__(self, emit: Emit) -> None:
        self._emit = emit
        self._lock = threading.RLock()  # an executor may emit inside its submit
        self._held: list[Event] | None = None
        self._unsent_started: Event | None = None

    def hold(self, events: Sequence[Event]) -> None:
        """Keep ``events``, and what follows, until :meth:`flush`."""
        with self._lock:
            self._held = list(events)

    def emit(self, events: Sequence[Event]) -> None:
        """Hand ``events`` on (or keep them, while holding)."""
        with self._lock:
            if self._held is not None:
                self._held.extend(events)
            else:
                self._emit(events)

    def from_executor(self, events: Sequence[Event]) -> None:
        """An executor's events: after the ``stage.started`` of the run being submitted."""
        with self._lock:
            self._send_started()
            self.emit(events)

    @contextlib.contextmanager
    def submitting(self, started: Event) -> Iterator[None]:
        """Around an executor's submit: ``started`` goes out when it returns, or first."""
        with self._lock:
            self._unsent_started = started
            try:
                yield
            finally:
                self._send_started()

    def flush(self) -> None:
        """Hand on what was held, in order, in one call (one append)."""
        with self._lock:
            held, self._held = self._held, None
            if held:
                self._emit(held)

    def _send_started(self) -> None:
        started, self._unsent_started = self._unsent_started, None
        if started is not None:
            self.emit([started])
