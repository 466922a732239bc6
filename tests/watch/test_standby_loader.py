"""The loader interpreter started ahead of time reads the code as it is when asked."""

from __future__ import annotations

from pathlib import Path

import pytest

from pivot.pipeline.errors import PipelineError
from pivot.watch.standby_loader import StandbyLoader

pytestmark = pytest.mark.timeout(120)

PIPELINE = """\
from pathlib import Path
from typing import Annotated

import helpers
from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def s(
    src: Annotated[Path, Dep("in.txt")],
    out: Annotated[Path, Out("out.txt")],
    n: int = helpers.N,
) -> None:
    out.write_text(str(n))
"""


def test_started_ahead_yet_fresh(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(PIPELINE)
    (tmp_path / "helpers.py").write_text("N = 1\n")
    (tmp_path / "in.txt").write_text("x\n")
    loader = StandbyLoader(tmp_path / "pipeline.py")
    try:
        assert loader.load(timeout=60).stage("s").params == {"n": 1}
        # The next interpreter is already waiting; edits made since count.
        (tmp_path / "helpers.py").write_text("N = 2\n")
        assert loader.load(timeout=60).stage("s").params == {"n": 2}
        (tmp_path / "helpers.py").write_text("N = (\n")
        with pytest.raises(PipelineError) as err:
            loader.load(timeout=60)
        assert err.value.file == "helpers.py" and err.value.line == 1
        (tmp_path / "helpers.py").write_text("N = 3\n")
        assert loader.load(timeout=60).stage("s").params == {"n": 3}
    finally:
        loader.close()
