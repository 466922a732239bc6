"""Add-time warnings: what a valid watcher would only get wrong at run time, said up front.

``pivot watchers add``, ``pivot watchers test`` and the web page call the
same functions, so they show the same warnings with the same fixes. A warning
never stops a watcher from being added (that is what
:class:`pivot.jobs.definition.DefinitionError` is for); it says what will
fail, and how to fix it.

Checked without touching anything (:func:`static_warnings`):

- ``run_command``: a program not on ``[actions.run_command] allow`` (the fix
  is the exact ``pivot.toml`` lines); shell syntax (``$(...)``, backticks,
  ``|``, ``;``, ``&&``, ``||``, redirections, ``&``, globs), since no shell
  ever runs (the fix: a script on the allowlist, or a built-in placeholder
  such as ``${NOW}``);
- ``notify_email``: no ``[notify.smtp] host``, no recipient, no body;
- ``notify_webhook`` / ``notify_slack``: no URL anywhere.

Checked by asking the host (:func:`probe_job`, bounded by ``timeout``):
the host cannot be reached, or Slurm does not know the job id.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass

from pivot.jobs.action_spec import ActionSpec
from pivot.jobs.config import Config
from pivot.jobs.definition import WatcherDefinition
from pivot.jobs.shell_syntax import refused_shell_syntax, shell_syntax

__all__ = [
    "AddWarning",
    "check_definition",
    "describe",
    "probe_job",
    "shell_syntax",
    "static_warnings",
]


@dataclass(frozen=True)
class AddWarning:
    """One warning: where (``field``, e.g. ``actions[2].run_command``), what, and the fix."""

    field: str
    message: str
    fix: str

    def to_json(self) -> dict[str, str]:
        """Plain data for ``--json`` and the web page."""
        return {"field": self.field, "message": self.message, "fix": self.fix}


def check_definition(
    defn: WatcherDefinition,
    config: Config,
    *,
    probe_jobs: bool = True,
    job_id: str | None = None,
    host: str = "local",
    timeout: float = 10.0,
) -> list[AddWarning]:
    """Every add-time warning for one watcher.

    With ``probe_jobs`` and a ``job_id``, also asks ``host`` (within
    ``timeout`` seconds) whether it can be reached and knows the job; when
    adding several watchers to one job, call this with ``probe_jobs=False``
    and :func:`probe_job` once.
    """
    found = static_warnings(defn, config)
    if probe_jobs and job_id is not None:
        found += probe_job(config, job_id, host, timeout=timeout)
    return found


def static_warnings(defn: WatcherDefinition, config: Config) -> list[AddWarning]:
    """The warnings that need nothing but the definition and the configuration."""
    found: list[AddWarning] = []
    for index, spec in enumerate(defn.actions):
        where = f"actions[{index}].{spec.type}"
        if spec.type == "run_command":
            found += _run_command(where, spec, config)
        elif spec.type == "notify_email":
            found += _email(where, spec, config)
        elif spec.type in ("notify_webhook", "notify_slack") and not (
            spec.params.get("url") or config.webhook.url
        ):
            found.append(
                AddWarning(
                    where,
                    "no webhook URL: the notification will fail when the watcher fires",
                    "set params.url, or in pivot.toml:\n[notify.webhook]\n"
                    'url = "https://hooks.slack.com/services/..."',
                )
            )
    return found


def _run_command(where: str, spec: ActionSpec, config: Config) -> list[AddWarning]:
    command = str(spec.params.get("command", ""))
    found: list[AddWarning] = []
    shell = shell_syntax(command)
    if shell:
        found.append(
            AddWarning(
                where,
                f"{', '.join(shell)} in {command!r}: no shell runs the command, so "
                + (
                    "the action will be refused when it fires"
                    if refused_shell_syntax(shell)
                    else "a glob is passed to the program as plain text"
                ),
                "put the pipeline in a script and allow the script, or use a built-in "
                "placeholder instead of a substitution: ${NOW} (Unix seconds) for $(date +%s), "
                "${JOB_ID}, ${HOSTNAME}, ${WATCHER_NAME}",
            )
        )
    try:
        argv = shlex.split(command)
    except ValueError:
        return found  # the definition itself refuses such a command
    program = argv[0] if argv else ""
    if program and program not in config.run_command_allow:
        allowed = [*config.run_command_allow, program]
        lines = "[actions.run_command]\nallow = [" + ", ".join(f'"{p}"' for p in allowed) + "]"
        found.append(
            AddWarning(
                where,
                f"{program!r} is not on the run_command allowlist: the action will fail",
                f"in {config.root}/pivot.toml, set:\n{lines}",
            )
        )
    return found


def _email(where: str, spec: ActionSpec, config: Config) -> list[AddWarning]:
    found: list[AddWarning] = []
    if not config.smtp.host:
        found.append(
            AddWarning(
                where,
                "no SMTP server configured: the mail will fail when the watcher fires",
                'add to pivot.toml:\n[notify.smtp]\nhost = "smtp.example.org"\n'
                'from = "pivot@example.org"\nto = ["you@example.org"]',
            )
        )
    if not spec.params.get("to") and not config.smtp.to:
        found.append(
            AddWarning(
                where,
                "no recipient: neither params.to nor [notify.smtp] to is set",
                'set params.to: "you@example.org", or to = [...] in [notify.smtp]',
            )
        )
    if not spec.params.get("body") and not spec.params.get("message"):
        found.append(
            AddWarning(
                where,
                "no body: the mail will only say which watcher fired on which job",
                'add params.body (or message, as in ssync), e.g. body: "$0 on job ${JOB_ID}"',
            )
        )
    return found


def probe_job(
    config: Config, job_id: str, host: str = "local", *, timeout: float = 10.0
) -> list[AddWarning]:
    """Ask ``host`` about ``job_id``: warn if it cannot be reached or Slurm does not know the job.

    One ``squeue`` and, if the job is not listed, one ``scontrol show job``,
    each within ``timeout`` seconds.
    """
    from pivot.jobs import slurm
    from pivot.jobs.ioloop import IoLoop
    from pivot.jobs.manage import transport_for
    from pivot.jobs.transport import TransportError

    io = IoLoop("pivot-probe")
    transport = transport_for(config, host)
    try:
        listed = io.call(transport.run(slurm.squeue_argv([job_id]), timeout=timeout), timeout + 5)
        if job_id in slurm.parse_squeue(listed.stdout):
            return []
        if listed.returncode != 0 and not slurm.squeue_says_unknown(listed.stderr):
            first = (listed.stderr.strip().splitlines() or ["no output"])[-1]
            return [
                AddWarning(
                    "host",
                    f"cannot ask Slurm on {host} about job {job_id}: squeue failed: {first}",
                    f"check that squeue works on {host} (and SLURM_CONF, or env in [hosts.{host}])",
                )
            ]
        shown = io.call(transport.run(slurm.scontrol_argv(job_id), timeout=timeout), timeout + 5)
        if slurm.parse_scontrol(shown.stdout) is not None:
            return []
        return [
            AddWarning(
                "job",
                f"Slurm on {host} does not know job {job_id} (squeue and scontrol show job)",
                "check the id with `squeue --me` (or `pivot jobs list`); an ended job's watchers "
                "complete at once",
            )
        ]
    except (TransportError, TimeoutError, OSError) as exc:
        return [
            AddWarning(
                "host",
                f"cannot reach {host}: {exc}",
                f"check [hosts.{host}] in pivot.toml and that `ssh` to it works; the watcher "
                "retries with backoff once `pivot watchers run` is running",
            )
        ]
    finally:
        with contextlib.suppress(TransportError, TimeoutError, OSError):
            io.call(transport.close(), 10)
        io.stop()


def describe(warnings: Sequence[AddWarning], *, watcher: str = "") -> list[str]:
    """Lines for a terminal: ``warning: [WATCHER: ]FIELD: MESSAGE``, then the fix, indented."""
    out: list[str] = []
    who = f"{watcher}: " if watcher else ""
    for w in warnings:
        out.append(f"warning: {who}{w.field}: {w.message}")
        for i, line in enumerate(w.fix.splitlines()):
            out.append(("  fix: " if i == 0 else "       ") + line)
    return out
