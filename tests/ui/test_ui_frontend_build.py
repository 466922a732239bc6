"""The page shipped in the package (src/ui/static) is exactly what its source builds to.

The built assets are committed so that `pip install` gives a working
`pivot ui` without Node; this test rebuilds the source (`npm ci && npm run
build`, in a copy, into a temporary directory) and compares every file
byte for byte. After changing src/ui/frontend, run `npm ci && npm run
build` there and commit src/ui/static.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from testkit.require import require

FRONTEND = Path(__file__).parents[2] / "src" / "ui" / "frontend"
STATIC = FRONTEND.parent / "static"


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.slow
def test_committed_page_is_what_the_source_builds_to(tmp_path: Path) -> None:
    require(shutil.which("npm") is not None, "Node and npm (to rebuild the page)")
    work = tmp_path / "frontend"
    shutil.copytree(FRONTEND, work, ignore=shutil.ignore_patterns("node_modules"))
    out = tmp_path / "static"
    env = {**os.environ, "PIVOT_UI_OUT": str(out)}
    for argv in (["npm", "ci", "--no-audit", "--no-fund"], ["npm", "run", "build"]):
        r = subprocess.run(argv, cwd=work, env=env, capture_output=True, text=True, timeout=600,
                           check=False)  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
    built, committed = _files(out), _files(STATIC)
    assert sorted(built) == sorted(committed), "rebuild src/ui/static (npm run build) and commit"
    for name, data in built.items():
        assert committed[name] == data, f"src/ui/static/{name} differs from what the source builds"
