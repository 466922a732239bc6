"""Forgetting cached bytecode that may not match its source.

Python trusts a ``__pycache__/*.pyc`` whose recorded source modification time
(whole seconds) and size match the source file. Two saves within one second
that keep the size (``N = 1`` -> ``N = 2``) therefore leave a fresh
interpreter running the *old* code from the cache, while pivot's fingerprint
(read from the source) records the new code. Two remedies, one module:

- :func:`drop_bytecode`: watch mode knows which sources changed; it drops
  their cache before reloading and restarting workers.
- :func:`drop_racy_bytecode`: every pipeline load (`pivot run` included)
  drops the cache of project sources whose ``.pyc`` is *racy*: written within
  a second of the source modification time it records, so a later edit in
  that same second would be invisible to Python. A cache written later than
  that is safe, and is kept (no recompiling on every run).
"""

from __future__ import annotations

import contextlib
import os
import struct
from collections.abc import Iterable
from pathlib import Path

__all__ = ["drop_bytecode", "drop_racy_bytecode", "is_racy"]

# How close (seconds) the cache's own write time may be to the source mtime
# it records before an unseen same-second edit is possible. The source is
# read before the cache is written, so allow the second after it too.
RACY_WINDOW = 1


def drop_bytecode(sources: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Delete ``__pycache__/<stem>.*.pyc`` next to each ``.py`` source; returns what went."""
    dropped: list[Path] = []
    for src in _sources(sources):
        for pyc in _caches(src):
            with contextlib.suppress(OSError):
                pyc.unlink()
                dropped.append(pyc)
    return dropped


def drop_racy_bytecode(sources: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Delete the caches of ``sources`` that :func:`is_racy` says may be stale."""
    dropped: list[Path] = []
    for src in _sources(sources):
        for pyc in _caches(src):
            if is_racy(pyc):
                with contextlib.suppress(OSError):
                    pyc.unlink()
                    dropped.append(pyc)
    return dropped


def is_racy(pyc: Path) -> bool:
    """Whether a timestamp-checked ``.pyc`` was written so soon after the source
    mtime it records that an edit in that same second could go unseen.

    Hash-checked caches (PEP 552) compare content and are never racy; an
    unreadable or malformed cache counts as racy (dropping it is harmless).
    """
    try:
        with pyc.open("rb") as f:
            header = f.read(16)
        written = int(pyc.stat().st_mtime)
    except OSError:
        return False  # already gone
    if len(header) < 16:
        return True
    flags, source_mtime = struct.unpack("<II", header[4:12])
    if flags & 0b1:
        return False  # hash-based
    return written - int(source_mtime) <= RACY_WINDOW


def _sources(sources: Iterable[str | os.PathLike[str]]) -> Iterable[Path]:
    for raw in sources:
        src = Path(raw)
        if src.suffix == ".py":
            yield src


def _caches(src: Path) -> list[Path]:
    cache = src.parent / "__pycache__"
    if not cache.is_dir():
        return []
    # "<stem>.<tag>[.opt-N].pyc": the stem never contains the tag's dot.
    return [p for p in cache.glob(f"{src.stem}.*.pyc") if p.name.split(".", 1)[0] == src.stem]
