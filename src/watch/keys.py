"""Keys of `pivot watch`: what the terminal sent, as display actions (pure).

``f`` runs every stage now and ``q`` quits, in every display whose stdin is a
terminal; the others move the TUI's log pane: ``↑``/``↓`` (or ``k``/``j``)
show the previous/next stage's output, ``PgUp``/``PgDn`` scroll it, ``Esc``
goes back to following the stage that started last, ``l`` hides or shows it.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["HINT", "Action", "parse_keys"]

Action = Literal["force", "quit", "log", "prev", "next", "page_up", "page_down", "follow"]

HINT = "keys: ↑↓ stage  PgUp/PgDn scroll  Esc follow  l log  f force all  q quit"

_SEQUENCES: dict[str, Action] = {
    "\x1b[A": "prev",
    "\x1bOA": "prev",
    "\x1b[B": "next",
    "\x1bOB": "next",
    "\x1b[5~": "page_up",
    "\x1b[6~": "page_down",
}
_LETTERS: dict[str, Action] = {
    "f": "force",
    "q": "quit",
    "l": "log",
    "k": "prev",
    "j": "next",
}


def parse_keys(data: str) -> list[Action]:
    """The actions in one read of terminal input; unknown keys and sequences are dropped."""
    actions: list[Action] = []
    i = 0
    while i < len(data):
        if data[i] == "\x1b":
            for seq, action in _SEQUENCES.items():
                if data.startswith(seq, i):
                    actions.append(action)
                    i += len(seq)
                    break
            else:
                # A lone Esc is the key; another sequence (an F-key) is skipped whole.
                end = i + 1
                if data.startswith(("[", "O"), end):
                    end += 1
                    while end < len(data) and not ("@" <= data[end] <= "~"):
                        end += 1
                    end += 1
                else:
                    actions.append("follow")
                i = end
            continue
        letter = _LETTERS.get(data[i].lower())
        if letter is not None:
            actions.append(letter)
        i += 1
    return actions
