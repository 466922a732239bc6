"""How a wave ended, as `pivot run`, its display and `pivot watch` read it."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["WaveResult"]


@dataclass
class WaveResult:
    """How a wave ended: each stage's status (``succeeded``, ``failed``, ``skipped``,
    ``cancelled``, ``up to date``) and the one-line errors of failed stages."""

    wave_id: str
    status: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    duration: float = 0.0
    cancelled: bool = False

    def count(self, status: str) -> int:
        """How many stages ended with ``status``."""
        return sum(1 for s in self.status.values() if s == status)

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing was cancelled."""
        return not self.cancelled and self.count("failed") == 0
