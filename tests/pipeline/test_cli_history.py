"""History that answers questions, through the real CLI: replay, why, stats."""

from __future__ import annotations

import json
from pathlib import Path

from testkit.pipeline_project import HEADER, Project, make_project

PIPELINE = (
    HEADER
    + """
@pipeline.stage
def divide(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("ratio.txt")]) -> None:
    n = int(src.read_text())
    out.write_text(str(10 / n))

@pipeline.stage
def report(src: Annotated[Path, Dep("ratio.txt")], out: Annotated[Path, Out("report.txt")]) -> None:
    out.write_text("ratio " + src.read_text())
"""
)


def _project(tmp_path: Path) -> Project:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    project.write("in.txt", "0")
    return project


def test_replay_after_a_fixed_failure_shows_no_old_error(tmp_path: Path) -> None:
    project = _project(tmp_path)
    project.cli("run", ok=False)
    failed = json.loads(project.cli("replay", "--json", "-p", "pipeline_status").stdout)
    divide = failed["projections"]["pipeline_status"]["stages"]["divide"]
    assert divide["state"] == "failed" and "ZeroDivisionError" in divide["last_error"]
    project.write("in.txt", "4")
    project.cli("run")
    fixed = json.loads(project.cli("replay", "--json", "-p", "pipeline_status").stdout)
    divide = fixed["projections"]["pipeline_status"]["stages"]["divide"]
    assert divide["state"] == "succeeded" and divide["last_error"] == ""
    text = project.cli("replay", "-p", "pipeline_status").stdout
    assert "ZeroDivisionError" not in text and "succeeded" in text


def test_why_after_a_no_op_run_explains_the_last_real_run(tmp_path: Path) -> None:
    project = _project(tmp_path)
    project.write("in.txt", "2")
    project.cli("run")  # run 3: divide never ran
    project.write("in.txt", "0")
    project.cli("run", ok=False)  # run 2: in.txt changed, divide fails (ZeroDivisionError)
    project.write("in.txt", "4")
    project.cli("run")  # run 1: divide succeeds
    project.cli("run")  # a no-op: divide skipped, up to date
    out = project.cli("why", "divide").stdout
    lines = out.splitlines()
    assert lines[0].startswith("divide succeeded at ")
    assert lines[1].startswith("  since then: 1 skip; the latest: skipped at ")
    assert lines[1].endswith(": up to date")
    assert "queued because:" in out
    doc = json.loads(project.cli("why", "divide", "--json").stdout)
    assert (doc["outcome"], doc["run"], doc["runs_seen"]) == ("succeeded", 1, 1)
    assert doc["later"]["skips"] == 1 and doc["later"]["latest"]["detail"] == "up to date"
    earlier = project.cli("why", "divide", "--run", "2").stdout
    assert earlier.startswith("divide failed at ") and "ZeroDivisionError" in earlier
    assert "run 2 counting back from the last" in earlier
    assert "since then: 1 later run and 1 skip;" in earlier
    assert "dep changed: in.txt" in earlier  # why it was queued that time
    first = json.loads(project.cli("why", "divide", "--run", "3", "--json").stdout)
    assert (first["outcome"], first["reasons"]) == ("succeeded", ["never run"])
    proc = project.cli("why", "divide", "--run", "4", ok=False)
    assert (proc.returncode, proc.stdout) == (1, "")
    assert proc.stderr == (
        "error: stage 'divide' has only 3 runs in the event log (asked for --run 4)\n"
    )


def test_stats_counts_runs_failures_durations_and_triggers(tmp_path: Path) -> None:
    project = _project(tmp_path)
    project.cli("run", ok=False)  # divide fails (never run); report skipped
    for n in ("4", "5"):
        project.write("in.txt", n)
        project.cli("run")  # divide and report run: in.txt changed
    project.cli("run")  # a no-op wave
    doc = json.loads(project.cli("stats", "--json").stdout)
    pipeline = doc["pipeline"]
    stages = {s["stage"]: s for s in pipeline["stages"]}
    divide, report = stages["divide"], stages["report"]
    assert (divide["runs"], divide["succeeded"], divide["failed"], divide["skipped"]) == (
        3,
        2,
        1,
        1,
    )
    assert (report["runs"], report["succeeded"], report["skipped"]) == (2, 2, 2)
    assert divide["last_outcome"] == "skipped"
    assert 0 < divide["p50"] <= divide["p95"]
    assert divide["triggers"][0] == {"trigger": "never run", "count": 2}
    assert {"trigger": "dep in.txt", "count": 1} in divide["triggers"]
    # queued three times (the first time skipped when divide failed), run twice
    assert report["triggers"][0] == {"trigger": "upstream divide", "count": 3}
    waves = pipeline["waves"]
    assert waves["total"] == 4 and waves["by_trigger"] == {"run": 4}
    assert waves["by_day"][-1]["waves"] == 4 and len(waves["by_day"]) == 7
    assert doc["watchers"]["total_watchers"] == 0
    text = project.cli("stats").stdout
    lines = text.splitlines()
    [row] = [line for line in lines if line.startswith(" divide ") or line.startswith("divide ")]
    assert row.split()[:4] == ["divide", "3", "1", "skipped"]
    assert "upstream divide x3" in text and "waves" in text and "busiest watchers" in text
