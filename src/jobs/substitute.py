"""Placeholders in action parameters: ``$0``, ``$1``..``$N``, ``$name``, ``${name}``.

One left-to-right pass with a single regular expression: a value put in is
never looked at again (no re-substitution), and ``$10`` is group ten, never
group one followed by ``0``. ``$$`` is a literal dollar. A placeholder with no
value is left as written; watcher definitions refuse such placeholders up front
(:mod:`pivot.jobs.definition`), so at run time this only covers ``${JOB_STATE}``
before the job has ended.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Values", "placeholders", "substitute"]

_PLACEHOLDER = re.compile(
    r"\$(?:(?P<dollar>\$)|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*|\d+)\}"
    r"|(?P<digits>\d+)|(?P<name>[A-Za-z_][A-Za-z0-9_]*))"
)


@dataclass(frozen=True, slots=True)
class Values:
    """What placeholders can refer to: the whole match, positional groups, names."""

    whole: str = ""
    groups: Sequence[str] = ()
    names: Mapping[str, str] = field(default_factory=dict)


def substitute(template: str, values: Values) -> str:
    """``template`` with every known placeholder replaced, in one pass."""

    def replace(m: re.Match[str]) -> str:
        if m.group("dollar"):
            return "$"
        key = m.group("braced") or m.group("digits") or m.group("name") or ""
        if key.isdigit():
            index = int(key)
            if index == 0:
                return values.whole
            if index <= len(values.groups):
                return values.groups[index - 1]
            return m.group(0)
        found = values.names.get(key)
        return m.group(0) if found is None else found

    return _PLACEHOLDER.sub(replace, template)


def placeholders(template: str) -> list[str]:
    """Names and numbers referred to by a template (for validation and `watchers test`)."""
    out: list[str] = []
    for m in _PLACEHOLDER.finditer(template):
        key = m.group("braced") or m.group("digits") or m.group("name")
        if key:
            out.append(key)
    return out
