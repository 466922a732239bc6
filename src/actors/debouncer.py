"""Debouncer: turns a stream of changed paths into batches for the Coordinator.

The window logic is :class:`pivot.watch.debounce.Debounce`; this actor only
feeds it, arms a timer for the window's next wake-up, asks
:func:`pivot.watch.writers.closed_by_writers` when the window says to, and
sends the batch.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from pivot.actors.base import ActorContext, Shell
from pivot.actors.watch_messages import DebounceTick, PathsChanged, WindowOpened
from pivot.watch.debounce import Debounce
from pivot.watch.writers import closed_by_writers

__all__ = ["Debouncer"]


class Debouncer(Shell):
    """Quiet period + maximum wait + bounded memory, then one batch."""

    name = "debouncer"

    def __init__(
        self,
        ctx: ActorContext,
        quiet: float = 0.1,
        max_wait: float = 2.0,
        max_paths: int = 10_000,
        settle: float = 0.02,
    ) -> None:
        super().__init__(ctx)
        self.window = Debounce(quiet=quiet, max_wait=max_wait, max_paths=max_paths, settle=settle)
        self.timer: threading.Timer | None = None
        self.timer_due: float | None = None

    def started(self) -> None:
        # A fresh (or restarted) debouncer has no window: nobody may wait for one.
        self.ctx.registry.tell("coordinator", WindowOpened(open=False))

    def on_receive(self, message: Any) -> Any:
        if isinstance(message, PathsChanged):
            was_open = self.window.pending
            self.window.add(message.paths, time.monotonic(), overflow=message.overflow)
            if not was_open and self.window.pending:
                self.ctx.registry.tell("coordinator", WindowOpened())
            self._arm()
        elif isinstance(message, DebounceTick):
            self.timer = None
            self.timer_due = None
            now = time.monotonic()
            if self.window.ready(now):
                self.ctx.registry.tell("coordinator", self.window.take())
            else:
                early = self.window.early_check()
                if early is not None and now >= early:
                    if closed_by_writers(self.window.paths):
                        self.ctx.registry.tell("coordinator", self.window.take())
                    else:
                        self.window.writes_busy(now)
            self._arm()
        return None

    def _arm(self) -> None:
        due = self.window.wakeup()
        if due is None:
            return
        if self.timer is not None and self.timer_due is not None and self.timer_due <= due:
            return  # the armed timer fires first; the DebounceTick re-arms if needed
        if self.timer is not None:
            self.timer.cancel()
        self.timer_due = due
        self.timer = threading.Timer(max(0.0, due - time.monotonic()), self._tick)
        self.timer.daemon = True
        self.timer.start()

    def _tick(self) -> None:
        self.ctx.registry.tell(self.name, DebounceTick())

    def on_stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
        super().on_stop()
