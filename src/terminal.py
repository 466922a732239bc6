"""Text from outside (job output, stage errors, file names) made safe to show in a terminal.

rich interprets ``[...]`` in plain strings as markup (``[/]`` even raises),
and a terminal obeys escape sequences such as ``ESC ] 8`` links or cursor
moves. Everything pivot shows that it did not write itself goes through
:func:`printable`: control characters replaced by visible ``\\xNN`` escapes;
:func:`plain` makes that a :class:`rich.text.Text` (never parsed as markup),
:func:`escaped` a piece of a markup string, and :func:`echo` prints a plain
line with it (``tests/jobs/test_terminal_injection.py`` runs every command
that shows such text).
"""

from __future__ import annotations

import io
import os
import re
import sys
from typing import TYPE_CHECKING, TextIO, cast

if TYPE_CHECKING:  # rich is imported when used: echo() and printable() serve fast commands
    from rich.console import Console
    from rich.text import Text

__all__ = ["PIPE_WIDTH", "console", "echo", "escaped", "plain", "printable"]

PIPE_WIDTH = 10_000  # in a pipe no value is folded onto a second line

# C0 controls except tab and newline, DEL, and C1 controls (ESC's 8-bit twins).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every control character but tab and newline shown as ``\\xNN``."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def plain(text: object, style: str = "") -> Text:
    """A rich Text of ``text`` taken literally: no markup, no control characters."""
    from rich.text import Text

    return Text(printable(str(text)), style=style)


def escaped(text: object) -> str:
    """``text`` for inside a rich markup string: markup escaped, control characters shown."""
    from rich.markup import escape

    return escape(printable(str(text)))


def echo(text: object, *, err: bool = False) -> None:
    """Print one line that may hold outside text (a job line, a stage's error), neutralised."""
    print(printable(str(text)), file=sys.stderr if err else sys.stdout, flush=True)


class _TrimmedLines(io.TextIOBase):
    """A text stream that writes each line without the spaces at its end.

    rich pads every cell of a table, and every line of a group, to the
    widest one: on a terminal that is invisible, in a file or a pipe it is
    trailing whitespace on every line (``grep 'x$'`` fails, diffs are noisy).
    """

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._partial = ""

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        *lines, self._partial = (self._partial + text).split("\n")
        if lines:
            self._out.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self._partial:
            self._out.write(self._partial.rstrip(" "))
            self._partial = ""
        self._out.flush()


def console(*, highlight: bool = True) -> Console:
    """The Console for a command's tables.

    On a terminal rich uses its width. Into a pipe or file (``pivot events |
    grep``) rich would assume 80 columns and fold every row, and pad every
    line to the width of the widest: there no line is folded (up to
    :data:`PIPE_WIDTH` columns, or ``COLUMNS`` when set) and no line ends in
    spaces, so a table is exactly as wide as what it shows. ``highlight``:
    rich's colouring of numbers and strings it recognises in text.
    """
    from rich.console import Console

    if sys.stdout.isatty():
        return Console(highlight=highlight)
    # rich only writes, flushes and asks isatty(): all _TrimmedLines has to be.
    trimmed = cast(TextIO, _TrimmedLines(sys.stdout))
    if os.environ.get("COLUMNS"):
        return Console(file=trimmed, highlight=highlight)
    return Console(width=PIPE_WIDTH, file=trimmed, highlight=highlight)
