"""Restart intensity, OTP style: at most ``max_restarts`` within ``window`` seconds."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

__all__ = ["RestartBudget"]


@dataclass(slots=True)
class RestartBudget:
    """Remembers recent restarts of one child; says whether another is allowed."""

    max_restarts: int = 3
    window: float = 10.0
    _times: deque[float] = field(default_factory=deque)

    def allow(self, now: float) -> bool:
        """Record a crash at ``now``; True if a restart is allowed, False to give up."""
        while self._times and now - self._times[0] > self.window:
            self._times.popleft()
        if len(self._times) >= self.max_restarts:
            return False
        self._times.append(now)
        return True

    @property
    def attempts(self) -> int:
        """Restarts within the current window."""
        return len(self._times)
