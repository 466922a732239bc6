"""Watcher definitions: the YAML format, its defaults and its validation.

Every entry point (``pivot watchers add``, ``pivot watchers test``, blocks
embedded in sbatch scripts, the ``resubmit`` action) goes through
:func:`parse_watchers`, so defaults are the same everywhere: they are the
field defaults of :class:`WatcherDefinition` and :class:`ActionSpec`.
A mistake is a :class:`DefinitionError` naming the file and line.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from pivot.jobs.action_spec import ActionSpec, parse_action
from pivot.jobs.condition import Condition, ConditionError, compile_condition
from pivot.jobs.patterns import CompiledPattern, PatternError, compile_pattern
from pivot.jobs.slurm import END_STATES_FOR_WATCHERS
from pivot.jobs.substitute import placeholders
from pivot.jobs.yaml_lines import KeyProblem, Lined, line_of, load_with_lines

__all__ = [
    "BUILTIN_VARIABLES",
    "END_STATES",
    "DefinitionError",
    "WatcherDefinition",
    "definition_from_dict",
    "parse_watcher_data",
    "parse_watchers",
]

OUTPUT_TYPES = ("stdout", "stderr", "both")
# The states a watcher's job_end_states may name: every final Slurm state a
# user would act on (slurm.FINAL_STATES adds the rare revoked/special_exit).
END_STATES = END_STATES_FOR_WATCHERS
# NOW: the Unix time (whole seconds) of the match or timer tick, what ssync
# users get from `$(date +%s)` in a shell.
BUILTIN_VARIABLES = ("JOB_ID", "HOSTNAME", "JOB_STATE", "WATCHER_NAME", "NOW")
# ssync's documented input limits, the same for a file, an embedded block and
# the web page's API: a pattern, a condition (an action's params: action_spec).
MAX_PATTERN_CHARS = 1000
MAX_CONDITION_CHARS = 500


class DefinitionError(ValueError):
    """A watcher definition mistake, with where it is."""

    def __init__(self, message: str, source: str = "", line: int = 0, field: str = "") -> None:
        where = f"{source}:{line}: " if source and line else (f"{source}: " if source else "")
        super().__init__(f"{where}{message}")
        self.source = source
        self.line = line
        self.field = field  # the key at fault (e.g. "pattern", "actions"), "" if none
        self.message = message


@dataclass(frozen=True)
class WatcherDefinition:
    """A validated watcher. Field defaults are *the* defaults of the YAML format."""

    name: str
    pattern: str
    actions: tuple[ActionSpec, ...]
    captures: tuple[str, ...] = ()
    condition: str = ""
    output_type: str = "stdout"
    interval_seconds: float = 30.0
    max_triggers: int = 0  # unlimited, as in ssync
    max_failures: int = 3
    timer_mode_enabled: bool = False
    timer_interval_seconds: float = 60.0
    trigger_on_job_end: bool = False
    job_end_states: tuple[str, ...] = ("completed", "failed", "timeout")
    rate_limit_per_minute: int = 10

    def compiled(self) -> CompiledPattern:
        """The compiled pattern (validated when the definition was parsed)."""
        return compile_pattern(self.pattern)

    def variable_names(self) -> list[str]:
        """Names a condition or a placeholder may use."""
        names = list(self.captures)
        names += [n for n in compile_pattern(self.pattern).group_names if n not in names]
        return names + [b for b in BUILTIN_VARIABLES if b not in names]

    def compiled_condition(self) -> Condition | None:
        """The compiled condition, or None when there is none."""
        if not self.condition:
            return None
        return compile_condition(self.condition, self.variable_names())

    def to_yaml(self) -> str:
        """YAML that :func:`parse_watchers` reads back as this definition.

        Keys at their default are left out, so the file says what is
        particular about this watcher (``pivot watchers export``).
        """
        data = self.to_dict()
        defaults = WatcherDefinition(name="", pattern="", actions=()).to_dict()
        out: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("name", "pattern") or (key != "actions" and value != defaults[key]):
                out[key] = value
        out["actions"] = [
            {"type": a["type"], **({"params": a["params"]} if a["params"] else {})}
            for a in data["actions"]
        ]
        return yaml.safe_dump(out, sort_keys=False, allow_unicode=True, width=1000)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as stored in ``WatcherCreated.definition``."""
        data = dataclasses.asdict(self)
        data["captures"] = list(self.captures)
        data["job_end_states"] = list(self.job_end_states)
        data["actions"] = [{"type": a.type, "params": dict(a.params)} for a in self.actions]
        return data


