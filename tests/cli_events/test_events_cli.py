"""`pivot events / replay / why / stats` driven through the real typer app."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pivot.cli.app import app
from pivot.events import EventStore
from pivot.events.base import Event
from pivot.events.pipeline import (
    ChangesDetected,
    StageFailed,
    StageQueued,
    StageStarted,
    StageSucceeded,
    WaveStarted,
)
from pivot.events.watchers import ActionRequested, ActionSucceeded, WatcherCreated, WatcherMatched


def _log() -> list[Event]:
    return [
        ChangesDetected(batch_id="b1", kind="data", paths=("data/raw.csv", "notes.md"), count=2,
                        correlation_id="b1", at=1000.0),
        WaveStarted(wave_id="w1", trigger="change", stages=("prep", "train"),
                    correlation_id="b1", at=1001.0),
        StageQueued(stage="prep", reasons=("dep changed: data/raw.csv",), correlation_id="w1",
                    at=1002.0),
        StageStarted(stage="prep", correlation_id="w1", at=1003.0),
        StageSucceeded(stage="prep", duration=1.5, correlation_id="w1", at=1004.5),
        StageStarted(stage="train", correlation_id="w1", at=1005.0),
        StageFailed(stage="train", error="ValueError: nan", correlation_id="w1", at=1006.0),
        WatcherCreated(watcher_id="w-1", name="loss", job_id="42", at=2000.0),
        WatcherMatched(watcher_id="w-1", match_id="m1", line="loss=nan", at=2001.0),
        ActionRequested(watcher_id="w-1", action_id="a1", action_type="cancel",
                        correlation_id="m1", at=2002.0),
        ActionSucceeded(watcher_id="w-1", action_id="a1", action_type="cancel",
                        correlation_id="m1", at=2003.0),
    ]  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project (pipeline.py at its root) with a recorded log; cwd is a subdirectory."""
    monkeypatch.delenv("PIVOT_EVENT_STORE", raising=False)
    (tmp_path / "pipeline.py").write_text("")
    with EventStore.open(tmp_path / ".pivot" / "events.db") as store:
        store.append(_log())
    sub = tmp_path / "src" / "deep"
    sub.mkdir(parents=True)
    monkeypatch.chdir(sub)
    return tmp_path


def run(*args: str, code: int = 0) -> tuple[str, str]:
    result = CliRunner().invoke(app, list(args), catch_exceptions=False, env={"COLUMNS": "200"})
    assert result.exit_code == code, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    return result.stdout, result.stderr


def _json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines()]


def test_events_table_found_from_a_subdirectory(project: Path) -> None:
    out, _ = run("events")
    lines = out.splitlines()
    assert lines[0].split() == ["seq", "time", "type", "subject", "actor", "details"]
    assert len(lines) == 12
    assert "stage.failed" in lines[7] and "train" in lines[7] and "ValueError: nan" in lines[7]


def test_events_json_with_filters(project: Path) -> None:
    out, _ = run("events", "--json", "--type", "stage.*", "--stage", "train")
    rows = _json_lines(out)
    assert [(r["seq"], r["type"]) for r in rows] == [(6, "stage.started"), (7, "stage.failed")]
    data = rows[1]["data"]
    assert isinstance(data, dict)
    assert {k: data[k] for k in ("stage", "error", "duration")} == {
        "stage": "train",
        "error": "ValueError: nan",
        "duration": 0.0,
    }
    assert not {"at", "actor", "correlation_id"} & set(data)
    out, _ = run("events", "--json", "--watcher", "w-1", "--type", "action.*")
    assert [r["seq"] for r in _json_lines(out)] == [10, 11]
    out, _ = run("events", "--json", "--since", "@1003", "--until", "@1005")
    assert [r["seq"] for r in _json_lines(out)] == [4, 5, 6]
    # A wave is about every stage it runs.
    out, _ = run("events", "--json", "--stage", "prep", "-n", "2")
    assert [r["seq"] for r in _json_lines(out)] == [4, 5]


