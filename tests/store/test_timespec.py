"""Times as users type them, relative to a fixed ``now`` (local time)."""

from __future__ import annotations

import datetime as dt

import pytest

from pivot.events.timespec import TimeSpecError, parse_time

NOW = dt.datetime(2026, 11, 23, 15, 30, 0).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("2h", NOW - 7200),
        ("15m", NOW - 900),
        ("90s", NOW - 90),
        ("1h30m", NOW - 5400),
        ("1h 30m ago", NOW - 5400),
        ("3d", NOW - 3 * 86400),
        ("1w", NOW - 7 * 86400),
        ("today", dt.datetime(2026, 11, 23).timestamp()),
        ("yesterday", dt.datetime(2026, 11, 22).timestamp()),
        ("yesterday 14:05", dt.datetime(2026, 11, 22, 14, 5).timestamp()),
        ("Today 9:30:15", dt.datetime(2026, 11, 23, 9, 30, 15).timestamp()),
        ("14:05", dt.datetime(2026, 11, 23, 14, 5).timestamp()),
        ("2026-11-20", dt.datetime(2026, 11, 20).timestamp()),
        ("2026-11-20T14:05", dt.datetime(2026, 11, 20, 14, 5).timestamp()),
        ("2026-11-20 14:05:30", dt.datetime(2026, 11, 20, 14, 5, 30).timestamp()),
        ("2026-11-20T14:05:00Z", dt.datetime(2026, 11, 20, 14, 5, tzinfo=dt.UTC).timestamp()),
        ("2026-11-20T14:05:00+01:00", dt.datetime(2026, 11, 20, 13, 5, tzinfo=dt.UTC).timestamp()),
        ("@1763906700", 1763906700.0),
    ],
)
def test_accepted_forms(text: str, expected: float) -> None:
    assert parse_time(text, NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "soon", "2x", "yesterday 25:00", "yesterday noon", "@x"])
def test_rejected_forms_name_the_text_and_the_accepted_forms(text: str) -> None:
    with pytest.raises(TimeSpecError) as info:
        parse_time(text, NOW)
    message = str(info.value)
    assert "yesterday 14:05" in message or "hour must be" in message
