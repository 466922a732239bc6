"""The one error for a project setting that cannot be used (``pivot.toml``, the environment)."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(ValueError):
    """A configuration mistake; the message names the file and the key or line."""
