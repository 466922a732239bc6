"""Shell syntax in a ``run_command`` template: what no shell will ever interpret.

Commands are split into arguments and run directly (see
:mod:`pivot.jobs.actions`), so ``$(date +%s)``, ``|``, ``;`` or ``&&`` in a
command would reach the program as plain text. :func:`shell_syntax` finds
them (outside quotes); ``pivot watchers add`` warns about each, and the
decision refuses the action when it fires for all but globs
(:func:`refused_shell_syntax`), which a program may well expect literally.
"""

from __future__ import annotations

import re
import shlex

__all__ = ["GLOB", "refused_shell_syntax", "shell_syntax"]

_OPERATORS = ("&&", "||", "|", ";", ">>", ">", "<", "&")
_SUBSTITUTION = re.compile(r"\$\(|`")
_GLOB = re.compile(r"[*?]|\[[^\]]*\]")
GLOB = "a glob (* ? [...])"


def shell_syntax(command: str) -> list[str]:
    """The shell constructs in a ``run_command`` template (operators and globs outside quotes)."""
    seen: list[str] = []
    if _SUBSTITUTION.search(command):
        seen.append("command substitution $(...)" if "$(" in command else "backticks")
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        tokens = list(lexer)
        words = shlex.split(command, posix=False)
    except ValueError:
        return seen
    for token in tokens:
        if token in _OPERATORS and token not in seen:
            seen.append(token)
    if any(_GLOB.search(w) and w[:1] not in "'\"" for w in words):
        seen.append(GLOB)
    return seen


def refused_shell_syntax(found: list[str]) -> list[str]:
    """The constructs that make a ``run_command`` fail when it fires (all but globs)."""
    return [s for s in found if s != GLOB]
