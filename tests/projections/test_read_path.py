"""The replay read path reads back exactly what was written.

Rebuilds take shortcuts (the JSON scanner without the whitespace handling
of ``json.loads``, a constructor filling the instance dict instead of
``__init__``); these tests pin that the shortcuts give the same events, and
the same errors, as the slow, obvious way.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from pivot.events import EventStore
from pivot.events import watchers as wt
from pivot.events.base import Event, EventDecodeError, decode
from pivot.events.row_codec import encode_state

from testkit.eventgen import EVENTS


def _thawed(value: Any) -> Any:
    return tuple(_thawed(v) for v in value) if isinstance(value, list) else value


def _by_init(cls: type[Event], data: dict[str, Any]) -> Event:
    return cls(**{k: _thawed(v) for k, v in data.items()})


@settings(max_examples=300, deadline=None)
@given(ev=EVENTS, keep=st.data())
def test_decoding_stored_data_equals_calling_init(ev: Event, keep: st.DataObject) -> None:
    type_name, state = encode_state(ev)
    payload = json.loads(state)
    decoded = decode(type_name, payload["v"], payload["d"])
    assert decoded == ev
    assert vars(decoded) == vars(ev)  # no extra attributes, tuples still tuples
    # Data lacking fields that have defaults (written before they existed).
    cls = type(ev)
    optional = sorted(
        f.name
        for f in dataclasses.fields(cls)
        if f.name != "at"  # its default is the clock: two calls differ
        and (f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING)
    )
    dropped = keep.draw(st.sets(st.sampled_from(optional)) if optional else st.just(set()))
    data = {k: v for k, v in json.loads(state)["d"].items() if k not in dropped}
    expected = _by_init(cls, json.loads(json.dumps(data)))
    got = decode(type_name, payload["v"], data)
    assert got == expected
    assert vars(got) == vars(expected)


def test_unknown_fields_are_dropped_and_missing_ones_refused() -> None:
    ev = wt.WatcherRemoved(watcher_id="w1")
    _, state = encode_state(ev)
    data = json.loads(state)["d"]
    assert vars(decode(wt.WatcherRemoved.TYPE, 1, {**data, "extra": 1})) == vars(ev)
    del data["watcher_id"]
    with pytest.raises(EventDecodeError, match="watcher_id"):
        decode(wt.WatcherRemoved.TYPE, 1, data)


def _store_rows(tmp_path: Path, states: list[bytes]) -> EventStore:
    store = EventStore.open(tmp_path / "events.db")
    stream = uuid.uuid4()
    store.backend.recorder.insert_events(
        [
            StoredEvent(stream, i + 1, wt.WatcherRemoved.TYPE, state)
            for i, state in enumerate(states)
        ]
    )
    return store


def test_payloads_with_surrounding_whitespace_still_read(tmp_path: Path) -> None:
    # encode_state never writes whitespace, but json.loads accepted it, so
    # a row written by other means must keep reading.
    _, state = encode_state(wt.WatcherRemoved(watcher_id="w1", at=1.0))
    with _store_rows(tmp_path, [state, b" \n" + state, state + b"\n ", b"\t" + state + b" "]) as s:
        assert [r.event for r in s.read()] == [wt.WatcherRemoved(watcher_id="w1", at=1.0)] * 4
        assert len(list(s.read_payloads())) == 4


@pytest.mark.parametrize("junk", [b"x", b"{}", b" 1"])
def test_payloads_with_trailing_data_are_refused_as_json_loads_does(
    tmp_path: Path, junk: bytes
) -> None:
    _, state = encode_state(wt.WatcherRemoved(watcher_id="w1"))
    with pytest.raises(json.JSONDecodeError, match="Extra data"):
        json.loads(state + junk)
    with _store_rows(tmp_path, [state + junk]) as s:
        with pytest.raises(EventDecodeError, match=r"event #1 .*not a pivot event"):
            list(s.read())
        with pytest.raises(EventDecodeError, match=r"event #1 .*not a pivot event"):
            list(s.read_payloads())


@pytest.mark.parametrize(
    "damaged",
    [b"not json", b'{"v":1,"d":[1]}', b'{"d":{}}', b'{"v":"1","d":{}}', b"[1]", b"\xff\xfe{}"],
)
def test_a_damaged_row_is_an_error_naming_it(tmp_path: Path, damaged: bytes) -> None:
    # A damaged file or a row written by another program: every read path
    # says which event cannot be read (commands print it as one line).
    _, good = encode_state(wt.WatcherRemoved(watcher_id="w1"))
    with _store_rows(tmp_path, [good, damaged, good]) as s:
        for read in (s.read, s.read_payloads, s.read_backwards):
            with pytest.raises(
                EventDecodeError, match=r"^event #2 \(watcher.removed\): the stored"
            ):
                list(read())
        assert [r.seq for r in s.read(limit=1)] == [1]  # the rows before it still read


def test_an_undecodable_event_names_its_seq(tmp_path: Path) -> None:
    newer = b'{"v":99,"d":{"watcher_id":"w1"}}'
    with _store_rows(tmp_path, [newer]) as s:
        with pytest.raises(EventDecodeError, match=r"^event #1: watcher.removed v99 .*newer pivot"):
            list(s.read())
        assert [p[2] for p in s.read_payloads()] == [99]  # raw scans still read it
