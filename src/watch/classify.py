"""Split changed paths into code/config (reload the pipeline) and data.

Code/config: any ``.py`` file of the project, the pipeline file, `params.yaml`,
`pivot.toml`, and ignore files. Everything else is data. A batch with any
code path is a *code* batch: the pipeline is reloaded in a fresh interpreter,
workers are restarted and whatever is stale runs (which covers the data
paths of the same batch too).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, MutableMapping
from dataclasses import dataclass
from pathlib import Path

from pivot.watch.ignore import IGNORE_FILES

__all__ = ["CONFIG_NAMES", "Classified", "classify", "content_digest", "is_code", "really_changed"]

CONFIG_NAMES = frozenset({"pipeline.py", "params.yaml", "pivot.toml"})


@dataclass(frozen=True, slots=True)
class Classified:
    """Paths of one batch by kind; ``ignore_changed`` says ignore rules must be re-read."""

    code: frozenset[str]
    data: frozenset[str]
    ignore_changed: bool

    @property
    def kind(self) -> str:
        """``"code"`` when any code/config path changed, else ``"data"``."""
        return "code" if self.code else "data"


def is_code(path: Path, root: Path, pipeline_file: Path | None = None) -> bool:
    """Whether a change to ``path`` requires reloading the pipeline."""
    if path.name in IGNORE_FILES:
        return True
    if pipeline_file is not None and path == pipeline_file:
        return True
    inside = path == root or root in path.parents
    if not inside:
        return False
    if path.suffix == ".py":
        return True
    return path.parent == root and path.name in CONFIG_NAMES


def classify(paths: Iterable[str], root: Path, pipeline_file: Path | None = None) -> Classified:
    """Classify absolute paths of one batch."""
    code: set[str] = set()
    data: set[str] = set()
    ignore_changed = False
    for p in paths:
        path = Path(p)
        if path.name in IGNORE_FILES:
            ignore_changed = True
        if is_code(path, root, pipeline_file):
            code.add(p)
        else:
            data.add(p)
    return Classified(frozenset(code), frozenset(data), ignore_changed)


def content_digest(path: str) -> str | None:
    """Hash of a file's bytes; None when it is missing or not a regular file."""
    try:
        with open(path, "rb") as fh:  # noqa: PTH123 - hot path, plain str paths
            return hashlib.blake2b(fh.read(), digest_size=16).hexdigest()
    except OSError:
        return None


def really_changed(
    paths: Iterable[str],
    seen: MutableMapping[str, str | None],
    digest: Callable[[str], str | None] = content_digest,
) -> frozenset[str]:
    """The ``paths`` whose content differs from when they were last seen; updates ``seen``.

    Editors often write a file twice, or save it unchanged: the pipeline is
    reloaded (and workers restarted) only for a real edit. A path never seen
    counts as changed.
    """
    changed: set[str] = set()
    for p in paths:
        now = digest(p)
        if p not in seen or seen[p] != now:
            changed.add(p)
        seen[p] = now
    return frozenset(changed)
