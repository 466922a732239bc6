"""Running one action: each really does its job and reports a failure as a failure.

Parameters arrive already substituted (see :mod:`pivot.jobs.decide`). Nothing
here uses a shell: ``run_command`` executes an argv whose program must be on
the ``[actions.run_command] allow`` list, Slurm commands are argv lists, mail
headers are stripped of line breaks, and webhook bodies are JSON.
"""

from __future__ import annotations

import json
import os
import smtplib
import subprocess
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from typing import Any

from pivot.events.base import Event
from pivot.events.jobs import JobSubmitted
from pivot.events.watchers import ActionRequested, MetricStored, WatcherCreated, WatcherPaused
from pivot.jobs import slurm
from pivot.jobs.config import Config
from pivot.jobs.definition import WatcherDefinition, definition_from_dict
from pivot.jobs.transport import CommandResult, Transport, TransportError

__all__ = ["ActionError", "ActionOutcome", "ActionRunner", "JobContext"]


class ActionError(RuntimeError):
    """An action did not do its job; the message says why."""


@dataclass(frozen=True)
class JobContext:
    """What an action may need to know about the watcher's job."""

    host: str
    job_id: str
    script_text: str = ""
    workdir: str = ""
    # (name, definition) of every watcher on the job, re-attached by `resubmit`
    watchers: tuple[tuple[str, Mapping[str, Any]], ...] = ()


@dataclass(frozen=True)
class ActionOutcome:
    """A successful action's summary and the events it caused."""

    detail: str
    events: list[Event] = field(default_factory=list)


RunOnHost = Callable[[str, Coroutine[Any, Any, CommandResult], float], CommandResult]


