"""Points in time as users type them: ``2h``, ``yesterday 14:05``, ISO 8601.

:func:`parse_time` turns one of these into seconds since the epoch (the
unit of every event's ``at``), relative to a given ``now``:

=========================  ===================================================
``now``                    now
``90s`` ``15m`` ``2h``     that long ago (units s, m, h, d, w; combinable:
``3d`` ``1w`` ``1h30m``    ``1h30m``; an optional trailing ``ago``)
``today`` ``yesterday``    midnight (local time) of that day
``yesterday 14:05``        that day at that local time (also ``today 9:30``)
``14:05`` ``14:05:30``     today at that local time
``2026-11-23``             midnight local time of that date
``2026-11-23T14:05``       ISO 8601 date and time, local unless it carries an
``2026-11-23 14:05:30``    offset (``Z``, ``+01:00``)
``@1763906700``            seconds since the epoch
=========================  ===================================================
"""

from __future__ import annotations

import datetime as dt
import re

__all__ = ["TIME_FORMS", "TimeSpecError", "parse_time"]

TIME_FORMS = "now, 2h, 15m, 1h30m, 3d, 1w, today, yesterday 14:05, 14:05, 2026-11-23T14:05, @EPOCH"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(?:\d+(?:\.\d+)?[smhdw])+")
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_CLOCK = re.compile(r"(\d{1,2}):(\d{2})(?::(\d{2}))?")


class TimeSpecError(ValueError):
    """Text that is not a point in time; the message lists the accepted forms."""


def parse_time(text: str, now: float) -> float:
    """Seconds since the epoch for ``text`` (see the module doc), relative to ``now``."""
    spec = " ".join(text.strip().lower().split())
    if not spec:
        raise TimeSpecError(f"empty time (accepted: {TIME_FORMS})")
    if spec == "now":
        return now
    if spec.startswith("@"):
        try:
            return float(spec[1:])
        except ValueError:
            raise _error(text) from None
    compact = spec.removesuffix(" ago").replace(" ", "")
    if _DURATION.fullmatch(compact):
        return now - sum(float(n) * _UNITS[u] for n, u in _PART.findall(compact))
    today = dt.datetime.fromtimestamp(now).date()
    day_words = {"today": today, "yesterday": today - dt.timedelta(days=1)}
    word, _, rest = spec.partition(" ")
    if word in day_words:
        clock = _clock(rest, text) if rest else dt.time()
        return dt.datetime.combine(day_words[word], clock).timestamp()
    if _CLOCK.fullmatch(spec):
        return dt.datetime.combine(today, _clock(spec, text)).timestamp()
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise _error(text) from None
    # Naive means local time, which is what timestamp() assumes for naive values.
    return moment.timestamp()


def _clock(spec: str, text: str) -> dt.time:
    m = _CLOCK.fullmatch(spec)
    if m is None:
        raise _error(text)
    hour, minute, second = int(m[1]), int(m[2]), int(m[3] or 0)
    try:
        return dt.time(hour, minute, second)
    except ValueError as exc:
        raise TimeSpecError(f"time {text!r}: {exc}") from None


def _error(text: str) -> TimeSpecError:
    return TimeSpecError(f"cannot read {text!r} as a time (accepted: {TIME_FORMS})")
