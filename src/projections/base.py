"""What a projection is: a deterministic fold over the log, plus a view.

A :class:`Projection` names the event types it reads, an initial state, and
``apply(state, recorded) -> state``. The state is plain JSON data (dicts
with string keys, lists, numbers, strings), so it is stored as one JSON
document next to its log position. ``apply`` depends on nothing but its
arguments (no clock, no I/O), which is what makes a rebuild from the whole
log equal to the incrementally kept state. For speed it may update the
state it was given in place; callers treat the argument as consumed and use
the returned state.

``view(state, now)`` turns the state into what users see; it is the only
place the current time may enter (e.g. "events in the last hour").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pivot.events.store import Recorded


__all__ = ["Projection", "State"]

State = dict[str, Any]


def _identity_view(state: State, now: float) -> dict[str, Any]:
    del now
    return state


@dataclass(frozen=True)
class Projection:
    """A named read model of the log.

    ``version``: bump it when ``apply`` or the state's shape changes; a
    stored state of another version is discarded and rebuilt from the log.
    """

    name: str
    version: int
    types: tuple[str, ...]
    initial: Callable[[], State]
    apply: Callable[[State, Recorded], State]
    view: Callable[[State, float], dict[str, Any]] = _identity_view
    description: str = ""

    def fold(self, records: list[Recorded], state: State | None = None) -> State:
        """Fold records (in log order) into ``state`` (or a fresh one)."""
        current = self.initial() if state is None else state
        wanted = set(self.types)
        for rec in records:
            if rec.event.TYPE in wanted:
                current = self.apply(current, rec)
        return current
