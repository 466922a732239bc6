"""One message for a name that matches nothing: what was meant, and what exists.

Every command that takes a stage (``run``, ``status``, ``dag``, ``why``,
``watch``, ``events --stage``) or a watcher id says the same thing about a
typo, through :func:`unknown_name`::

    unknown stage 'stas'; did you mean 'stats'? (known stages: clean, stats, report)

The CLI exits with :data:`USAGE_EXIT` (2) after it, like any other mistake
on the command line.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

__all__ = ["SHOWN", "USAGE_EXIT", "closest", "unknown_name"]

SHOWN = 20  # at most this many names in a message
USAGE_EXIT = 2  # exit status of a command given a name that does not exist


def closest(name: str, known: Sequence[str]) -> str | None:
    """The known name ``name`` most likely is a typo of, if one is close enough."""
    by_lower = {k.lower(): k for k in known}
    if name.lower() in by_lower:  # only the case differs
        return by_lower[name.lower()]
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_name(what: str, name: str, known: Sequence[str], hint: str = "") -> str:
    """``unknown stage 'x'; did you mean 'y'? (known stages: ...)``, at most :data:`SHOWN` listed.

    ``known`` in the order to show them (declaration order for stages).
    """
    names = list(dict.fromkeys(known))
    guess = closest(name, names)
    if not names:
        listing = f"no {what}s are known yet"
    else:
        more = f", ... ({len(names)} in all)" if len(names) > SHOWN else ""
        listing = f"known {what}s: " + ", ".join(names[:SHOWN]) + more
    meant = f"; did you mean {guess!r}?" if guess is not None else ""
    return f"unknown {what} {name!r}{meant} ({listing}){hint}"