def test_limit_shows_the_newest(project: Path) -> None:
    out, _ = run("events", "--json", "--limit", "3")
    assert [r["seq"] for r in _json_lines(out)] == [9, 10, 11]


def test_user_mistakes_are_one_line_errors(project: Path) -> None:
    _, err = run("events", "--type", "stage.bogus", code=1)
    assert err.startswith("error: no event type matches 'stage.bogus'")
    _, err = run("events", "--since", "last tuesday", code=1)
    assert "cannot read 'last tuesday' as a time" in err
    _, err = run("events", "--store", str(project / "nope.db"), code=1)
    assert "no event store at" in err
    _, err = run("replay", "--projection", "nope", code=1)
    assert "unknown projection 'nope'" in err
    _, err = run("why", "nosuch", code=2)
    assert "unknown stage 'nosuch' (known stages: prep, train)" in err
    # str.isdigit() is True for '²', which int() refuses: no ValueError traceback.
    _, err = run("replay", "--until", "²", code=1)
    assert err.startswith("error: cannot read '²' as a time") and "Traceback" not in err


def test_corrupt_file_and_unreachable_postgres_are_clear_errors(
    project: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not sqlite at all" * 100)
    _, err = run("stats", "--store", str(bad), code=1)
    assert err.startswith(f"error: the event log {bad} is damaged (not a SQLite database)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nobody listens there once closed
    _, err = run("events", "--store", f"postgresql://u:secret@127.0.0.1:{port}/db", code=1)
    assert "cannot reach the PostgreSQL event store postgresql://u:***@127.0.0.1" in err
    assert "secret" not in err


def test_a_damaged_row_is_a_one_line_error(project: Path) -> None:
    db = project / ".pivot" / "events.db"
    with EventStore.open(db) as store, store.backend.transaction() as cur:
        cur.execute("UPDATE stored_events SET state = ? WHERE rowid = 9", (b"garbage",))
    for command in (["stats"], ["events"], ["replay"]):  # watcher.matched is in all three
        _, err = run(*command, code=1)
        assert err.startswith("error: event #9 (watcher.matched)"), err
        assert "not a pivot event" in err
        assert "Traceback" not in err


def test_store_location_precedence(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = project / "store" / "other.db"
    with EventStore.open(other) as store:
        store.append([StageStarted(stage="elsewhere")])
    (project / "pivot.toml").write_text('event_store = "store/other.db"\n')
    # pivot.toml (relative to the project root) beats the default...
    out, _ = run("events", "--json")
    assert len(_json_lines(out)) == 1
    # ...the environment beats pivot.toml, and --store beats everything.
    monkeypatch.setenv("PIVOT_EVENT_STORE", str(project / ".pivot" / "events.db"))
    out, _ = run("events", "--json")
    assert len(_json_lines(out)) == 11
    out, _ = run("events", "--json", "--store", str(other))
    assert len(_json_lines(out)) == 1
    monkeypatch.delenv("PIVOT_EVENT_STORE")
    (project / "pivot.toml").write_text('name = "x"\nevent_store = 3\n')
    _, err = run("events", code=1)
    assert "pivot.toml:2: event_store must be a path or a postgresql:// URL" in err


def test_export_import_round_trip_and_refusal(project: Path, tmp_path: Path) -> None:
    dump = tmp_path / "dump.jsonl"
    _, err = run("events", "export", str(dump))
    assert "exported 11 events" in err
    copy = tmp_path / "copy.db"
    _, err = run("events", "import", str(dump), "--store", str(copy))
    assert "imported 11 events" in err
    again = tmp_path / "again.jsonl"
    run("events", "--store", str(copy), "export", str(again))
    assert again.read_bytes() == dump.read_bytes()
    _, err = run("events", "import", str(dump), "--store", str(copy), code=1)
    assert "already holds 11 events; import only into an empty store" in err
    dump.write_text(dump.read_text() + "garbage\n")
    _, err = run("events", "import", str(dump), "--store", str(tmp_path / "fresh.db"), code=1)
    assert f"{dump}:12: not JSON" in err


def test_replay_until_and_verify(project: Path) -> None:
    out, _ = run("replay", "--until", "5", "--projection", "pipeline_status", "--json")
    doc = json.loads(out)
    assert doc["seq"] == 5 and list(doc["projections"]) == ["pipeline_status"]
    assert doc["projections"]["pipeline_status"]["stages"]["prep"]["state"] == "succeeded"
    assert "train" not in doc["projections"]["pipeline_status"]["stages"]
    out, _ = run("replay", "--until", "@1500", "--json")
    assert json.loads(out)["projections"]["watcher_stats"]["total_events"] == 0
    out, _ = run("replay")
    assert "pipeline status" in out and "ValueError: nan" in out and "busiest watchers" in out
    run("stats")  # stores watcher_stats
    out, _ = run("replay", "--verify")
    assert "watcher_stats: ok (position 11; equals its rebuild from the log)" in out
    with (
        EventStore.open(project / ".pivot" / "events.db") as store,
        store.backend.transaction() as cur,
    ):
        cur.execute("UPDATE pivot_projections SET state = replace(state, '\"loss\"', '\"LOSS\"')")
    out, _ = run("replay", "--verify", code=1)
    assert "watcher_stats: differs" in out
    assert '$.watchers.w-1.name: stored "LOSS", the log gives "loss"' in out


def test_why_text_and_json(project: Path) -> None:
    out, _ = run("why", "prep")
    assert "prep succeeded" in out
    assert "dep changed: data/raw.csv" in out
    assert "data/raw.csv  <- dep" in out
    assert "chain: stage.succeeded #5 -> wave.started #2 -> changes.detected #1" in out
    doc = json.loads(run("why", "train", "--json")[0])
    assert doc["outcome"] == "failed" and doc["detail"] == "ValueError: nan"
    assert doc["cause"]["paths"] == ["data/raw.csv", "notes.md"]


def test_stats_reads_the_stored_projection_not_the_log(project: Path) -> None:
    both = json.loads(run("stats", "--json")[0])
    doc = both["watchers"]
    assert doc["total_watchers"] == 1 and doc["total_events"] == 4
    assert doc["events_by_action"]["cancel"] == {
        "total": 1, "success": 1, "failed": 0, "suppressed": 0, "interrupted": 0, "pending": 0
    }  # fmt: skip
    assert doc["top_watchers"] == [{"id": "w-1", "name": "loss", "job": "42", "events": 4}]
    # With the log's rows gone, the stored projection still answers.
    with (
        EventStore.open(project / ".pivot" / "events.db") as store,
        store.backend.transaction() as cur,
    ):
        cur.execute("DELETE FROM stored_events")
    assert json.loads(run("stats", "--json")[0]) == both
    out, _ = run("stats")
    assert "busiest watchers" in out and "cancel" in out


def test_catalogue_command(tmp_path: Path) -> None:
    out, _ = run("events", "catalogue")
    assert out.startswith("# Event catalogue")
    page = tmp_path / "events.md"
    run("events", "catalogue", "--write", str(page))
    assert page.read_text() == out
    run("events", "catalogue", "--check", str(page))
    page.write_text(out + "x")
    _, err = run("events", "catalogue", "--check", str(page), code=1)
    assert "is stale" in err
    rows = json.loads(run("events", "catalogue", "--json")[0])
    assert {"stage.failed", "watcher.matched", "actor.crashed"} <= {r["type"] for r in rows}


def test_outside_text_is_shown_literally(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A stage's error text and a job's output line are outside text: rich
    # markup in them is shown as written (an unbalanced "[/]" used to crash),
    # terminal escapes are made visible.
    monkeypatch.delenv("PIVOT_EVENT_STORE", raising=False)
    (tmp_path / "pipeline.py").write_text("")
    with EventStore.open(tmp_path / ".pivot" / "events.db") as store:
        store.append(
            [
                StageFailed(stage="s[/]", error="RuntimeError: [/] [bold]x\x1b[2J", at=1.0),
                WatcherMatched(watcher_id="w", match_id="m", line="[link=http://e]y[/]", at=2.0),
            ]
        )
    monkeypatch.chdir(tmp_path)
    out, _ = run("events")
    assert "RuntimeError: [/] [bold]x\\x1b[2J" in out
    assert "s[/]" in out and "[link=http://e]y[/]" in out
    assert "\x1b" not in out


def test_unknown_names_are_errors_that_say_what_exists(project: Path) -> None:
    _, err = run("events", "--stage", "nosuch", code=2)
    assert err == "error: unknown stage 'nosuch' (known stages: prep, train)\n"
    _, err = run("events", "--watcher", "nosuch", "--follow", code=1)
    assert err.startswith("error: unknown watcher 'nosuch' (known watchers: w-1)")
    _, err = run("why", "nosuch", code=2)
    assert err == "error: unknown stage 'nosuch' (known stages: prep, train)\n"
    _, err = run("replay", "--projection", "nosuch", code=1)
    assert "unknown projection 'nosuch' (known: pipeline_stats, pipeline_status" in err
    out, _ = run("events", "--stage", "prep", "--since", "2999-01-01T00:00")  # known: no error
    assert out == ""


PIPELINE = """
from pathlib import Path
from typing import Annotated

from pivot import Out, Pipeline

pipeline = Pipeline()

@pipeline.stage
def fresh(out: Annotated[Path, Out("fresh.txt")]) -> None:
    out.write_text("x")
"""


def test_a_stage_of_the_pipeline_that_never_ran_is_known(project: Path) -> None:
    (project / "pipeline.py").write_text(PIPELINE)
    out, _ = run("events", "--stage", "fresh")
    assert out == ""
    _, err = run("why", "fresh", code=1)
    assert err == "error: stage 'fresh' has not run yet: the event log has no event about it\n"
    _, err = run("events", "--stage", "nosuch", code=2)
    assert err == "error: unknown stage 'nosuch' (known stages: fresh, prep, train)\n"


def test_piped_table_keeps_each_event_on_one_line(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Into a pipe (`pivot events | grep`), rich would assume 80 columns and
    # squeeze the details column to a sliver; each event stays on one line.
    monkeypatch.delenv("COLUMNS", raising=False)
    result = CliRunner().invoke(app, ["events"], catch_exceptions=False)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["seq", "time", "type", "subject", "actor", "details"]
    assert len(lines) == 12
    assert any("stage.failed" in line and "ValueError: nan" in line for line in lines)


def test_why_follows_upstream_reasons_all_the_way_down(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PIVOT_EVENT_STORE", raising=False)
    (tmp_path / "pipeline.py").write_text("")
    with EventStore.open(tmp_path / ".pivot" / "events.db") as store:
        store.append(
            [
                WaveStarted(wave_id="w", trigger="run", stages=("a", "b", "c"), correlation_id="w"),
                StageQueued(stage="a", reasons=("dep changed: raw.csv",), correlation_id="w"),
                StageQueued(stage="b", reasons=("upstream will run: a",), correlation_id="w"),
                StageQueued(stage="c", reasons=("upstream will run: b",), correlation_id="w"),
                StageSucceeded(stage="c", duration=0.1, correlation_id="w"),
            ]
        )
    monkeypatch.chdir(tmp_path)
    lines = [line.strip() for line in run("why", "c")[0].splitlines()]
    start = lines.index("upstream will run: b")
    assert lines[start : start + 5] == [
        "upstream will run: b",
        "b ran because:",
        "upstream will run: a",
        "a ran because:",
        "dep changed: raw.csv",
    ]
