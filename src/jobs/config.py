"""Configuration: ``pivot.toml`` at the project root over ``~/.config/pivot/config.toml``.

Tables are merged key by key (the project wins). Every key is documented in
docs/configuration.md; an unknown key or a value of the wrong type is a
:class:`ConfigError` naming the file and the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pivot.config_error import ConfigError
from pivot.events import location

__all__ = [
    "Config",
    "ConfigError",
    "HostConfig",
    "SmtpConfig",
    "WebhookConfig",
    "find_project_root",
    "load_config",
]


@dataclass(frozen=True)
class HostConfig:
    """``[hosts.NAME]``: a cluster login node (``local`` runs commands here)."""

    name: str
    hostname: str = ""
    port: int = 0
    username: str = ""
    known_hosts: str = ""
    identity_file: str = ""
    connect_timeout: float = 15.0
    command_timeout: float = 60.0
    env: dict[str, str] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        """Commands run as local subprocesses."""
        return self.name == "local" and not self.hostname

    def env_prefix(self) -> list[str]:
        """``env K=V ...`` in front of remote commands, when ``env`` is set."""
        if not self.env:
            return []
        return ["env", *(f"{k}={v}" for k, v in sorted(self.env.items()))]


@dataclass(frozen=True)
class SmtpConfig:
    """``[notify.smtp]``: where ``notify_email`` sends mail."""

    host: str = ""
    port: int = 25
    sender: str = "pivot@localhost"
    to: tuple[str, ...] = ()
    starttls: bool = False
    username: str = ""
    password_env: str = ""


@dataclass(frozen=True)
class WebhookConfig:
    """``[notify.webhook]``: where ``notify_webhook`` posts."""

    url: str = ""


@dataclass(frozen=True)
class Config:
    """Everything the watcher runtime reads from configuration."""

    hosts: dict[str, HostConfig] = field(default_factory=lambda: {"local": HostConfig("local")})
    run_command_allow: tuple[str, ...] = ()
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    webhook: WebhookConfig = field(default_factory=WebhookConfig)
    action_timeout: float = 120.0
    poll_seconds: float = 0.0  # 0: use each watcher's interval_seconds
    max_backoff_seconds: float = 300.0
    retry_seconds: float = 5.0
    lease_seconds: float = 10.0  # a dead host of the watchers elsewhere is replaced after this
    root: str = "."
    # ``[slurm]``: checked defaults for stages that run as SLURM jobs
    # (pivot.pipeline.slurm_resources.check_fields)
    slurm: dict[str, Any] = field(default_factory=dict)

    def host(self, name: str) -> HostConfig:
        """A host by name; ``local`` always exists."""
        if name in self.hosts:
            return self.hosts[name]
        if name == "local":
            return HostConfig("local")
        raise ConfigError(f"unknown host {name!r}: add a [hosts.{name}] table to pivot.toml")


_HOST_KEYS: dict[str, type | tuple[type, ...]] = {
    "hostname": str,
    "port": int,
    "username": str,
    "known_hosts": str,
    "identity_file": str,
    "connect_timeout": (int, float),
    "command_timeout": (int, float),
    "env": dict,
}
_SMTP_KEYS: dict[str, type | tuple[type, ...]] = {
    "host": str,
    "port": int,
    "from": str,
    "to": (str, list),
    "starttls": bool,
    "username": str,
    "password_env": str,
}
_WATCHERS_KEYS: dict[str, type | tuple[type, ...]] = {
    "action_timeout_seconds": (int, float),
    "poll_seconds": (int, float),
    "max_backoff_seconds": (int, float),
    "retry_seconds": (int, float),
    "lease_seconds": (int, float),
}
_MINE = {"hosts", "actions", "notify", "watchers", "slurm"}
# Read (and checked) by the event store (pivot.events.location) and the
# pipeline loader (pivot.pipeline.load_limits), and watch mode (pivot.watch.warm_workers).
_OTHERS = {"event_store", "load_timeout", "warm_parent"}


def find_project_root(start: Path | None = None) -> Path:
    """The project root, found the way the event store finds it."""
    return location.find_project_root(start)


def _read(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def load_config(root: Path | None = None, user_file: Path | None = None) -> Config:
    """Read the user-wide file, then the project's ``pivot.toml`` over it."""
    root = find_project_root(root)
    if user_file is None:
        base = Path(os.environ.get("XDG_CONFIG_HOME", Path.home() / ".config"))
        user_file = base / "pivot" / "config.toml"
    data: dict[str, Any] = {}
    for path in (user_file, root / "pivot.toml"):
        if path.is_file():
            layer = _read(path)
            _validate(layer, path)
            data = _merge(data, layer)
    return _build(data, root)


def _line_of(path: Path, table: str, key: str) -> int:
    """The line of ``key`` inside ``[table]`` (or of the table header), 0 if not found."""
    header = re.compile(r"^\s*\[\s*" + re.escape(table).replace("\\.", r"\s*\.\s*") + r"\s*\]")
    inside = not table
    found_header = 0
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        stripped = text.strip()
        if stripped.startswith("["):
            inside = bool(header.match(stripped))
            if inside:
                found_header = number
            continue
        if inside and re.match(r"^\s*\"?" + re.escape(key) + r"\"?\s*=", text):
            return number
    return found_header


def _where(path: Path, table: str, key: str = "") -> str:
    line = _line_of(path, table, key)
    return f"{path}:{line}" if line else str(path)


