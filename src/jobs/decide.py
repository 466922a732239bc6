"""What a watcher does about a match, a timer, a job's end or a manual trigger.

Pure functions: they read a :class:`WatcherState` and return the events that
record the decision (matches, captures, action intents with their parameters
already substituted, suppressions, state changes). The caller appends them and
folds them into the state before the next decision, so decisions replay
exactly from the log.
"""

from __future__ import annotations

import shlex
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pivot.events.base import Event
from pivot.events.watchers import (
    ActionInterrupted,
    ActionRequested,
    ActionSuppressed,
    VariablesCaptured,
    WatcherMatched,
    WatcherStateChanged,
    WatcherTimerFired,
)
from pivot.jobs.action_spec import OUTSIDE_ACTIONS
from pivot.jobs.book import RATE_WINDOW_SECONDS, Book, WatcherState
from pivot.jobs.condition import ConditionError
from pivot.jobs.patterns import LineMatch
from pivot.jobs.shell_syntax import refused_shell_syntax, shell_syntax
from pivot.jobs.substitute import Values, substitute

__all__ = [
    "IDEMPOTENT_ACTIONS",
    "Context",
    "captured_variables",
    "on_job_end",
    "on_manual",
    "on_match",
    "on_restart",
    "on_timer",
    "resolve_params",
    "timer_due",
]

IDEMPOTENT_ACTIONS = frozenset({"cancel_job", "log_event", "store_metric", "pause_watcher"})


@dataclass(frozen=True, slots=True)
class Context:
    """Facts outside the watcher: the time, where the job runs, its end state."""

    now: float
    hostname: str
    job_state: str = ""


def captured_variables(ws: WatcherState, m: LineMatch) -> dict[str, str]:
    """Named captures of a match: ``captures`` names for positional groups, then named groups."""
    out: dict[str, str] = {}
    for i, name in enumerate(ws.definition.captures):
        if i < len(m.groups):
            out[name] = m.groups[i]
    out.update(m.named)
    return out


def _values(
    ws: WatcherState,
    ctx: Context,
    whole: str,
    groups: tuple[str, ...],
    variables: Mapping[str, str],
) -> Values:
    names = dict(variables)
    names["JOB_ID"] = ws.job_id
    names["HOSTNAME"] = ctx.hostname
    names["WATCHER_NAME"] = ws.name
    names["NOW"] = str(int(ctx.now))
    if ctx.job_state:
        names["JOB_STATE"] = ctx.job_state
    return Values(whole=whole, groups=groups, names=names)


def _condition(ws: WatcherState, values: Values) -> tuple[bool, str]:
    cond = ws.definition.compiled_condition()
    if cond is None:
        return True, ""
    try:
        return cond.evaluate(values.names), ""
    except ConditionError as exc:
        return False, str(exc)


def resolve_params(action_type: str, params: Mapping[str, Any], values: Values) -> dict[str, Any]:
    """An action's parameters with placeholders substituted.

    ``run_command`` is split into argv *before* substitution and each argument
    is substituted on its own: captured text can never add, remove or
    re-quote arguments, and the program (``argv[0]``) is never substituted.
    """
    if action_type == "run_command":
        argv = shlex.split(str(params["command"]))
        resolved = [argv[0]]
        out: dict[str, Any] = {}
        refused = refused_shell_syntax(shell_syntax(str(params["command"])))
        if refused:
            # Run without a shell, `$(date +%s)` would be two odd arguments: refuse instead.
            out["error"] = (
                f"run_command: {', '.join(refused)} in the command, but no shell runs it; "
                "use a script on the allowlist, or ${NOW} for $(date +%s)"
            )
        for template in argv[1:]:
            arg = substitute(template, values)
            # What one match captured can make an argument unsafe: "refused" is
            # that match's error, not the watcher's ("error": the definition's).
            if template.startswith("$") and arg.startswith("-") and not _is_number(arg):
                # Captured text must not turn into an option of the allowed program.
                out["refused"] = f"run_command: captured value {arg[:80]!r} would be an option"
            if "\0" in arg and "\0" not in template:
                # No program can receive it (execve ends arguments at NUL).
                out["refused"] = f"run_command: argument {arg[:80]!r} contains a NUL byte"
            resolved.append(arg)
        out["argv"] = resolved
        if "timeout_seconds" in params:
            out["timeout_seconds"] = params["timeout_seconds"]
        return out
    # A URL is configuration, never built from job output.
    return {k: (v if k == "url" else _subst_any(v, values)) for k, v in params.items()}


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _subst_any(value: Any, values: Values) -> Any:
    if isinstance(value, str):
        return substitute(value, values)
    if isinstance(value, Mapping):
        return {k: _subst_any(v, values) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_subst_any(v, values) for v in value]
    return value


