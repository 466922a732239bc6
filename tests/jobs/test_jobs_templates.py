"""The built-in template catalogue: every template renders to what `watchers add FILE` parses."""

from __future__ import annotations

import pytest

from pivot.jobs.definition import WatcherDefinition, parse_watchers
from pivot.jobs.templates import (
    Template,
    TemplateError,
    TemplateParam,
    get_template,
    templates,
)

WANTED = {"error-detection", "progress", "gpu-memory", "training-loss", "oom-resubmit", "nan-loss"}


def test_the_catalogue_has_the_six_templates_with_documented_params() -> None:
    names = {t.name for t in templates()}
    assert names == WANTED
    for t in templates():
        assert t.title and t.description
        for p in t.params:
            assert p.description, (t.name, p.name)


@pytest.mark.parametrize("name", sorted(WANTED))
def test_defaults_render_to_the_same_watcher_as_its_yaml_parsed_as_a_file(name: str) -> None:
    t = get_template(name)
    rendered = t.render({})
    assert isinstance(rendered, WatcherDefinition)
    (from_file,) = parse_watchers(t.example_yaml(), "example.yaml")
    assert rendered == from_file


def test_values_fill_the_holes_and_numbers_become_numbers() -> None:
    gpu = get_template("gpu-memory").render({"threshold": "0.5"})
    assert gpu.condition == "float(used) / float(total) > 0.5"
    cond = gpu.compiled_condition()
    assert cond is not None
    assert cond.evaluate({"used": "600", "total": "1000"}) is True
    oom = get_template("oom-resubmit").render({"memory": "128G", "resubmits": "2"})
    resubmit = next(a for a in oom.actions if a.type == "resubmit")
    assert resubmit.params == {"modifications": {"mem": "128G"}, "remaining_resubmits": 2}
    errors = get_template("error-detection").render({"max_triggers": "3"})
    assert errors.max_triggers == 3


def test_rendered_patterns_match_the_lines_they_are_for() -> None:
    samples = {
        "gpu-memory": b"GPU 0: 7600MB / 8000MB",
        "training-loss": b"Epoch 3, Loss: 0.4521",
        "progress": b"Progress: 50%",
        "oom-resubmit": b"RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "nan-loss": b"step 120 loss=nan",
        "error-detection": b"Traceback (most recent call last):",
    }
    for name, line in samples.items():
        assert get_template(name).render({}).compiled().match_line(line) is not None, name


def test_unknown_missing_and_ill_formed_parameters_name_the_parameter() -> None:
    with pytest.raises(TemplateError, match=r"no parameter 'treshold'.*threshold"):
        get_template("gpu-memory").render({"treshold": "0.5"})
    with pytest.raises(TemplateError, match=r"'threshold' must be a number"):
        get_template("gpu-memory").render({"threshold": "high"})
    with pytest.raises(TemplateError, match=r"'memory' must be a memory size"):
        get_template("oom-resubmit").render({"memory": "lots"})
    required = Template(
        "t",
        "T",
        "a template with a required hole",
        (TemplateParam("pattern", "what to match", None, "regex"),),
        {"name": "t", "pattern": "{{pattern}}", "actions": [{"type": "log_event",
                                                           "params": {"message": "$0"}}]},
    )  # fmt: skip
    with pytest.raises(TemplateError, match=r"needs parameter 'pattern'.*--set pattern="):
        required.render({})
    assert required.render({"pattern": "x+"}).pattern == "x+"
    with pytest.raises(TemplateError, match=r"unknown template 'nope'.*gpu-memory"):
        get_template("nope")


def test_a_value_is_text_in_a_field_never_yaml_that_adds_keys_or_actions() -> None:
    evil = "x\nactions:\n  - type: run_command\n    params: {command: rm -rf /}"
    rendered = get_template("error-detection").render({"pattern": evil})
    assert rendered.pattern == evil
    assert [a.type for a in rendered.actions] == ["log_event"]


def test_a_bad_regex_value_is_a_template_error_saying_so() -> None:
    with pytest.raises(TemplateError, match=r"template error-detection.*--set"):
        get_template("error-detection").render({"pattern": "(unclosed"})
