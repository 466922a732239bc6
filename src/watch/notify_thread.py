"""A live watchfiles notifier drained by a thread of its own.

The FileWatcher (project files) and the job-output watch (files jobs write)
both need the same thing: a notifier that is live when built
(:func:`pivot.watch.rust_notify.open_notify`), a daemon thread that hands
each group of changed paths to a callback, a failure reported once (not
when the failure is the stop itself), and a stop that does not hang.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable

from pivot.watch.rust_notify import open_notify

__all__ = ["NotifyThread"]


class NotifyThread:
    """Watch ``paths``; ``on_change`` gets each group of changed paths, on this thread.

    ``step_ms``/``group_ms`` are watchfiles' latency knobs: a group is
    reported ``step_ms`` after its last change, at most ``group_ms`` after its
    first. ``idle_ms`` > 0 wakes a quiet loop that often, so :meth:`retire`
    can end it once nothing is left to report. Building one raises
    ``OSError`` (or watchfiles' own error) when a path cannot be watched.
    """

    def __init__(
        self,
        paths: Iterable[str],
        *,
        recursive: bool,
        name: str,
        on_change: Callable[[set[str]], None],
        on_error: Callable[[str], None],
        step_ms: int,
        group_ms: int,
        idle_ms: int = 0,
    ) -> None:
        self.stop = threading.Event()
        self.retired = threading.Event()
        self._on_change = on_change
        self._on_error = on_error
        self._knobs = (group_ms, step_ms, idle_ms)
        self.notify = open_notify(paths, recursive=recursive)
        self.thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        group_ms, step_ms, idle_ms = self._knobs
        try:
            while not self.stop.is_set():
                raw = self.notify.watch(group_ms, step_ms, idle_ms, self.stop)
                if isinstance(raw, str):
                    if raw == "timeout" and self.retired.is_set():
                        return  # retired, and nothing left to report
                    continue  # 'stop' ends the loop; 'signal'/'timeout' carry on
                self._on_change({p for _, p in raw})
        except Exception as exc:
            if not self.stop.is_set():
                self._on_error(f"{type(exc).__name__}: {exc}")
        finally:
            self.notify.close()

    def retire(self) -> None:
        """Stop once what was already seen is reported (needs ``idle_ms`` > 0)."""
        self.retired.set()

    def close(self, join: bool = True) -> None:
        """Stop at once: what was not reported yet is dropped (watchfiles clears it)."""
        self.stop.set()
        if join:
            self.thread.join(5)
