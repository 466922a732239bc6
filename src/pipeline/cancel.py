"""The one cancellation token of a wave, for `pivot run` and `pivot watch` alike.

Set from any thread or a signal handler (Ctrl-C, SIGTERM, watch's ``q`` or a
restart); the wave waits on :attr:`CancelToken.future` together with its
stages' futures, so it wakes at once, then cancels every executor in flight.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

__all__ = ["CancelToken"]


class CancelToken:
    """Asks a running wave to stop: :meth:`cancel` from any thread; the first reason wins."""

    def __init__(self) -> None:
        self.future: Future[str] = Future()
        self._lock = threading.Lock()

    def cancel(self, reason: str = "cancelled") -> None:
        """Ask the wave to stop; idempotent."""
        with self._lock:
            if not self.future.done():
                self.future.set_result(reason)

    @property
    def requested(self) -> bool:
        """Whether :meth:`cancel` was called."""
        return self.future.done()

    @property
    def reason(self) -> str:
        """The reason given to :meth:`cancel` ("" when not cancelled)."""
        return self.future.result() if self.future.done() else ""
