"""What a warm parent imports ahead of time, and how it knows it went stale.

A warm parent (:mod:`pivot.pipeline.warm_parent`) imports the project's
*third-party* modules once, never project code, and forks fresh workers from
itself, so a code change no longer pays numpy's or pandas' import again.
This module holds its decisions, as plain functions over plain data:

* :func:`imports_in` and :func:`candidates`: the modules named by every
  ``import`` statement (anywhere in a file, so a stage's lazy ``import torch``
  counts) of the project's Python files. Which of them are third-party is
  settled in the warm parent itself (:func:`is_project_name` here, the import
  system's answer there): a name the project root could provide (a
  ``helpers.py`` next to ``pipeline.py``, or one shadowing an installed
  package) is never preloaded.
* :func:`preload_order`: modules known to start threads at import *and* to
  be safe to fork after it (:data:`FORK_SAFE_THREADS`) come first, so that a
  thread appearing during any later import is blamed on that import.
* :func:`stamp` and :func:`first_change`: the identity (inode, size, mtime)
  of every file the parent imported and of every directory on its
  ``sys.path``. ``pip install``/``upgrade`` replaces package files and adds or
  removes ``*.dist-info`` entries (the directory's mtime changes), so a
  parent whose stamp no longer matches the disk holds stale code and is
  rebuilt before anything is forked from it.
"""

from __future__ import annotations

import ast
import importlib.machinery
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "FORK_SAFE_THREADS",
    "NEVER_PRELOAD",
    "ImportCache",
    "Stamp",
    "candidates",
    "first_change",
    "imports_in",
    "is_project_name",
    "preload_order",
    "project_sources",
    "stamp",
]

# Top-level packages whose import starts native threads that are safe across
# fork: numpy's OpenBLAS pool (registered with pthread_atfork, quiesced before
# each fork and started again in the child; checked by bench/hot_reload.py,
# whose forked child multiplies matrices on it). Anything else that starts a
# thread at import makes the warm parent unsafe.
FORK_SAFE_THREADS = frozenset({"numpy"})

# Standard modules with effects at import (printing, opening a browser).
NEVER_PRELOAD = frozenset({"__main__", "antigravity", "this", "idlelib", "turtledemo"})

# Folders never scanned for project sources: environments, caches, VCS.
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "dist-packages"})
MAX_SOURCES = 5000

Stamp = dict[str, tuple[int, int, int]]


def imports_in(source: str) -> set[str]:
    """Absolute module names imported anywhere in ``source`` (empty if it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def project_sources(root: Path, limit: int = MAX_SOURCES) -> list[Path]:
    """The project's ``.py`` files: hidden folders, virtual environments and caches skipped."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(
            d
            for d in dirs
            if not d.startswith(".")
            and d not in _SKIP_DIRS
            and not (Path(folder) / d / "pyvenv.cfg").exists()
        )
        found.extend(Path(folder) / f for f in sorted(files) if f.endswith(".py"))
        if len(found) >= limit:
            return found[:limit]
    return found


ImportCache = dict[str, tuple[tuple[int, int], set[str]]]


def candidates(
    root: Path, sources: Iterable[Path] | None = None, cache: ImportCache | None = None
) -> list[str]:
    """Every module the project's files import (sorted); which are third-party is decided
    by the warm parent (:func:`is_project_name`, the import system). With ``cache``
    (path -> ((mtime, size), names)), a file is parsed again only when it changed."""
    names: set[str] = set()
    for path in project_sources(root) if sources is None else sources:
        try:
            st = path.stat()
            key = (st.st_mtime_ns, st.st_size)
            hit = cache.get(str(path)) if cache is not None else None
            if hit is not None and hit[0] == key:
                found = hit[1]
            else:
                found = imports_in(path.read_text(encoding="utf-8", errors="replace"))
                if cache is not None:
                    cache[str(path)] = (key, found)
        except OSError:
            continue
        names |= found
    return sorted(n for n in names if n.split(".")[0] not in NEVER_PRELOAD)


def is_project_name(top: str, roots: Iterable[str]) -> bool:
    """Whether ``top`` (a top-level module name) could be found in one of ``roots``.

    A worker puts the project root first on ``sys.path``, so such a name is
    the project's (or shadows an installed one): never preloaded.
    """
    for root in roots:
        base = Path(root) / top
        if base.is_dir() or any(Path(f"{base}{suffix}").exists() for suffix in _SUFFIXES):
            return True
    return False


# What a module file may end with: .py, .pyc, .cpython-311-x86_64-linux-gnu.so, .so...
_SUFFIXES = tuple(importlib.machinery.all_suffixes())


def preload_order(names: Iterable[str]) -> list[str]:
    """``names`` with the known fork-safe thread starters (and their submodules) first."""
    unique = sorted(set(names))
    first = [n for n in unique if n.split(".")[0] in FORK_SAFE_THREADS]
    return first + [n for n in unique if n not in first]


def _identity(path: str) -> tuple[int, int, int] | None:
    try:
        st = Path(path).stat()
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def stamp(paths: Iterable[str]) -> Stamp:
    """(inode, size, mtime) of each path that exists; a missing path is left out."""
    out: Stamp = {}
    for path in paths:
        ident = _identity(path)
        if ident is not None:
            out[path] = ident
    return out


def first_change(before: Mapping[str, tuple[int, int, int]], since_ns: int = 0) -> str | None:
    """The first path of ``before`` that is gone or differs on disk now; None if none.

    With ``since_ns``, a file modified at or after that time counts as changed
    even when it matches: it may have been rewritten while it was imported.
    """
    for path, ident in before.items():
        now = _identity(path)
        if now != ident or (since_ns and ident[2] >= since_ns):
            return path
    return None
