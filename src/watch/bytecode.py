"""Forgetting the cached bytecode of edited source files.

Python trusts a ``__pycache__/*.pyc`` whose recorded source modification time
(whole seconds) and size match the source file. Two saves within one second
that keep the size (``N = 1`` -> ``N = 2``) therefore leave a fresh
interpreter running the *old* code from the cache. Before reloading the
pipeline and starting fresh workers, watch mode deletes the cached bytecode
of every source file that changed, so the next import compiles what is on
disk. (Measured: with bytecode writing on, the default, the second import
printed the old value.)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path

__all__ = ["drop_bytecode"]


def drop_bytecode(sources: Iterable[str]) -> list[Path]:
    """Delete ``__pycache__/<stem>.*.pyc`` next to each ``.py`` source; returns what went."""
    dropped: list[Path] = []
    for raw in sources:
        src = Path(raw)
        if src.suffix != ".py":
            continue
        cache = src.parent / "__pycache__"
        if not cache.is_dir():
            continue
        for pyc in cache.glob(f"{src.stem}.*.pyc"):
            # "<stem>.<tag>[.opt-N].pyc": the stem never contains the tag's dot.
            if pyc.name.split(".", 1)[0] != src.stem:
                continue
            with contextlib.suppress(OSError):
                pyc.unlink()
                dropped.append(pyc)
    return dropped
