"""Watcher YAML: defaults, validation, and errors that name the file and line."""

from __future__ import annotations

import pytest

from pivot.jobs.definition import (
    DefinitionError,
    WatcherDefinition,
    definition_from_dict,
    parse_watchers,
)

FULL = """\
name: "CUDA OOM"
pattern: "(CUDA out of memory|OutOfMemoryError) at step (\\\\d+)"
captures: ["error", "step"]
condition: "int(step) > 10"
output_type: both
interval_seconds: 5
max_triggers: 2
max_failures: 2
timer_mode_enabled: false
timer_interval_seconds: 60
trigger_on_job_end: false
job_end_states: [completed, FAILED]
actions:
  - type: cancel_job
  - type: log_event
    params: {message: "OOM on ${JOB_ID}: $error"}
"""


def test_full_definition_parses() -> None:
    [d] = parse_watchers(FULL, "oom.yaml")
    assert d.name == "CUDA OOM"
    assert d.captures == ("error", "step")
    assert d.output_type == "both"
    assert d.interval_seconds == 5.0
    assert d.max_triggers == 2
    assert d.job_end_states == ("completed", "failed")
    assert [a.type for a in d.actions] == ["cancel_job", "log_event"]
    assert d.actions[1].params == {"message": "OOM on ${JOB_ID}: $error"}
    assert definition_from_dict(d.to_dict()) == d


def test_defaults_are_the_dataclass_defaults() -> None:
    [d] = parse_watchers("name: x\npattern: y\nactions: [{type: log_event, params: {message: m}}]")
    assert d == WatcherDefinition(name="x", pattern="y", actions=d.actions)
    assert (d.output_type, d.interval_seconds, d.max_triggers, d.max_failures) == (
        "stdout",
        30.0,
        0,  # unlimited, as in ssync
        3,
    )
    assert d.job_end_states == ("completed", "failed", "timeout")
    assert d.rate_limit_per_minute == 10


def test_a_list_of_watchers() -> None:
    text = "- {name: a, pattern: a, actions: [{type: cancel_job}]}\n" * 2
    assert [d.name for d in parse_watchers(text)] == ["a", "a"]


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (FULL.replace("max_failures: 2", "max_failure: 2"), 8, "unknown key 'max_failure'"),
        (FULL.replace("output_type: both", "output_type: all"), 5, "output_type"),
        (FULL.replace("interval_seconds: 5", "interval_seconds: -1"), 6, "positive"),
        (FULL.replace("max_triggers: 2", "max_triggers: two"), 7, "whole number"),
        (FULL.replace("[completed, FAILED]", "[done]"), 12, "unknown job end state"),
        (FULL.replace("int(step) > 10", "step.__class__"), 4, "attribute access"),
        (FULL.replace("(CUDA out", "(?=CUDA out"), 2, "invalid pattern"),
        (FULL.replace('["error", "step"]', '["a", "b", "c"]'), 3, "captures"),
        (FULL.replace("type: cancel_job", "type: explode"), 14, "unknown action type"),
        (FULL.replace("{message:", "{mesage:"), 16, "unknown parameter 'mesage'"),
        (
            FULL.replace("timer_mode_enabled: false", "timer_mode_enabled: maybe"),
            9,
            "true or false",
        ),
        (FULL + "name: again\n", 17, "duplicate key"),
        (FULL.replace("name: ", "name: [unclosed"), 2, "invalid YAML"),
    ],
)
def test_mistakes_name_file_and_line(text: str, line: int, message: str) -> None:
    with pytest.raises(DefinitionError) as info:
        parse_watchers(text, "oom.yaml")
    assert str(info.value).startswith(f"oom.yaml:{line}: "), str(info.value)
    assert message in str(info.value)


def test_no_actions_is_an_error_not_a_default() -> None:
    with pytest.raises(DefinitionError, match="missing required key 'actions'"):
        parse_watchers("name: x\npattern: y\n", "w.yaml")
    with pytest.raises(DefinitionError, match="non-empty list"):
        parse_watchers("name: x\npattern: y\nactions: []\n", "w.yaml")


def test_empty_file() -> None:
    with pytest.raises(DefinitionError, match="empty"):
        parse_watchers("", "w.yaml")


def test_line_offset_for_embedded_blocks() -> None:
    with pytest.raises(DefinitionError, match=r"^job.sh:12: unknown key"):
        parse_watchers("name: x\nbogus: 1\n", "job.sh", line_offset=10)


def test_python_tags_are_not_loaded() -> None:
    with pytest.raises(DefinitionError, match="invalid YAML"):
        parse_watchers("name: !!python/object/apply:os.system ['id']\npattern: x\n")


@pytest.mark.parametrize(
    "command",
    ["$1 --force", "${prog} x", "echo 'unclosed"],
)
def test_run_command_program_cannot_be_a_placeholder(command: str) -> None:
    text = (
        "name: x\npattern: (.*)\nactions:\n"
        f"  - type: run_command\n    params: {{command: {command!r}}}\n"
    )
    with pytest.raises(DefinitionError, match="run_command"):
        parse_watchers(text, "w.yaml")


def test_resubmit_params_checked() -> None:
    base = "name: x\npattern: y\nactions:\n  - type: resubmit\n    params: {P}\n"
    [d] = parse_watchers(
        base.replace("P", "modifications: {mem: 64G, time: '2:00:00'}, remaining_resubmits: 2")
    )
    assert d.actions[0].params["remaining_resubmits"] == 2
    with pytest.raises(DefinitionError, match=">= 0"):
        parse_watchers(base.replace("P", "remaining_resubmits: -1"))


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("OOM: $eror", "placeholder $eror refers to name 'eror'"),
        ("OOM: ${7}", "placeholder $7 refers to group 7"),
        ("OOM: $3", "placeholder $3 refers to group 3"),
    ],
)
def test_placeholders_that_can_never_get_a_value_are_definition_errors(
    template: str, message: str
) -> None:
    text = (
        "name: oom\npattern: '(\\w+) at (?P<step>\\d+)'\ncaptures: [error]\n"
        f"actions:\n  - type: log_event\n    params: {{message: '{template}'}}\n"
    )
    with pytest.raises(DefinitionError) as info:
        parse_watchers(text, "oom.yaml")
    assert str(info.value).startswith("oom.yaml:4: "), str(info.value)
    assert message in str(info.value)


def test_known_placeholders_and_escaped_dollars_are_accepted() -> None:
    text = (
        "name: oom\npattern: '(\\w+) at (?P<step>\\d+)'\ncaptures: [error]\n"
        "actions:\n  - type: log_event\n    params: {message: "
        "'$0 $1 $2 $error ${step} ${JOB_ID} $HOSTNAME ${WATCHER_NAME} $JOB_STATE costs $$5'}\n"
    )
    [definition] = parse_watchers(text, "oom.yaml")
    assert definition.actions[0].params["message"].endswith("costs $$5")
