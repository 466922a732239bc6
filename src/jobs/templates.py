"""Built-in watcher templates: one catalogue for ``pivot watchers templates`` and the web page.

A :class:`Template` is a watcher definition with a few named holes
(:class:`TemplateParam`). :meth:`Template.render` fills them and returns
exactly what ``pivot watchers add FILE`` would have parsed from a file: the
filled-in watcher goes through :func:`pivot.jobs.definition.parse_watchers`,
so a template can never produce a watcher a file could not.

Rules:

- a parameter with ``default=None`` must be given; every other one falls
  back to its default;
- a value that is not a parameter of the template, a missing required one,
  or a value of the wrong kind (``number``: a decimal number; ``size``: a
  Slurm memory size such as ``64G``) is a :class:`TemplateError` naming the
  parameter;
- a value is put into the text of the watcher's fields (``{{name}}`` in the
  body below), never into YAML syntax, so a value cannot add keys or actions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from pivot.jobs.definition import DefinitionError, WatcherDefinition, parse_watchers

__all__ = ["Template", "TemplateError", "TemplateParam", "get_template", "templates"]

_HOLE = re.compile(r"\{\{([a-z_]+)\}\}")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")
_SIZE = re.compile(r"^\d+[KMGT]?$")
KINDS = ("text", "number", "size", "regex")


class TemplateError(ValueError):
    """A template cannot be filled in as asked; the message names the template and parameter."""


@dataclass(frozen=True)
class TemplateParam:
    """One hole of a template: its name, what it means, its default (None: required).

    ``kind`` says what a value must look like: ``text``, ``regex``,
    ``number`` (decimal) or ``size`` (Slurm memory, e.g. ``64G``).
    """

    name: str
    description: str
    default: str | None
    kind: str = "text"


@dataclass(frozen=True)
class Template:
    """A named watcher with holes; :meth:`render` fills them."""

    name: str
    title: str
    description: str
    params: tuple[TemplateParam, ...]
    # The watcher as YAML data, with ``{{param}}`` holes in its strings.
    body: Mapping[str, Any] = field(default_factory=dict, repr=False)

    def render(self, values: Mapping[str, str]) -> WatcherDefinition:
        """The watcher with ``values`` (over the defaults) filled in, validated like a file.

        Raises :class:`TemplateError` for an unknown, missing or ill-formed
        parameter (naming it), or when the filled-in watcher is not valid
        (say, a ``pattern`` value RE2 cannot compile).
        """
        known = {p.name: p for p in self.params}
        for key in values:
            if key not in known:
                names = ", ".join(known) or "none"
                raise TemplateError(
                    f"template {self.name!r} has no parameter {key!r} (its parameters: {names})"
                )
        filled: dict[str, str] = {}
        for p in self.params:
            value = values.get(p.name, p.default)
            if value is None:
                raise TemplateError(
                    f"template {self.name!r} needs parameter {p.name!r} ({p.description}): "
                    f"--set {p.name}=VALUE"
                )
            _check_kind(self.name, p, str(value))
            filled[p.name] = str(value)
        data = _fill(self.body, filled, self._numbers())
        text = yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
        try:
            (definition,) = parse_watchers(text, f"template {self.name}")
        except DefinitionError as exc:
            raise TemplateError(f"{exc} (check the values given with --set)") from None
        return definition

    def example_yaml(self) -> str:
        """The template's YAML with every default filled in (``<name>`` for required holes)."""
        filled = {
            p.name: p.default if p.default is not None else f"<{p.name}>" for p in self.params
        }
        data = _fill(
            self.body, filled, self._numbers() - {k for k, v in filled.items() if v.startswith("<")}
        )
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)

    def _numbers(self) -> set[str]:
        return {p.name for p in self.params if p.kind == "number"}


def _check_kind(template: str, p: TemplateParam, value: str) -> None:
    shape = {"number": _NUMBER, "size": _SIZE}.get(p.kind)
    if not (shape.match(value) if shape is not None else value):
        want = {"number": "a number such as 0.9", "size": "a memory size such as 64G"}.get(
            p.kind, "a non-empty value"
        )
        raise TemplateError(
            f"template {template!r}: parameter {p.name!r} must be {want}, not {value!r}"
        )


def _fill(value: Any, filled: Mapping[str, str], numbers: set[str]) -> Any:
    """``value`` with its holes filled; a string that is one numeric hole becomes a number."""
    if isinstance(value, str):
        whole = _HOLE.fullmatch(value)
        if whole and whole.group(1) in numbers:
            text = filled[whole.group(1)]
            return float(text) if "." in text else int(text)
        return _HOLE.sub(lambda m: filled[m.group(1)], value)
    if isinstance(value, Mapping):
        return {k: _fill(v, filled, numbers) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fill(v, filled, numbers) for v in value]
    return value


def _p(name: str, description: str, default: str | None, kind: str = "text") -> TemplateParam:
    return TemplateParam(name, description, default, kind)