def _fire(
    ws: WatcherState, values: Values, ctx: Context, cause: str, correlation_id: str
) -> tuple[list[Event], bool]:
    """Request the watcher's actions; the rate limit holds back those with outside effects.

    The limit counts only :data:`OUTSIDE_ACTIONS` (per minute, all or none of
    a firing's); ``store_metric``, ``log_event`` and ``pause_watcher`` always
    run. A held-back action is an :class:`ActionSuppressed` event. Returns
    the events and whether anything was requested.
    """
    actions = ws.definition.actions
    limit = ws.definition.rate_limit_per_minute
    recent = sum(1 for t in ws.recent_actions if t > ctx.now - RATE_WINDOW_SECONDS)
    outside = sum(1 for spec in actions if spec.type in OUTSIDE_ACTIONS)
    over = outside > 0 and recent + outside > limit
    events: list[Event] = []
    for spec in actions:
        if over and spec.type in OUTSIDE_ACTIONS:
            events.append(
                ActionSuppressed(
                    watcher_id=ws.watcher_id,
                    action_type=spec.type,
                    reason=f"rate limit: {limit} actions with outside effects per minute ({cause})",
                    at=ctx.now,
                    actor="JobTailer",
                    correlation_id=correlation_id,
                )
            )
            continue
        events.append(
            ActionRequested(
                watcher_id=ws.watcher_id,
                action_id=uuid.uuid4().hex,
                action_type=spec.type,
                params=resolve_params(spec.type, spec.params, values),
                idempotent=spec.type in IDEMPOTENT_ACTIONS,
                cause=cause,
                job_id=ws.job_id,
                host=ws.host,
                at=ctx.now,
                actor="JobTailer",
                correlation_id=correlation_id,
            )
        )
    return events, any(isinstance(e, ActionRequested) for e in events)


def on_match(ws: WatcherState, m: LineMatch, ctx: Context, *, manual: bool = False) -> list[Event]:
    """A line matched the watcher's pattern."""
    if ws.state != "active" and not manual:
        return []
    match_id = uuid.uuid4().hex
    variables = captured_variables(ws, m)
    values = _values(ws, ctx, m.whole, m.groups, {**ws.variables, **variables})
    events: list[Event] = []
    if variables and any(ws.variables.get(k) != v for k, v in variables.items()):
        events.append(
            VariablesCaptured(
                watcher_id=ws.watcher_id,
                variables=variables,
                at=ctx.now,
                actor="JobTailer",
                correlation_id=match_id,
            )
        )
    ok, error = _condition(ws, values)
    fired = False
    fire_events: list[Event] = []
    if ok and (manual or not ws.definition.trigger_on_job_end):
        fire_events, fired = _fire(ws, values, ctx, "manual" if manual else "match", match_id)
    events.insert(
        0,
        WatcherMatched(
            watcher_id=ws.watcher_id,
            match_id=match_id,
            line=m.line[:4096],
            captures=variables,
            condition_result=ok,
            whole=m.whole,
            groups=m.groups,
            condition_error=error,
            fired=fired,
            at=ctx.now,
            actor="JobTailer",
            correlation_id=match_id,
        ),
    )
    events.extend(fire_events)
    d = ws.definition
    if (
        fired
        and not manual
        and not d.timer_mode_enabled
        and d.max_triggers
        and ws.trigger_count + 1 >= d.max_triggers
    ):
        reason = f"max_triggers ({d.max_triggers}) reached"
        events.append(_state_changed(ws, ctx, "triggered", reason, match_id))
    return events


