"""Event selection (`pivot events` filters) and the generated catalogue page."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from pivot.events.base import Event, event_types
from pivot.events.catalogue import catalogue_data, pivot_event_types, render_markdown
from pivot.events.pipeline import StageFailed, WaveStarted
from pivot.events.query import EventQuery, UnknownEventTypeError, expand_types, subject, to_json
from pivot.events.watchers import WatcherMatched

ROOT = Path(__file__).resolve().parents[2]


def test_expand_types_takes_names_globs_and_commas() -> None:
    known = ["stage.started", "stage.failed", "wave.started", "watcher.matched"]
    assert expand_types([], known) == ()
    assert expand_types(["stage.*"], known) == ("stage.failed", "stage.started")
    assert expand_types(["wave.started,watcher.*"], known) == ("watcher.matched", "wave.started")
    with pytest.raises(UnknownEventTypeError, match=r"stage\.bogus.*known types: stage\.failed"):
        expand_types(["stage.bogus"], known)


def test_query_filters_on_stage_watcher_and_time() -> None:
    failed = StageFailed(stage="train", error="x", at=100.0).to_dict()
    wave = WaveStarted(wave_id="w", trigger="run", stages=("prep", "train"), at=200.0).to_dict()
    match = WatcherMatched(watcher_id="w1", match_id="m", line="l", at=300.0).to_dict()
    assert EventQuery().only_types
    assert EventQuery(stage="train").matches(failed)
    assert EventQuery(stage="train").matches(wave)  # a wave that includes the stage
    assert not EventQuery(stage="prep").matches(failed)
    assert not EventQuery(stage="train").matches(match)
    assert EventQuery(watcher="w1").matches(match)
    assert not EventQuery(watcher="w2").matches(match)
    assert [EventQuery(since=150, until=250).matches(f) for f in (failed, wave, match)] == [
        False,
        True,
        False,
    ]
    assert subject(failed) == "train" and subject(match) == "w1"


def test_json_form_puts_common_fields_first_and_the_rest_in_data() -> None:
    fields = StageFailed(stage="t", error="e", at=1.5, actor="pool", correlation_id="c").to_dict()
    doc = to_json(7, "stage.failed", fields)
    assert list(doc) == ["seq", "type", "at", "actor", "correlation_id", "data"]
    assert (doc["seq"], doc["type"], doc["at"], doc["actor"], doc["correlation_id"]) == (
        7, "stage.failed", 1.5, "pool", "c"
    )  # fmt: skip
    others = {k: v for k, v in fields.items() if k not in {"at", "actor", "correlation_id"}}
    assert doc["data"] == others and doc["data"]["error"] == "e"


def test_catalogue_lists_every_registered_event_with_its_fields() -> None:
    page = render_markdown(event_types())
    for type_name, cls in event_types().items():
        assert f"### `{type_name}` (v{cls.VERSION}, `{cls.__name__}`)" in page
        for f in dataclasses.fields(cls):
            if f.name not in {"at", "actor", "correlation_id"}:
                assert f"| `{f.name}` |" in page


def test_catalogue_is_generic_over_event_classes() -> None:
    # A class nobody registered globally (so the real catalogue is untouched).
    @dataclasses.dataclass(frozen=True, kw_only=True)
    class Thing(Event):
        """A thing happened."""

        TYPE = "thing.happened"
        VERSION = 3
        size: int
        tags: tuple[str, ...] = ()

    [row] = catalogue_data({"thing.happened": Thing})
    assert row["type"] == "thing.happened" and row["version"] == 3
    assert row["fields"] == [
        {"name": "size", "type": "int", "default": "required"},
        {"name": "tags", "type": "tuple[str, ...]", "default": "()"},
    ]
    assert "### `thing.happened` (v3, `Thing`)" in render_markdown({"thing.happened": Thing})


def test_docs_events_md_is_current() -> None:
    """Fails when an event was added or changed without regenerating the page."""
    page = (ROOT / "docs" / "events.md").read_text(encoding="utf-8")
    assert page == render_markdown(pivot_event_types()), (
        "docs/events.md is stale; regenerate it: "
        "uv run pivot events catalogue --write docs/events.md"
    )
