"""``.pivot/code-cache.json``: what parsing each project source gave, by file signature.

The :class:`~pivot.pipeline.fingerprint.Fingerprinter` reuses an entry only
while the file's signature matches, so an edit is always parsed anew; this
module only reads and writes the file (atomically; a read-only project loads
without it, only slower).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pivot.pipeline.fingerprint import Fingerprinter
from pivot.pipeline.state import STATE_DIR

__all__ = ["read_code_cache", "write_code_cache"]


def _code_cache_path(root: Path) -> Path:
    return root / STATE_DIR / "code-cache.json"


def read_code_cache(root: Path) -> dict[str, Any]:
    """Per-file fingerprint pieces of earlier loads (``.pivot/code-cache.json``)."""
    try:
        data = json.loads(_code_cache_path(root).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_code_cache(root: Path, fp: Fingerprinter) -> None:
    """Merge what ``fp`` parsed anew into the file, dropping entries of deleted files."""
    if not fp.updated:
        return
    cache = read_code_cache(root)
    cache.update(fp.updated)
    cache = {rel: v for rel, v in cache.items() if (root / rel).is_file()}
    path = _code_cache_path(root)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(cache, separators=(",", ":")))
        tmp.replace(path)  # atomic: concurrent loaders never see half a file
    except OSError:
        pass  # a cache: a read-only project still loads, only slower
