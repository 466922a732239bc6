"""`pivot watchers test` as a user runs it: what fires, and what holds each match back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from testkit.jobs_e2e import pivot


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pivot.toml").write_text('[actions.run_command]\nallow = ["echo"]\n')
    return tmp_path


def dry(project: Path, watcher: str, log: str, *extra: str) -> dict:  # type: ignore[type-arg]
    (project / "w.yaml").write_text(watcher)
    (project / "job.out").write_text(log)
    out = pivot(project, "watchers", "test", "w.yaml", "--log", "job.out", "--json", *extra)
    [result] = json.loads(out.stdout)
    return result  # type: ignore[no-any-return]


ONCE = """\
name: once
pattern: "OOM (\\\\d+)"
max_triggers: 1
actions:
  - type: log_event
    params: {message: "oom $1"}
"""


def test_matches_after_max_triggers_are_listed_as_not_acted_on(project: Path) -> None:
    result = dry(project, ONCE, "OOM 1\nOOM 2\nfine\nOOM 3\n")
    assert [(m["line_number"], m["held_back"]) for m in result["matches"]] == [
        (1, ""),
        (2, "not acted on: triggered (max_triggers 1 reached)"),
        (4, "not acted on: triggered (max_triggers 1 reached)"),
    ]
    assert result["matches"][2]["actions"] == []
    assert result["final_state"] == "triggered"
    text = pivot(project, "watchers", "test", "w.yaml", "--log", "job.out").stdout
    assert text.count("not acted on: triggered") == 2


def test_the_rate_limit_holds_back_outside_actions_only(project: Path) -> None:
    watcher = (
        "name: r\npattern: 'loss=(\\S+)'\nrate_limit_per_minute: 2\nactions:\n"
        "  - type: store_metric\n    params: {name: loss, value: $1}\n"
        "  - type: run_command\n    params: {command: 'echo $1'}\n"
    )
    result = dry(project, watcher, "".join(f"loss={i}\n" for i in range(5)))
    kinds = [[a["type"] for a in m["actions"]] for m in result["matches"]]
    assert kinds == [["store_metric", "run_command"]] * 2 + [["store_metric"]] * 3
    assert [m["held_back"] for m in result["matches"]][2:] == ["rate limit: run_command"] * 3
    assert result["matches"][4]["suppressed"][0].startswith("run_command: rate limit: 2 actions")


def test_a_false_condition_says_matched_condition_false(project: Path) -> None:
    watcher = (
        "name: gpu\npattern: 'GPU (\\d+): (\\d+)MB / (\\d+)MB'\n"
        "captures: [gpu_id, used, total]\ncondition: 'float(used) / float(total) > 0.9'\n"
        "actions:\n  - type: log_event\n    params: {message: 'GPU $gpu_id high'}\n"
    )
    result = dry(project, watcher, "GPU 0: 5000MB / 8000MB\nGPU 1: 7900MB / 8000MB\n")
    assert [(m["condition"], m["held_back"]) for m in result["matches"]] == [
        (False, "matched, condition false"),
        (True, ""),
    ]


def test_timer_ticks_show_timer_firings_and_their_rate_limit(project: Path) -> None:
    watcher = (
        "name: ckpt\npattern: 'Model initialized'\ntimer_mode_enabled: true\n"
        "timer_interval_seconds: 10\nrate_limit_per_minute: 2\nactions:\n"
        "  - type: run_command\n    params: {command: 'echo ckpt ${NOW}'}\n"
    )
    result = dry(project, watcher, "Model initialized\n", "--timer-ticks", "6")
    ticks = result["timer_ticks"]
    assert [t["tick"] for t in ticks] == [1, 2, 3, 4, 5, 6]
    fired = [bool(t["actions"]) for t in ticks]
    # The match (t=0) and tick 1 (t=10 s) use the two per minute; tick 6 (t=60 s) is a
    # minute after the match.
    assert fired == [True, False, False, False, False, True]
    assert ticks[1]["held_back"] == "rate limit: run_command"
    argv = ticks[0]["actions"][0]["params"]["argv"]
    assert argv[:2] == ["echo", "ckpt"] and argv[2].isdigit()
    off = dry(project, ONCE, "OOM 1\n", "--timer-ticks", "2")
    assert off["timer_ticks"] == [
        {"tick": 1, "at": off["timer_ticks"][0]["at"], "actions": [], "suppressed": [],
         "held_back": "timer mode is off (timer_mode_enabled: false)"}
    ]  # fmt: skip


def test_warnings_come_with_the_dry_run(project: Path) -> None:
    watcher = (
        "name: c\npattern: 'Model initialized'\nactions:\n  - type: run_command\n"
        "    params: {command: 'cp -r ./checkpoints ./backups/checkpoint_$(date +%s)'}\n"
    )
    result = dry(project, watcher, "Model initialized\n")
    messages = [w["message"] for w in result["warnings"]]
    assert len(messages) == 2
    assert messages[0].startswith("command substitution $(...) in")
    assert messages[1] == "'cp' is not on the run_command allowlist: the action will fail"
    text = pivot(project, "watchers", "test", "w.yaml", "--log", "job.out").stdout
    assert 'allow = ["echo", "cp"]' in text and "${NOW}" in text
