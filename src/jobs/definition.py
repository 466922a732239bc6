"""Watcher definitions: the YAML format, its defaults and its validation.

Every entry point (``pivot watchers add``, ``pivot watchers test``, blocks
embedded in sbatch scripts, the ``resubmit`` action) goes through
:func:`parse_watchers`, so defaults are the same everywhere: they are the
field defaults of :class:`WatcherDefinition` and :class:`ActionSpec`.
A mistake is a :class:`DefinitionError` naming the file and line.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from pivot.jobs.condition import Condition, ConditionError, compile_condition
from pivot.jobs.patterns import CompiledPattern, PatternError, compile_pattern
from pivot.jobs.slurm import END_STATES_FOR_WATCHERS
from pivot.jobs.substitute import placeholders
from pivot.jobs.yaml_lines import KeyProblem, Lined, line_of, load_with_lines

__all__ = [
    "ACTION_PARAMS",
    "BUILTIN_VARIABLES",
    "END_STATES",
    "OUTSIDE_ACTIONS",
    "ActionSpec",
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
# the web page's API: a pattern, a condition, one action's params (as JSON).
MAX_PATTERN_CHARS = 1000
MAX_CONDITION_CHARS = 500
MAX_PARAMS_BYTES = 10 * 1024

# Action type -> {param: (python type, required)}
ACTION_PARAMS: dict[str, dict[str, tuple[type | tuple[type, ...], bool]]] = {
    "cancel_job": {"reason": (str, False)},
    "resubmit": {"modifications": (dict, False), "remaining_resubmits": (int, False)},
    # `message` is ssync's name for the body.
    "notify_email": {
        "to": (str, False),
        "subject": (str, False),
        "body": (str, False),
        "message": (str, False),
    },
    "notify_webhook": {"message": (str, False), "url": (str, False)},
    # ssync's Slack action: an incoming webhook, Slack's JSON body.
    "notify_slack": {"message": (str, False), "url": (str, False), "channel": (str, False)},
    "run_command": {"command": (str, True), "timeout_seconds": ((int, float), False)},
    "store_metric": {"name": (str, True), "value": ((str, int, float), True)},
    "log_event": {"message": (str, True), "level": (str, False)},
    "pause_watcher": {},
}


# Actions with effects outside pivot: these are what `rate_limit_per_minute`
# counts. The others (store_metric, log_event, pause_watcher) only write our
# own records; they are never rate-limited, and stay cheap in a flood because a
# line fires a watcher at most once.
OUTSIDE_ACTIONS = frozenset(
    {"cancel_job", "resubmit", "notify_email", "notify_webhook", "notify_slack", "run_command"}
)


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
class ActionSpec:
    """One action of a watcher: its type and (unsubstituted) parameters."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)


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
_SSYNC_PARAMS = {
    ("store_metric", "variable"): 'value, with a placeholder (value: "$loss")',
    ("resubmit", "cancel_original"): "nothing: resubmit never cancels; put a cancel_job before it",
    ("resubmit", "cancel_previous"): "nothing: resubmit never cancels; put a cancel_job before it",
    ("notify_email", "body_text"): "body",
    ("notify_webhook", "channel"): "channel of notify_slack",
    ("notify_webhook", "webhook_url"): "url",
    ("notify_slack", "webhook_url"): "url",
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


def _action(raw: Any, source: str, offset: int, parent: Any) -> ActionSpec:  # noqa: PLR0912
    line = line_of(raw) or line_of(parent, "actions")

    def err(msg: str, key: str | None = None) -> DefinitionError:
        at = line_of(raw, key) if isinstance(raw, Lined) else line
        return DefinitionError(msg, source, at + offset if at else 0, "actions")

    if isinstance(raw, str) and "(" in raw:
        name = raw.split("(", 1)[0].strip()
        raise err(
            f"action {raw!r}: ssync's call syntax is not read here; write "
            f"{{type: {name}, params: {{...}}}}"
        )
    if not isinstance(raw, dict):
        raise err("each action must be a mapping with a 'type'")
    for key in raw:
        if key not in ("type", "params"):
            raise err(f"unknown action key {key!r} (an action has 'type' and 'params')", key)
    kind = raw.get("type")
    if kind not in ACTION_PARAMS:
        raise err(f"unknown action type {kind!r} (known: {', '.join(ACTION_PARAMS)})", "type")
    params = raw.get("params") or {}
    if not isinstance(params, dict):
        raise err("'params' must be a mapping", "params")
    size = len(json.dumps(params, default=str).encode())
    if size > MAX_PARAMS_BYTES:
        raise err(f"the params of {kind} are {size} bytes; at most {MAX_PARAMS_BYTES} are allowed")
    schema = ACTION_PARAMS[kind]
    for key, value in params.items():
        if (kind, key) in _SSYNC_PARAMS:
            raise err(
                f"unknown parameter {key!r} for {kind}: here it is {_SSYNC_PARAMS[kind, key]}",
                "params",
            )
        if key not in schema:
            known = ", ".join(schema) or "none"
            raise err(f"unknown parameter {key!r} for {kind} (known: {known})", "params")
        expected, _ = schema[key]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise err(f"parameter {key!r} of {kind} has the wrong type", "params")
    for key, (_, required) in schema.items():
        if required and key not in params:
            raise err(f"{kind} needs parameter {key!r}", "params")
    if kind == "resubmit":
        mods = params.get("modifications", {})
        for opt, val in mods.items():
            if not isinstance(opt, str) or not isinstance(val, str | int | float):
                raise err("resubmit modifications map option names to values", "params")
        if params.get("remaining_resubmits", 1) < 0:
            raise err("remaining_resubmits must be >= 0", "params")
    if kind == "run_command":
        _check_command(params["command"], err)
    return ActionSpec(type=kind, params=_plain(params))


def _check_command(command: str, err: Any) -> None:
    import shlex

    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise err(f"run_command: cannot split command: {exc}", "params") from None
    if not argv:
        raise err("run_command: empty command", "params")
    if "$" in argv[0]:
        raise err("run_command: the program itself cannot come from a placeholder", "params")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def definition_from_dict(data: Mapping[str, Any]) -> WatcherDefinition:
    """Rebuild a definition stored by :meth:`WatcherDefinition.to_dict`."""
    kwargs = {k: v for k, v in data.items() if k in _FIELDS}
    kwargs["actions"] = tuple(
        ActionSpec(type=a["type"], params=dict(a.get("params") or {})) for a in data["actions"]
    )
    kwargs["captures"] = tuple(data.get("captures", ()))
    kwargs["job_end_states"] = tuple(data.get("job_end_states", ("completed", "failed", "timeout")))
    return WatcherDefinition(**kwargs)
