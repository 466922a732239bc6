"""Watcher actions: their types, their parameters, and the check of one action.

:data:`ACTION_PARAMS` is the one table of what each action type takes (the
CLI, ``pivot ui``'s form and the validator all read it);
:data:`OUTSIDE_ACTIONS` are those with effects outside pivot, which the rate
limit counts. :func:`parse_action` checks one action of a watcher definition
(:mod:`pivot.jobs.definition` parses the rest), including the names ssync
uses for a parameter that is called otherwise here.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["ACTION_PARAMS", "MAX_PARAMS_BYTES", "OUTSIDE_ACTIONS", "ActionSpec", "parse_action"]

# One action's params, as JSON (ssync's documented limit).
MAX_PARAMS_BYTES = 10 * 1024

# Makes the error for a message about a key (None: the action itself).
ErrorAt = Callable[[str, str | None], Exception]

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


@dataclass(frozen=True)
class ActionSpec:
    """One action of a watcher: its type and (unsubstituted) parameters."""

    type: str
    params: dict[str, Any] = field(default_factory=dict)


_SSYNC_PARAMS = {
    ("store_metric", "variable"): 'value, with a placeholder (value: "$loss")',
    ("resubmit", "cancel_original"): "nothing: resubmit never cancels; put a cancel_job before it",
    ("resubmit", "cancel_previous"): "nothing: resubmit never cancels; put a cancel_job before it",
    ("notify_email", "body_text"): "body",
    ("notify_webhook", "channel"): "channel of notify_slack",
    ("notify_webhook", "webhook_url"): "url",
    ("notify_slack", "webhook_url"): "url",
}


def parse_action(raw: Any, err: ErrorAt) -> ActionSpec:  # noqa: PLR0912 - one rule each
    """Validate one action of a watcher; ``err(message, key)`` makes the error to raise
    (:class:`pivot.jobs.definition.DefinitionError`, with the file and line)."""
    if isinstance(raw, str) and "(" in raw:
        name = raw.split("(", 1)[0].strip()
        raise err(
            f"action {raw!r}: ssync's call syntax is not read here; write "
            f"{{type: {name}, params: {{...}}}}",
            None,
        )
    if not isinstance(raw, dict):
        raise err("each action must be a mapping with a 'type'", None)
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
        raise err(
            f"the params of {kind} are {size} bytes; at most {MAX_PARAMS_BYTES} are allowed", None
        )
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


def _check_command(command: str, err: ErrorAt) -> None:
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