_FIELDS = {f.name: f for f in dataclasses.fields(WatcherDefinition)}

# ssync's names for what has another name here: the error says which.
_SSYNC_KEYS = {
    "interval": "interval_seconds",
    "timer_mode": "timer_mode_enabled",
    "timer_interval": "timer_interval_seconds",
    "trigger_job_states": "job_end_states",
    "action": "actions (a list of {type, params})",
}


def parse_watchers(
    text: str, source: str = "<text>", line_offset: int = 0
) -> list[WatcherDefinition]:
    """Parse one watcher or a list of watchers from YAML text.

    ``line_offset`` shifts reported line numbers (for blocks embedded in a
    script). Raises :class:`DefinitionError` with file and line.
    """
    try:
        data = load_with_lines(text)
    except KeyProblem as exc:
        raise DefinitionError(str(exc), source, exc.line + line_offset) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 1 + line_offset) if mark is not None else 0
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionError(f"invalid YAML: {problem}", source, line) from None
    if data is None:
        raise DefinitionError("no watcher defined (the file is empty)", source, 1 + line_offset)
    items = data if isinstance(data, list) else [data]
    return [_one(item, source, line_offset) for item in items]


def parse_watcher_data(data: Any, source: str = "<request>") -> WatcherDefinition:
    """Validate one watcher given as plain data (a JSON body) exactly as a YAML file is.

    Raises :class:`DefinitionError` whose ``field`` names the key at fault.
    """
    return _one(data, source, 0)


def _one(item: Any, source: str, offset: int) -> WatcherDefinition:
    if not isinstance(item, dict):
        raise DefinitionError(f"a watcher must be a mapping, not {type(item).__name__}", source)

    def err(msg: str, key: str | None = None) -> DefinitionError:
        line = line_of(item, key)
        return DefinitionError(msg, source, line + offset if line else 0, key or "")

    for key in item:
        if key in _SSYNC_KEYS:
            raise err(f"unknown key {key!r}: it is called {_SSYNC_KEYS[key]} here", key)
        if key not in _FIELDS:
            known = ", ".join(sorted(_FIELDS))
            raise err(f"unknown key {key!r} (known keys: {known})", key)
    for required in ("name", "pattern", "actions"):
        if required not in item:
            raise err(f"missing required key {required!r}", required)
    kwargs: dict[str, Any] = {}
    for key, value in item.items():
        kwargs[key] = _coerce(key, value, err)
    actions = item["actions"]
    if not isinstance(actions, list) or not actions:
        raise err(
            "'actions' must be a non-empty list (a watcher without actions does nothing)", "actions"
        )
    kwargs["actions"] = tuple(_action(a, source, offset, item) for a in actions)
    try:
        pattern = compile_pattern(kwargs["pattern"])
    except PatternError as exc:
        raise err(str(exc), "pattern") from None
    captures = kwargs.get("captures", ())
    if len(captures) > pattern.group_count:
        raise err(
            f"'captures' names {len(captures)} groups but the pattern has {pattern.group_count}",
            "captures",
        )
    definition = WatcherDefinition(**kwargs)
    _check_references(definition, pattern.group_count, err)
    return definition


def _check_references(definition: WatcherDefinition, group_count: int, err: Any) -> None:
    """The condition's names, the actions' placeholders and the end states all exist."""
    try:
        definition.compiled_condition()
    except ConditionError as exc:
        raise err(str(exc), "condition") from None
    problem = _unknown_placeholder(definition, group_count)
    if problem:
        raise err(problem, "actions")
    for state in definition.job_end_states:
        if state not in END_STATES:
            raise err(
                f"unknown job end state {state!r} (known: {', '.join(END_STATES)})",
                "job_end_states",
            )