def _check(
    table: Mapping[str, Any],
    schema: Mapping[str, Any],
    path: Path,
    name: str,
) -> None:
    for key, value in table.items():
        if key not in schema:
            raise ConfigError(
                f"{_where(path, name, key)}: unknown key {key!r} in [{name}] "
                f"(known: {', '.join(schema)})"
            )
        expected = schema[key]
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
            want = expected.__name__ if isinstance(expected, type) else "number"
            raise ConfigError(
                f"{_where(path, name, key)}: {name}.{key} must be a {want}, "
                f"not {type(value).__name__}"
            )


def _validate(data: Mapping[str, Any], path: Path) -> None:  # noqa: PLR0912 - one rule per table
    for key in data:
        if key not in _MINE | _OTHERS:
            known = ", ".join(sorted(_MINE | _OTHERS))
            where = _where(path, key) if isinstance(data[key], Mapping) else _where(path, "", key)
            raise ConfigError(f"{where}: unknown setting {key!r} (known: {known})")
    for key in _MINE:
        if key in data and not isinstance(data[key], Mapping):
            raise ConfigError(f"{_where(path, '', key)}: {key} must be a table ([{key}])")
    for name, table in dict(data.get("hosts", {})).items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"{_where(path, 'hosts', name)}: [hosts.{name}] must be a table")
        _check(table, _HOST_KEYS, path, f"hosts.{name}")
        if name != "local" and "hostname" in table and not table["hostname"]:
            raise ConfigError(f"{_where(path, f'hosts.{name}', 'hostname')}: empty hostname")
    for key, table in dict(data.get("actions", {})).items():
        if key != "run_command" or not isinstance(table, Mapping):
            raise ConfigError(
                f"{_where(path, f'actions.{key}')}: unknown table actions.{key} "
                "(known: run_command)"
            )
        _check(table, {"allow": list}, path, "actions.run_command")
        for program in table.get("allow", []):
            if not isinstance(program, str) or not program.strip():
                raise ConfigError(
                    f"{_where(path, 'actions.run_command', 'allow')}: allow lists program names"
                )
    for key, table in dict(data.get("notify", {})).items():
        if key == "smtp":
            _check(table, _SMTP_KEYS, path, "notify.smtp")
        elif key == "webhook":
            _check(table, {"url": str}, path, "notify.webhook")
            url = str(table.get("url", ""))
            if url and not url.startswith(("http://", "https://")):
                raise ConfigError(
                    f"{_where(path, 'notify.webhook', 'url')}: url must start with http(s)://"
                )
        else:
            raise ConfigError(
                f"{_where(path, f'notify.{key}')}: unknown table notify.{key} "
                "(known: smtp, webhook)"
            )
    _check_slurm(dict(data.get("slurm", {})), path)
    watchers = dict(data.get("watchers", {}))
    _check(watchers, _WATCHERS_KEYS, path, "watchers")
    if watchers.get("lease_seconds", 10.0) < 1:
        raise ConfigError(
            f"{_where(path, 'watchers', 'lease_seconds')}: lease_seconds must be at least 1"
        )


def _check_slurm(table: Mapping[str, Any], path: Path) -> None:
    """``[slurm]``: the fields of ``Slurm(...)``, checked by the same rules."""
    from pivot.pipeline.slurm_resources import check_fields

    for key, value in table.items():
        try:
            check_fields({key: value})
        except ValueError as exc:
            raise ConfigError(f"{_where(path, 'slurm', key)}: [slurm]: {exc}") from None


def _build(data: Mapping[str, Any], root: Path) -> Config:
    hosts = {"local": HostConfig("local")}
    for name, t in dict(data.get("hosts", {})).items():
        hosts[name] = HostConfig(
            name=name,
            hostname=t.get("hostname", "" if name == "local" else name),
            port=int(t.get("port", 0)),
            username=t.get("username", ""),
            known_hosts=t.get("known_hosts", ""),
            identity_file=t.get("identity_file", ""),
            connect_timeout=float(t.get("connect_timeout", 15.0)),
            command_timeout=float(t.get("command_timeout", 60.0)),
            env={str(k): str(v) for k, v in dict(t.get("env", {})).items()},
        )
    smtp_t = dict(data.get("notify", {}).get("smtp", {}))
    to = smtp_t.get("to", ())
    smtp = SmtpConfig(
        host=smtp_t.get("host", ""),
        port=int(smtp_t.get("port", 25)),
        sender=smtp_t.get("from", "pivot@localhost"),
        to=(to,) if isinstance(to, str) else tuple(to),
        starttls=bool(smtp_t.get("starttls", False)),
        username=smtp_t.get("username", ""),
        password_env=smtp_t.get("password_env", ""),
    )
    webhook = WebhookConfig(url=dict(data.get("notify", {}).get("webhook", {})).get("url", ""))
    w = dict(data.get("watchers", {}))
    allow = tuple(
        str(a) for a in dict(data.get("actions", {}).get("run_command", {})).get("allow", [])
    )
    return Config(
        hosts=hosts,
        run_command_allow=allow,
        smtp=smtp,
        webhook=webhook,
        action_timeout=float(w.get("action_timeout_seconds", 120.0)),
        poll_seconds=float(w.get("poll_seconds", 0.0)),
        max_backoff_seconds=float(w.get("max_backoff_seconds", 300.0)),
        retry_seconds=float(w.get("retry_seconds", 5.0)),
        lease_seconds=float(w.get("lease_seconds", 10.0)),
        root=str(root),
        slurm=_slurm_defaults(data),
    )


def _slurm_defaults(data: Mapping[str, Any]) -> dict[str, Any]:
    from pivot.pipeline.slurm_resources import check_fields

    return check_fields(dict(data.get("slurm", {})))
