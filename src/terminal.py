"""Text from outside (job output, stage errors, file names) made safe to show in a terminal.

rich interprets ``[...]`` in plain strings as markup (``[/]`` even raises),
and a terminal obeys escape sequences such as ``ESC ] 8`` links or cursor
moves. Everything pivot shows that it did not write itself goes through
:func:`plain`: a :class:`rich.text.Text` (never parsed as markup) whose
control characters are replaced by visible ``\\xNN`` escapes.
"""

from __future__ import annotations

import os
import re
import sys

from rich.console import Console
from rich.text import Text

__all__ = ["PIPE_WIDTH", "console", "plain", "printable"]

PIPE_WIDTH = 240

# C0 controls except tab and newline, DEL, and C1 controls (ESC's 8-bit twins).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character but tab and newline shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def plain(text: object, style: str = "") -> Text:
    """A rich Text of ``text`` taken literally: no markup, no control characters."""
    return Text(printable(str(text)), style=style)


def console() -> Console:
    """The Console for a command's tables.

    On a terminal rich uses its width. Into a pipe or file (``pivot events |
    grep``) rich would assume 80 columns and fold every row; there each row
    stays on one line, up to :data:`PIPE_WIDTH` columns, unless ``COLUMNS``
    says otherwise.
    """
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console()
    return Console(width=PIPE_WIDTH)
