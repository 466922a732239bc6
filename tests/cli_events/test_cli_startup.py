"""A command loads only what it needs; `pivot --help` still lists every command.

Start-up time is measured in bench/rebuild_projections.py; these tests pin
the reasons it is short: `pivot stats` loads one command group, one event
domain (the watcher events its projection folds), neither pydantic nor
eventsourcing (reading an existing SQLite store needs only sqlite3).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from pivot.cli.app import COMMANDS, MODULES, app, modules_for
from pivot.events import EventStore
from pivot.events.watchers import WatcherCreated

PROBE = """
import sys
sys.argv = ["pivot", *sys.argv[1:]]
from pivot.cli.app import main
try:
    main()
except SystemExit as exc:
    code = exc.code
loaded = sorted(
    m for m in sys.modules
    if m in ("pydantic", "eventsourcing", "starlette", "uvicorn")
    or m.startswith(("pivot.cli.", "pivot.events.", "pivot.ui"))
)
print("LOADED", " ".join(loaded))
"""


def _probe(*args: str, cwd: Path) -> tuple[str, list[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    out, _, loaded = proc.stdout.rpartition("LOADED")
    return out, loaded.split()


def test_stats_loads_one_group_and_no_pydantic(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    with EventStore.open(db) as store:
        store.append([WatcherCreated(watcher_id="w-1", name="loss", job_id="42", at=1.0)])
    for _ in range(2):  # the first catches the stored projection up, the second reads it
        out, loaded = _probe("stats", "--json", "--store", str(db), cwd=tmp_path)
        assert '"total_watchers": 1' in out
        assert "pydantic" not in loaded
        assert "eventsourcing" not in loaded
        assert "pivot.cli.stats_cmd" in loaded
        others = {
            "pivot.cli.jobs_cmd",
            "pivot.cli.watch_cmd",
            "pivot.cli.pipeline_cmd",
            "pivot.cli.events_cmd",
            "pivot.cli.replay_cmd",
            "pivot.cli.why_cmd",
            "pivot.cli.ui_cmd",
        }
        assert not {"starlette", "uvicorn", "pivot.ui"} & set(loaded)
        assert not others & set(loaded)
        assert "pivot.events.watchers" in loaded
        assert not {"pivot.events.pipeline", "pivot.events.jobs", "pivot.events.actors"} & set(
            loaded
        )
    out, loaded = _probe("events", "--store", str(db), "-t", "watcher.*", "-n", "1", cwd=tmp_path)
    assert "watcher.created" in out
    assert "pydantic" not in loaded  # strings and in-range ints need no pydantic


def test_root_help_lists_every_command(tmp_path: Path) -> None:
    out, loaded = _probe("--help", cwd=tmp_path)
    commands = out.split("Commands:\n", 1)[1].splitlines()
    listed = {line.split()[0] for line in commands if line.startswith("  ") and line[2] != " "}
    assert set(COMMANDS) <= listed
    assert "pivot events --since 1h" in out  # the help teaches by example
    assert {f"pivot.cli.{m}" for m in MODULES} <= set(loaded)
    assert not {"starlette", "uvicorn", "pivot.ui"} & set(loaded)  # `pivot ui` imports them itself


def test_which_modules_argv_needs() -> None:
    assert modules_for(["stats", "--json"]) == ("stats_cmd",)
    assert modules_for(["events", "-n", "3"]) == ("events_cmd",)
    assert modules_for(["watchers", "list"]) == ("jobs_cmd",)
    assert modules_for([]) == modules_for(["--help"]) == modules_for(["nosuch"]) == MODULES


def test_numbers_are_still_checked_by_typer(tmp_path: Path) -> None:
    runner = CliRunner(env={"COLUMNS": "200"})
    bad = runner.invoke(app, ["events", "--store", str(tmp_path / "x.db"), "--limit", "many"])
    assert bad.exit_code == 2 and "Input should be a valid integer" in bad.stderr
    low = runner.invoke(app, ["events", "--store", str(tmp_path / "x.db"), "--limit", "0"])
    assert low.exit_code == 2 and "greater than or equal to 1" in low.stderr


def test_stats_on_a_caught_up_store_does_not_load_the_pipeline_events(tmp_path: Path) -> None:
    from pivot.events.pipeline import StageStarted, StageSucceeded

    db = tmp_path / "events.db"
    with EventStore.open(db) as store:
        store.append([StageStarted(stage="a", at=1.0), StageSucceeded(stage="a", duration=2.0)])
    out, loaded = _probe("stats", "--json", "--store", str(db), cwd=tmp_path)  # catches up
    assert '"runs": 1' in out
    out, loaded = _probe("stats", "--json", "--store", str(db), cwd=tmp_path)
    assert '"runs": 1' in out and '"p50": 2.0' in out
    assert "pivot.events.pipeline" not in loaded and "eventsourcing" not in loaded


def test_pipeline_stats_folds_the_stage_and_wave_events_by_their_names() -> None:
    from pivot.events import pipeline as ev
    from pivot.projections.pipeline_stats import TYPES

    stages = (ev.StageQueued, ev.StageStarted, ev.StageSucceeded, ev.StageFailed, ev.StageSkipped)
    stage_types = {c.TYPE for c in (*stages, ev.StageCancelled)}
    assert set(TYPES) == stage_types | {ev.WaveStarted.TYPE}


def test_a_no_op_run_and_status_load_no_pydantic_nor_the_watcher_definitions(
    tmp_path: Path,
) -> None:
    """`pivot run`'s defaults (--slurm-jobs 100) need no coercion, and a pipeline
    without watchers does not import what parses them (0.3 s between them)."""
    (tmp_path / "pipeline.py").write_text(
        "from pathlib import Path\nfrom typing import Annotated\n"
        "from pivot import Out, Pipeline\n\npipeline = Pipeline()\n\n\n"
        "@pipeline.stage\ndef s(out: Annotated[Path, Out('o.txt')]) -> None:\n"
        "    out.write_text('x')\n"
    )
    probe = PROBE.replace('m in ("pydantic",', 'm in ("pydantic", "pivot.jobs.definition",')
    for args in (("run",), ("run",), ("status",)):
        proc = subprocess.run(
            [sys.executable, "-c", probe, *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            check=True,
        )
        loaded = proc.stdout.rpartition("LOADED")[2].split()
        assert "pydantic" not in loaded, args
        assert "pivot.jobs.definition" not in loaded, args
    assert "everything up to date" in proc.stdout
