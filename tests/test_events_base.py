"""The event base: encode/decode round trip and upcasting of old versions."""

from __future__ import annotations

import dataclasses

import pytest

from pivot.events.base import Event, EventDecodeError, decode, encode, event, upcaster


@event
@dataclasses.dataclass(frozen=True, kw_only=True)
class _Renamed(Event):
    TYPE = "test.renamed"
    VERSION = 2
    new_name: str
    paths: tuple[str, ...] = ()


@upcaster("test.renamed", 1)
def _v1_to_v2(data: dict[str, object]) -> dict[str, object]:
    data = dict(data)
    data["new_name"] = data.pop("old_name")
    return data


def test_round_trip_keeps_every_field() -> None:
    ev = _Renamed(new_name="x", paths=("a", "b"), actor="tester", correlation_id="c1")
    type_name, version, data = encode(ev)
    assert decode(type_name, version, data) == ev


def test_old_version_is_upcast() -> None:
    ev = decode("test.renamed", 1, {"old_name": "legacy", "at": 1.0})
    assert ev == _Renamed(new_name="legacy", at=1.0)


def test_unknown_type_and_newer_version_are_clear_errors() -> None:
    with pytest.raises(EventDecodeError, match="unknown event type"):
        decode("nope.nothing", 1, {})
    with pytest.raises(EventDecodeError, match="newer pivot"):
        decode("test.renamed", 3, {"new_name": "x"})
