"""Where a project's event store is: option, env, ``pivot.toml``, ``.pivot/events.db``.

1. an explicit location (the CLI's ``--store``);
2. ``PIVOT_EVENT_STORE`` (a path, or ``postgresql://user:pass@host:port/db``);
3. ``event_store = "..."`` at the top level of ``pivot.toml`` in the project
   root (a relative path is relative to that root);
4. ``<root>/.pivot/events.db``.

The project root is the nearest directory, from the current one upwards,
holding ``pipeline.py``, ``pivot.toml`` or a ``.pivot`` directory
(:func:`find_project_root`); without one, the current directory.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from pivot.config_error import ConfigError

if TYPE_CHECKING:
    from pivot.events.store import EventStore

__all__ = [
    "ENV_VAR",
    "ConfigError",
    "find_project_root",
    "open_project_store",
    "resolve_store_location",
    "store_location",
]

_ROOT_MARKERS = ("pipeline.py", "pivot.toml")

ENV_VAR = "PIVOT_EVENT_STORE"


def store_location(root: str | os.PathLike[str] = ".") -> str:
    """The event store location for the project at ``root``."""
    base = Path(root)
    from_env = os.environ.get(ENV_VAR, "").strip()
    if from_env:
        return from_env
    config = base / "pivot.toml"
    if config.is_file():
        import tomllib  # only when there is a file to read (start-up time)

        try:
            data = tomllib.loads(config.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config}: {exc}") from None
        value = data.get("event_store")
        if value is not None:
            if not isinstance(value, str) or not value.strip():
                line = _line_of(config, "event_store")
                raise ConfigError(
                    f"{config}:{line}: event_store must be a path or a postgresql:// URL"
                )
            if value.startswith(("postgresql://", "postgres://")):
                return value
            return str(base / value)
    return str(base / ".pivot" / "events.db")


def find_project_root(start: str | os.PathLike[str] | None = None) -> Path:
    """The nearest directory upwards with ``pipeline.py``, ``pivot.toml`` or ``.pivot/``."""
    here = Path.cwd() if start is None else Path(start)
    here = here.resolve()
    for d in (here, *here.parents):
        if any((d / m).is_file() for m in _ROOT_MARKERS) or (d / ".pivot").is_dir():
            return d
    return here


def resolve_store_location(
    explicit: str | None = None, start: str | os.PathLike[str] | None = None
) -> str:
    """The store location: ``explicit`` if given, else :func:`store_location` of the root."""
    if explicit is not None and explicit.strip():
        return explicit.strip()
    return store_location(find_project_root(start))


def open_project_store(root: str | os.PathLike[str] = ".") -> EventStore:
    """Open (creating if needed) the event store of the project at ``root``."""
    from pivot.events.store import EventStore

    return EventStore.open(store_location(root))


def _line_of(path: Path, key: str) -> int:
    for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if text.strip().startswith(key):
            return number
    return 0
