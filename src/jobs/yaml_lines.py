"""YAML that remembers where each key was, so a watcher mistake names its line.

A safe loader (no Python objects) whose mappings are :class:`Lined` dicts
carrying the line of the mapping and of each key. A key that is not a
string, or a key given twice, is a :class:`KeyProblem` with its line
(plain YAML would silently keep the last duplicate).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

__all__ = ["KeyProblem", "Lined", "line_of", "load_with_lines"]


class KeyProblem(ValueError):
    """A mapping key that is not a string, or given twice; ``line`` is 1-based."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


class Lined(dict[str, Any]):
    """A mapping from YAML, with the line of the mapping and of each of its keys."""

    line: int = 0
    key_lines: dict[str, int]


class _LineLoader(yaml.SafeLoader):
    """A safe loader whose mappings remember the line of each key."""


def _construct_mapping(loader: _LineLoader, node: yaml.MappingNode) -> Lined:
    loader.flatten_mapping(node)
    out = Lined()
    out.line = node.start_mark.line + 1
    out.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str):
            raise KeyProblem(f"keys must be strings, not {key!r}", key_node.start_mark.line + 1)
        if key in out:
            raise KeyProblem(f"duplicate key {key!r}", key_node.start_mark.line + 1)
        out[key] = loader.construct_object(value_node, deep=True)
        out.key_lines[key] = key_node.start_mark.line + 1
    return out


_LineLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_with_lines(text: str) -> Any:
    """``text`` parsed as YAML; raises :class:`KeyProblem` or :class:`yaml.YAMLError`."""
    return yaml.load(text, Loader=_LineLoader)  # noqa: S506 - a SafeLoader subclass


def line_of(item: Mapping[str, Any], key: str | None = None) -> int:
    """The line of ``key`` in ``item`` (or of ``item`` itself); 0 when not from YAML."""
    if isinstance(item, Lined):
        if key is not None and key in item.key_lines:
            return item.key_lines[key]
        return item.line
    return 0
