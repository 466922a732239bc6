"""A large params.yaml value reaches its stage whole but is recorded as a digest."""

from __future__ import annotations

import json
from pathlib import Path

from testkit.pipeline_project import HEADER, make_project

PIPELINE = (
    HEADER
    + """
@pipeline.stage
def big(out: Annotated[Path, Out("out.txt")], blob: str = "", small: int = 1) -> None:
    out.write_text(f"{len(blob)} {blob[-3:]} {small}")
"""
)

SIZE = 2_000_000


def _params(tail: str, small: int = 1) -> str:
    return "big:\n  blob: " + json.dumps("x" * (SIZE - 3) + tail) + f"\n  small: {small}\n"


def test_a_large_param_is_recorded_as_a_digest_and_a_change_still_shows(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    project.write("pipeline.py", PIPELINE)
    project.write("params.yaml", _params("abc"))
    assert project.ran() == ["big"]
    assert project.read("out.txt") == f"{SIZE} abc 1"  # the stage got the whole value
    for db in ("state.db", "events.db"):
        size = (project.root / ".pivot" / db).stat().st_size
        assert size < SIZE // 4, f"{db} holds {size} bytes: the value was stored whole"
    assert project.status() == {"big": []}
    project.write("params.yaml", _params("abd", small=2))
    [reason_big, reason_small] = project.status()["big"]
    assert reason_big.startswith(f'param changed: blob "<{SIZE + 2} bytes, digest '), reason_big
    assert reason_small == "param changed: small 1 -> 2"
    assert project.ran() == ["big"]
    assert project.read("out.txt") == f"{SIZE} abd 2"
    assert project.status() == {"big": []}
    events = project.cli("events", "--json").stdout
    assert "x" * 2000 not in events