class ActionRunner:
    """Runs actions; ``on_host(host, coroutine, timeout)`` bridges to the IO loop."""

    def __init__(
        self, config: Config, transports: Mapping[str, Transport], on_host: RunOnHost
    ) -> None:
        self.config = config
        self.transports = transports
        self._on_host = on_host

    def run(self, req: ActionRequested, ctx: JobContext) -> ActionOutcome:
        """Run one action; raises :class:`ActionError` when it fails."""
        method = getattr(self, f"_{req.action_type}", None)
        if method is None:
            raise ActionError(f"unknown action type {req.action_type!r}")
        try:
            outcome: ActionOutcome = method(req, ctx)
        except (TransportError, TimeoutError, OSError, ValueError) as exc:
            raise ActionError(f"{req.action_type}: {exc}") from None
        return outcome

    def _slurm(
        self, host: str, argv: Sequence[str], input_text: str | None = None
    ) -> CommandResult:
        transport = self.transports.get(host)
        if transport is None:
            raise ActionError(f"no transport for host {host!r}")
        timeout = self.config.action_timeout
        coro = transport.run(argv, input_text=input_text, timeout=timeout)
        return self._on_host(host, coro, timeout + 5)

    def _cancel_job(self, req: ActionRequested, ctx: JobContext) -> ActionOutcome:
        result = self._slurm(ctx.host, slurm.scancel_argv(ctx.job_id))
        if result.returncode != 0:
            raise ActionError(f"scancel {ctx.job_id} failed: {result.stderr.strip()}")
        reason = str(req.params.get("reason") or "")
        return ActionOutcome(f"cancelled job {ctx.job_id}" + (f": {reason}" if reason else ""))

    def _resubmit(self, req: ActionRequested, ctx: JobContext) -> ActionOutcome:
        remaining = int(req.params.get("remaining_resubmits", 1))
        if remaining <= 0:
            raise ActionError("resubmit refused: remaining_resubmits is 0")
        script = ctx.script_text
        if not script:
            got = self._slurm(ctx.host, slurm.batch_script_argv(ctx.job_id))
            if got.returncode != 0 or not got.stdout.strip():
                raise ActionError(f"cannot get job {ctx.job_id}'s script: {got.stderr.strip()}")
            script = got.stdout
        mods = dict(req.params.get("modifications") or {})
        new_script = slurm.apply_modifications(script, mods) if mods else script
        new_script = slurm.set_remaining_resubmits(new_script, remaining - 1)
        result = self._slurm(ctx.host, slurm.sbatch_argv(ctx.workdir), input_text=new_script)
        if result.returncode != 0:
            raise ActionError(f"sbatch failed: {result.stderr.strip()}")
        new_id = slurm.parse_sbatch(result.stdout)
        events: list[Event] = [
            JobSubmitted(
                host=ctx.host,
                job_id=new_id,
                script="",
                resubmit_of=ctx.job_id,
                script_text=new_script,
                actor="ActionExecutor",
                correlation_id=req.correlation_id,
            )
        ]
        for name, data in ctx.watchers:
            definition = _decrement(definition_from_dict(data))
            events.append(
                WatcherCreated(
                    watcher_id=uuid.uuid4().hex[:12],
                    name=name,
                    job_id=new_id,
                    host=ctx.host,
                    definition=definition.to_dict(),
                    actor="ActionExecutor",
                    correlation_id=req.correlation_id,
                )
            )
        return ActionOutcome(f"resubmitted job {ctx.job_id} as {new_id}", events)

    def _notify_email(self, req: ActionRequested, ctx: JobContext) -> ActionOutcome:
        smtp = self.config.smtp
        if not smtp.host:
            raise ActionError("no SMTP server: set [notify.smtp] host in pivot.toml")
        to = [_header(a) for a in str(req.params.get("to", "")).split(",") if a.strip()]
        to = to or list(smtp.to)
        if not to:
            raise ActionError("no recipient: set params.to or [notify.smtp] to")
        msg = EmailMessage()
        msg["From"] = _header(smtp.sender)
        msg["To"] = ", ".join(to)
        msg["Subject"] = _header(str(req.params.get("subject") or f"pivot: job {ctx.job_id}"))
        body = req.params.get("body") or req.params.get("message")
        msg.set_content(str(body or f"Watcher fired on job {ctx.job_id}."))
        timeout = self.config.action_timeout
        with smtplib.SMTP(smtp.host, smtp.port, timeout=timeout) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.username:
                client.login(smtp.username, os.environ.get(smtp.password_env, ""))
            refused = client.send_message(msg)
        if refused:
            raise ActionError(f"recipients refused: {', '.join(refused)}")
        return ActionOutcome(f"mailed {', '.join(to)}")

    def _notify_webhook(self, req: ActionRequested, ctx: JobContext) -> ActionOutcome:
        text = str(req.params.get("message") or f"pivot: watcher fired on job {ctx.job_id}")
        return self._post(req, {"text": text})

    def _notify_slack(self, req: ActionRequested, ctx: JobContext) -> ActionOutcome:
        # Slack's incoming-webhook body: `text`, and `channel` where the webhook allows it.
        body: dict[str, str] = {
            "text": str(req.params.get("message") or f"pivot: watcher fired on job {ctx.job_id}")
        }
        if req.params.get("channel"):
            body["channel"] = str(req.params["channel"])
        return self._post(req, body)

    def _post(self, req: ActionRequested, payload: Mapping[str, str]) -> ActionOutcome:
        url = str(req.params.get("url") or self.config.webhook.url)
        if not url.startswith(("http://", "https://")):
            raise ActionError("no webhook URL: set params.url or [notify.webhook] url")
        body = json.dumps(payload).encode()
        request = urllib.request.Request(  # noqa: S310 - scheme checked above
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.config.action_timeout) as resp:  # noqa: S310
                status = resp.status
        except urllib.error.HTTPError as exc:
            raise ActionError(f"webhook answered HTTP {exc.code}") from None
        except urllib.error.URLError as exc:
            raise ActionError(f"webhook unreachable: {exc.reason}") from None
        return ActionOutcome(f"webhook answered HTTP {status}")

    def _run_command(self, req: ActionRequested, ctx: JobContext) -> ActionOutcome:
        if req.params.get("error") or req.params.get("refused"):
            raise ActionError(str(req.params.get("error") or req.params["refused"]))
        argv = [str(a) for a in req.params.get("argv", [])]
        if not argv:
            raise ActionError("run_command: empty command")
        if argv[0] not in self.config.run_command_allow:
            allowed = ", ".join(self.config.run_command_allow) or "nothing"
            raise ActionError(
                f"run_command: {argv[0]!r} is not allowed ([actions.run_command] allow: {allowed})"
            )
        timeout = float(req.params.get("timeout_seconds", self.config.action_timeout))
        try:
            proc = subprocess.run(
                argv, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise ActionError(f"run_command: {argv[0]} timed out after {timeout:g}s") from None
        if proc.returncode != 0:
            err = proc.stderr.decode(errors="replace").strip()[:500]
            raise ActionError(f"run_command: {argv[0]} exited {proc.returncode}: {err}")
        return ActionOutcome(proc.stdout.decode(errors="replace").strip()[:500])

    def _store_metric(self, req: ActionRequested, ctx: JobContext) -> ActionOutcome:
        name = str(req.params["name"])
        raw = req.params["value"]
        try:
            value = float(raw)
        except (TypeError, ValueError):
            raise ActionError(f"store_metric: {raw!r} is not a number") from None
        ev = MetricStored(
            watcher_id=req.watcher_id,
            name=name,
            value=value,
            actor="ActionExecutor",
            correlation_id=req.correlation_id,
        )
        return ActionOutcome(f"{name}={value:g}", [ev])

    def _log_event(self, req: ActionRequested, ctx: JobContext) -> ActionOutcome:
        return ActionOutcome(str(req.params.get("message", "")))

    def _pause_watcher(self, req: ActionRequested, ctx: JobContext) -> ActionOutcome:
        ev = WatcherPaused(
            watcher_id=req.watcher_id,
            by="action",
            actor="ActionExecutor",
            correlation_id=req.correlation_id,
        )
        return ActionOutcome("watcher paused", [ev])


def _header(value: str) -> str:
    # A header with a line break would let captured text add headers.
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def _decrement(definition: WatcherDefinition) -> WatcherDefinition:
    actions = []
    for spec in definition.actions:
        if spec.type == "resubmit":
            params = dict(spec.params)
            params["remaining_resubmits"] = max(0, int(params.get("remaining_resubmits", 1)) - 1)
            actions.append(replace(spec, params=params))
        else:
            actions.append(spec)
    return replace(definition, actions=tuple(actions))