def timer_due(ws: WatcherState, now: float) -> bool:
    """Timer mode: the first firing happened and an interval has passed since the last."""
    d = ws.definition
    if not d.timer_mode_enabled or ws.state != "active" or not ws.first_fired_at:
        return False
    last = max(ws.first_fired_at, ws.last_timer_at)
    return now - last >= d.timer_interval_seconds


def on_timer(ws: WatcherState, ctx: Context) -> list[Event]:
    """The timer came due: run the actions with the cached captures (rate-limited too)."""
    fired_id = uuid.uuid4().hex
    values = _values(ws, ctx, ws.last_whole, ws.last_groups, ws.variables)
    events: list[Event] = [
        WatcherTimerFired(
            watcher_id=ws.watcher_id, at=ctx.now, actor="JobTailer", correlation_id=fired_id
        )
    ]
    fire_events, _ = _fire(ws, values, ctx, "timer", fired_id)
    return events + fire_events


def on_job_end(ws: WatcherState, ctx: Context) -> list[Event]:
    """Slurm says the job ended in ``ctx.job_state``: job-end actions, then `completed`."""
    if not ws.live:
        return []
    end_id = uuid.uuid4().hex
    events: list[Event] = []
    d = ws.definition
    if d.trigger_on_job_end and ws.state == "active" and ctx.job_state in d.job_end_states:
        values = _values(ws, ctx, ws.last_whole, ws.last_groups, ws.variables)
        ok, error = _condition(ws, values)
        if ok:
            fire_events, _ = _fire(ws, values, ctx, "job_end", end_id)
            events.extend(fire_events)
        elif error:
            events.append(
                WatcherMatched(
                    watcher_id=ws.watcher_id,
                    match_id=end_id,
                    line="",
                    condition_result=False,
                    condition_error=error,
                    at=ctx.now,
                    actor="JobTailer",
                    correlation_id=end_id,
                )
            )
    events.append(_state_changed(ws, ctx, "completed", f"job ended: {ctx.job_state}", end_id))
    return events


def _state_changed(
    ws: WatcherState, ctx: Context, new: str, reason: str, correlation_id: str
) -> WatcherStateChanged:
    """The tailer moves ``ws`` from its current state to ``new``, saying why."""
    return WatcherStateChanged(
        watcher_id=ws.watcher_id,
        old=ws.state,
        new=new,
        reason=reason,
        at=ctx.now,
        actor="JobTailer",
        correlation_id=correlation_id,
    )


def on_manual(ws: WatcherState, ctx: Context, line: LineMatch | None) -> list[Event]:
    """`pivot watchers trigger`: fire now, with a sample line's captures or the cached ones."""
    if line is not None:
        return on_match(ws, line, ctx, manual=True)
    manual_id = uuid.uuid4().hex
    values = _values(ws, ctx, ws.last_whole, ws.last_groups, ws.variables)
    events, _ = _fire(ws, values, ctx, "manual", manual_id)
    return events


def on_restart(book: Book, now: float) -> tuple[list[Event], list[ActionRequested]]:
    """Intents without results: report each; return the idempotent ones to run again."""
    events: list[Event] = []
    rerun: list[ActionRequested] = []
    for ws in book.watchers.values():
        for req in list(ws.pending.values()):
            retried = req.idempotent and ws.state != "removed"
            events.append(
                ActionInterrupted(
                    watcher_id=ws.watcher_id,
                    action_id=req.action_id,
                    action_type=req.action_type,
                    retried=retried,
                    at=now,
                    actor="JobTailer",
                    correlation_id=req.correlation_id,
                )
            )
            if retried:
                rerun.append(req)
    return events, rerun
