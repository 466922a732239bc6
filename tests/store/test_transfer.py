"""Export / import: exact round trips on both backends, all or nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pivot.events import EventStore
from pivot.events.pipeline import StageFailed, StageStarted, WaveStarted
from pivot.events.transfer import ImportFileError, NonEmptyStoreError, export_jsonl, import_jsonl
from pivot.events.watchers import WatcherCreated

from testkit.pgserver import available as pg_available
from testkit.pgserver import fresh_database
from testkit.require import require


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def locations(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, str]:
    if request.param == "sqlite":
        return str(tmp_path / "a.db"), str(tmp_path / "b.db")
    require(pg_available(), "PostgreSQL server (Debian package postgresql)")
    return fresh_database(), fresh_database()


def _fill(store: EventStore) -> None:
    store.append([WaveStarted(wave_id="w", trigger="run", stages=("a", "b"), at=1.25)])
    store.append([StageStarted(stage=f"s{i}", at=1763906700.123456 + i) for i in range(7)])
    store.append([
        StageFailed(stage="a", error="Trace: 'é' ✓ \"q\"\nline", duration=0.1 + 0.2),
        WatcherCreated(watcher_id="w", name="n", job_id="1",
                       definition={"actions": [{"type": "x", "n": 1e-7}], "nested": {"k": None}}),
    ])  # fmt: skip


def _export(store: EventStore) -> str:
    out = io.StringIO()
    export_jsonl(store, out)
    return out.getvalue()


def test_export_import_export_is_byte_identical(locations: tuple[str, str]) -> None:
    source, target = locations
    with EventStore.open(source) as a:
        _fill(a)
        first = _export(a)
        events = list(a.read())
    with EventStore.open(target) as b:
        assert import_jsonl(b, io.StringIO(first)) == 10
        assert _export(b) == first
        assert list(b.read()) == events  # same seqs, same events
        # The imported store goes on numbering after the imported seqs.
        [seq] = b.append([StageStarted(stage="next")])
        assert seq == events[-1].seq + 1


def test_import_keeps_gaps_in_seqs(locations: tuple[str, str]) -> None:
    source, target = locations
    with EventStore.open(source) as a:
        _fill(a)
        lines = _export(a).splitlines(keepends=True)
    gapped = "".join(lines[:3] + lines[5:])  # seqs 1, 2, 3, 6, 7, ...
    with EventStore.open(target) as b:
        import_jsonl(b, io.StringIO(gapped))
        assert [r.seq for r in b.read()] == [1, 2, 3, 6, 7, 8, 9, 10]
        assert _export(b) == gapped


def test_import_refuses_a_non_empty_store(locations: tuple[str, str]) -> None:
    source, _ = locations
    with EventStore.open(source) as a:
        _fill(a)
        with pytest.raises(NonEmptyStoreError, match="already holds 10 events"):
            import_jsonl(a, io.StringIO(_export(a)))


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        ("{not json", "backup.jsonl:3: not JSON"),
        ('{"seq": 99}', "backup.jsonl:3: expected an object with keys"),
        ('{"seq":1,"stream":"00000000000000000000000000000001","position":1,"type":"x.y",'
         '"version":1,"data":{}}', "backup.jsonl:3: seq 1 does not follow 2"),
        ('{"seq":9,"stream":"00000000000000000000000000000001","position":1,"type":"no.such",'
         '"version":1,"data":{}}', "backup.jsonl:3: unknown event type 'no.such'"),
        ('{"seq":9,"stream":"zz","position":1,"type":"stage.started",'
         '"version":1,"data":{"stage":"a"}}', "backup.jsonl:3: stream 'zz' is not a UUID"),
    ],
)  # fmt: skip
def test_a_bad_line_is_reported_with_its_number_and_nothing_is_imported(
    tmp_path: Path, bad_line: str, message: str
) -> None:
    with EventStore.open(tmp_path / "a.db") as a:
        a.append([StageStarted(stage="x"), StageStarted(stage="y")])
        good = _export(a)
    with EventStore.open(tmp_path / "b.db") as b:
        with pytest.raises(ImportFileError, match=message):
            import_jsonl(b, io.StringIO(good + bad_line + "\n"), "backup.jsonl")
        assert b.last_seq() == 0  # the two good lines were rolled back too


def test_duplicate_stream_positions_are_refused(locations: tuple[str, str]) -> None:
    source, target = locations
    with EventStore.open(source) as a:
        a.append([StageStarted(stage="x")])
        line = _export(a)
    dup = line + line.replace('"seq":1', '"seq":2')
    with EventStore.open(target) as b:
        with pytest.raises(ImportFileError, match="same stream and position"):
            import_jsonl(b, io.StringIO(dup), "dup.jsonl")
        assert b.last_seq() == 0