BUILTIN_NAMES = BUILTIN_VARIABLES


def _templates(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _templates(v)]
    if isinstance(value, list | tuple):
        return [t for v in value for t in _templates(v)]
    return []


def _unknown_placeholder(definition: WatcherDefinition, group_count: int) -> str | None:
    """Say which placeholder of which action can never get a value, if any.

    A typo such as ``$eror`` or ``$7`` with three groups would otherwise fire
    as literal text at three in the morning; it is a definition error instead.
    """
    names = set(definition.variable_names()) | set(BUILTIN_NAMES)
    for action in definition.actions:
        params = {k: v for k, v in action.params.items() if k != "url"}  # URLs are not substituted
        for template in _templates(params):
            for key in placeholders(template):
                if key.isdigit() and int(key) <= group_count:
                    continue
                if not key.isdigit() and key in names:
                    continue
                what = f"group {key}" if key.isdigit() else f"name {key!r}"
                known = ", ".join(sorted(names))
                return (
                    f"{action.type}: placeholder ${key} refers to {what}, which this watcher "
                    f"never captures (the pattern has {group_count} groups; names: {known}); "
                    "write $$ for a literal dollar"
                )
    return None


def _coerce(key: str, value: Any, err: Any) -> Any:  # noqa: PLR0911, PLR0912 - one rule per key
    if key == "actions":
        return value
    if key in ("name", "pattern", "condition", "output_type"):
        if not isinstance(value, str):
            raise err(f"{key!r} must be a string", key)
        if key == "output_type" and value not in OUTPUT_TYPES:
            raise err(f"'output_type' must be one of {', '.join(OUTPUT_TYPES)}, not {value!r}", key)
        if key in ("name", "pattern") and not value:
            raise err(f"{key!r} must not be empty", key)
        limit = {"pattern": MAX_PATTERN_CHARS, "condition": MAX_CONDITION_CHARS}.get(key)
        if limit is not None and len(value) > limit:
            raise err(f"{key!r} is {len(value)} characters long; at most {limit} are allowed", key)
        return value
    if key in ("captures", "job_end_states"):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise err(f"{key!r} must be a list of strings", key)
        return tuple(v.lower() if key == "job_end_states" else v for v in value)
    if key in ("timer_mode_enabled", "trigger_on_job_end"):
        if not isinstance(value, bool):
            raise err(f"{key!r} must be true or false", key)
        return value
    if key in ("interval_seconds", "timer_interval_seconds"):
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise err(f"{key!r} must be a positive number of seconds", key)
        return float(value)
    if key in ("max_triggers", "max_failures", "rate_limit_per_minute"):
        if value is None and key == "max_triggers":
            return 0
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise err(f"{key!r} must be a whole number >= 0", key)
        if key != "max_triggers" and value == 0:
            raise err(f"{key!r} must be at least 1", key)
        return value
    raise err(f"unknown key {key!r}", key)  # pragma: no cover - guarded by _FIELDS


def _action(raw: Any, source: str, offset: int, parent: Any) -> ActionSpec:
    line = line_of(raw) or line_of(parent, "actions")

    def err(msg: str, key: str | None = None) -> DefinitionError:
        at = line_of(raw, key) if isinstance(raw, Lined) else line
        return DefinitionError(msg, source, at + offset if at else 0, "actions")

    return parse_action(raw, err)


def definition_from_dict(data: Mapping[str, Any]) -> WatcherDefinition:
    """Rebuild a definition stored by :meth:`WatcherDefinition.to_dict`."""
    kwargs = {k: v for k, v in data.items() if k in _FIELDS}
    kwargs["actions"] = tuple(
        ActionSpec(type=a["type"], params=dict(a.get("params") or {})) for a in data["actions"]
    )
    kwargs["captures"] = tuple(data.get("captures", ()))
    kwargs["job_end_states"] = tuple(data.get("job_end_states", ("completed", "failed", "timeout")))
    return WatcherDefinition(**kwargs)
