"""A small tmpfs of the test's own, so that filling a disk harms nothing else (as root)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

from testkit.require import require

__all__ = ["tmpfs_disk"]


@contextlib.contextmanager
def tmpfs_disk(tmp_path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``mount -o size=``, e.g. ``1m``) at ``tmp_path/disk``,
    unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    require(proc.returncode == 0, f"a tmpfs mount (as root): {proc.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)
