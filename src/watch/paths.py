"""What to watch and which reported paths count.

Directories are watched, never single files: editors save by writing a
temporary file and renaming it over the original, and a watch on the file
itself goes deaf after the first such save.

The project root is watched *flat* (its direct entries: `pipeline.py`,
`params.yaml`, new top-level folders) and each top-level folder that is not
ignored is watched *deep* (recursively), so `.venv/`, `.git/`, `.pivot/` and
other ignored trees never cost an inotify watch. Declared deps and outputs
outside those trees (elsewhere on disk, or inside a git-ignored folder, as
data often is) are added: a directory deep, a file through its parent flat.

Declared deps and outputs are watched even when `.gitignore` matches them
(data is usually git-ignored); `.pivotignore` and the built-in rules still
apply to them, and `.pivot/` is never watched.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pivot.watch.ignore import ALWAYS_IGNORED, IgnoreRules

__all__ = ["PathFilter", "WatchedDirs", "dirs_to_watch"]


@dataclass(frozen=True, slots=True)
class WatchedDirs:
    """Directories to watch: ``flat`` (direct entries only) and ``deep`` (recursive)."""

    flat: tuple[Path, ...]
    deep: tuple[Path, ...]


def _covered(path: Path, deep: Iterable[Path]) -> bool:
    return any(path == d or d in path.parents for d in deep)


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def dirs_to_watch(root: Path, ignore: IgnoreRules, declared: Iterable[Path] = ()) -> WatchedDirs:
    """The directories to watch for a project root and its declared paths."""
    root = root.resolve()
    deep: set[Path] = set()
    flat: set[Path] = {root}
    try:
        entries = list(root.iterdir())
    except OSError:
        entries = []
    for entry in entries:
        if entry.name in ALWAYS_IGNORED:
            continue
        if entry.is_dir() and not entry.is_symlink() and not ignore.is_ignored(entry, True):
            deep.add(entry)
    for raw in declared:
        path = raw if raw.is_absolute() else root / raw
        if _covered(path, deep):
            continue
        if path.is_dir():
            deep.add(path)
        else:
            parent = _nearest_existing(path.parent)
            if parent != root:
                flat.add(parent)
    deep_sorted = sorted(d for d in deep if not _covered_strictly(d, deep))
    flat_sorted = sorted(f for f in flat if not _covered(f, deep_sorted))
    return WatchedDirs(tuple(flat_sorted), tuple(deep_sorted))


def _covered_strictly(path: Path, deep: Iterable[Path]) -> bool:
    return any(d in path.parents for d in deep)


class PathFilter:
    """Decides whether a reported path may cause a change batch."""

    def __init__(self, root: Path, declared: Iterable[Path] = ()) -> None:
        self.root = root.resolve()
        self.full = IgnoreRules(self.root)
        self.pivot_only = IgnoreRules(self.root, files=(".pivotignore",))
        self.set_declared(declared)

    def set_declared(self, declared: Iterable[Path]) -> None:
        """Replace the declared deps and outputs (after a reload)."""
        self._declared = frozenset(
            (p if p.is_absolute() else self.root / p).resolve() for p in declared
        )

    def reset(self) -> None:
        """Re-read ignore files on next use."""
        self.full.reset()
        self.pivot_only.reset()

    def _is_declared(self, path: Path) -> bool:
        if path in self._declared:
            return True
        return any(parent in self._declared for parent in path.parents)

    def accept(self, raw: str) -> bool:
        """Whether a change at ``raw`` (absolute path) counts."""
        path = Path(raw)
        if path.parent == self.root and path.name in ALWAYS_IGNORED:
            return False
        if self.root in path.parents:
            top = path.relative_to(self.root).parts[0]
            if top in ALWAYS_IGNORED:
                return False
        if not self.full.is_ignored(path):
            return True
        return self._is_declared(path) and not self.pivot_only.is_ignored(path)
