"""`pivot run` never runs code older than the source it fingerprinted.

Python trusts a ``.pyc`` whose recorded source mtime (whole seconds) and size
match the source. Two saves of a helper in one second, keeping its size,
leave the first save's bytecode valid in Python's eyes. The test builds that
situation exactly (cache written in the second of the edit, second edit in
the same second with the same size) with bytecode writing ON, as users have
it (this suite otherwise sets PYTHONDONTWRITEBYTECODE=1).
"""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

from testkit.pipeline_project import HEADER, PIVOT, make_project

PIPELINE = (
    HEADER
    + """
import helpers


@pipeline.stage
def show(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("out.txt")]) -> None:
    out.write_text(helpers.VALUE + src.read_text())
"""
)


def _run(root: Path) -> None:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # Python's default: write .pyc files
    proc = subprocess.run(
        [*PIVOT, "run"], cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_second_run_sees_a_same_second_same_size_edit(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    helpers = project.write("helpers.py", 'VALUE = "v1"\n')
    project.write("in.txt", ":x\n")
    _run(project.root)
    assert project.read("out.txt") == "v1:x\n"
    [pyc] = (project.root / "__pycache__").glob("helpers.*.pyc")
    recorded = struct.unpack("<I", pyc.read_bytes()[8:12])[0]  # source mtime, whole seconds
    # The cache was written in the second its source was saved...
    os.utime(pyc, ns=(recorded * 10**9 + 900_000_000,) * 2)
    # ... and a second save lands in that same second, keeping the size.
    before = helpers.stat().st_mtime_ns
    helpers.write_text('VALUE = "v2"\n')
    again = recorded * 10**9 + (before + 1_000_000) % 10**9  # same second, another instant
    os.utime(helpers, ns=(again, again))
    assert helpers.stat().st_size == len('VALUE = "v1"\n')

    _run(project.root)
    assert project.read("out.txt") == "v2:x\n"  # the new code ran, as fingerprinted


def test_only_racy_caches_are_dropped(tmp_path: Path) -> None:
    import py_compile

    from pivot.pipeline.bytecode import drop_racy_bytecode, is_racy

    src = tmp_path / "mod.py"
    src.write_text("X = 1\n")
    compiled = py_compile.compile(str(src), doraise=True)
    assert compiled is not None  # doraise: None only when compiling failed quietly
    pyc = Path(compiled)
    recorded = struct.unpack("<I", pyc.read_bytes()[8:12])[0]
    os.utime(pyc, (recorded + 5, recorded + 5))  # written well after the save: safe
    assert not is_racy(pyc)
    assert drop_racy_bytecode([src]) == []
    os.utime(pyc, (recorded, recorded))  # written in the second of the save
    assert is_racy(pyc)
    assert drop_racy_bytecode([src]) == [pyc]
    assert not pyc.exists()
    compiled = py_compile.compile(
        str(src), doraise=True, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
    )
    assert compiled is not None
    checked = Path(compiled)
    assert not is_racy(checked)  # compares content, never stale