_CATALOGUE: tuple[Template, ...] = (
    Template(
        name="error-detection",
        title="Error detection",
        description="Record every error line the job prints; optionally cancel on the first.",
        params=(
            _p("pattern", "what counts as an error", r"(ERROR|Traceback|Exception)", "regex"),
            _p("max_triggers", "firings before the watcher stops (0 = unlimited)", "0", "number"),
        ),
        body={
            "name": "error detection",
            "pattern": "{{pattern}}",
            "max_triggers": "{{max_triggers}}",
            "actions": [{"type": "log_event", "params": {"message": "job ${JOB_ID}: $0"}}],
        },
    ),
    Template(
        name="progress",
        title="Progress",
        description="Store the job's progress percentage and log every STEP percent.",
        params=(
            _p("pattern", "one group: the percentage", r"Progress: (\d+)%", "regex"),
            _p("step", "log when the percentage is a multiple of this", "25", "number"),
        ),
        body={
            "name": "progress",
            "pattern": "{{pattern}}",
            "captures": ["progress"],
            "condition": "int(progress) % {{step}} == 0",
            "actions": [
                {"type": "store_metric", "params": {"name": "progress", "value": "$progress"}},
                {"type": "log_event", "params": {"message": "job ${JOB_ID}: $progress%"}},
            ],
        },
    ),
    Template(
        name="gpu-memory",
        title="GPU memory",
        description="Alert when a GPU's used memory goes above a fraction of its total.",
        params=(
            _p(
                "pattern",
                "three groups: GPU id, used MB, total MB",
                r"GPU (\d+): (\d+)MB / (\d+)MB",
                "regex",
            ),
            _p("threshold", "fraction of the total memory above which to alert", "0.9", "number"),
        ),
        body={
            "name": "GPU memory",
            "pattern": "{{pattern}}",
            "captures": ["gpu_id", "used", "total"],
            "condition": "float(used) / float(total) > {{threshold}}",
            "actions": [
                {
                    "type": "log_event",
                    "params": {"message": "GPU $gpu_id memory high: $used/$total MB"},
                },
            ],
        },
    ),
    Template(
        name="training-loss",
        title="Training loss",
        description="Store every epoch's loss as a metric series (pivot watchers metrics).",
        params=(
            _p(
                "pattern",
                "two groups: epoch, loss",
                r"Epoch (\d+), Loss: ([0-9.eE+-]+)",
                "regex",
            ),
            _p("metric", "name of the metric series", "train_loss"),
        ),
        body={
            "name": "training loss",
            "pattern": "{{pattern}}",
            "captures": ["epoch", "loss"],
            "actions": [
                {"type": "store_metric", "params": {"name": "{{metric}}", "value": "$loss"}}
            ],
        },
    ),
    Template(
        name="oom-resubmit",
        title="OOM: resubmit with more memory",
        description="On an out-of-memory error, cancel the job and submit it again with more "
        "memory.",
        params=(
            _p(
                "pattern",
                "what an out-of-memory error looks like",
                r"(CUDA out of memory|OutOfMemoryError|oom-kill|Out Of Memory)",
                "regex",
            ),
            _p("memory", "the new job's --mem", "64G", "size"),
            _p("resubmits", "how many times in a row it may resubmit", "1", "number"),
        ),
        body={
            "name": "OOM resubmit",
            "pattern": "{{pattern}}",
            "max_triggers": 1,
            "actions": [
                {"type": "cancel_job", "params": {"reason": "out of memory: $0"}},
                {
                    "type": "resubmit",
                    "params": {
                        "modifications": {"mem": "{{memory}}"},
                        "remaining_resubmits": "{{resubmits}}",
                    },
                },
            ],
        },
    ),
    Template(
        name="nan-loss",
        title="NaN loss: cancel",
        description="Cancel the job the first time its loss is NaN or infinite.",
        params=(
            _p(
                "pattern",
                "a NaN/inf loss line",
                r"(?i)loss[=:]?\s*(nan|[+-]?inf)",
                "regex",
            ),
        ),
        body={
            "name": "NaN loss",
            "pattern": "{{pattern}}",
            "max_triggers": 1,
            "actions": [
                {"type": "cancel_job", "params": {"reason": "loss is $1"}},
                {"type": "log_event", "params": {"message": "cancelled job ${JOB_ID}: $0"}},
            ],
        },
    ),
)


def templates() -> tuple[Template, ...]:
    """Every built-in template, in catalogue order."""
    return _CATALOGUE


def get_template(name: str) -> Template:
    """A template by name; :class:`TemplateError` listing the names if there is none."""
    for t in _CATALOGUE:
        if t.name == name:
            return t
    names = ", ".join(t.name for t in _CATALOGUE)
    raise TemplateError(
        f"unknown template {name!r} (templates: {names}; see `pivot watchers templates`)"
    )
