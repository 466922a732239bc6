"""Split changed paths into code/config (reload the pipeline) and data.

Code/config: any ``.py`` file of the project, the pipeline file, `params.yaml`,
`pivot.toml`, and ignore files. Everything else is data. A batch with any
code path is a *code* batch: the pipeline is reloaded in a fresh interpreter,
workers are restarted and whatever is stale runs (which covers the data
paths of the same batch too).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pivot.watch.ignore import IGNORE_FILES

__all__ = ["CONFIG_NAMES", "Classified", "classify", "is_code"]

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
