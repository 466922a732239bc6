"""Code fingerprints: helper edits re-run exactly the stages reaching them; comments don't."""

from __future__ import annotations

from pathlib import Path

from testkit.pipeline_project import HEADER, Project, make_project

PIPELINE = (
    HEADER
    + """
from stages import scale, shout, plain

pipeline.stage(scale)
pipeline.stage(shout)
pipeline.stage(plain)
"""
)

STAGES = """
from pathlib import Path
from typing import Annotated

from pivot import Dep, Out
from lib import utils
from lib.utils import normalize

FACTOR = 2


def scale(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("scaled.txt")]) -> None:
    out.write_text(str(int(normalize(src.read_text())) * FACTOR))


def shout(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("loud.txt")]) -> None:
    out.write_text(utils.LOUD(src.read_text()))


def plain(src: Annotated[Path, Dep("in.txt")], out: Annotated[Path, Out("plain.txt")]) -> None:
    out.write_text(src.read_text())
"""

UTILS = '''
"""Helpers."""


def normalize(text: str) -> str:
    return text.strip()


def LOUD(text: str) -> str:
    return text.upper() + "!"
'''


def _setup(project: Project) -> None:
    project.write("pipeline.py", PIPELINE)
    project.write("stages.py", STAGES)
    project.write("lib/__init__.py", "")
    project.write("lib/utils.py", UTILS)
    project.write("in.txt", " 21 ")
    assert sorted(project.ran()) == ["plain", "scale", "shout"]
    assert project.read("scaled.txt") == "42"


def test_helper_edit_reruns_exactly_the_stages_reaching_it(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    _setup(project)
    project.write("lib/utils.py", UTILS.replace("text.strip()", "text.strip() + '0'"))
    status = project.status()
    assert status == {
        "scale": ["code changed: lib/utils.py:normalize"],
        "shout": [],
        "plain": [],
    }
    assert project.ran() == ["scale"]
    assert project.read("scaled.txt") == "420"  # the new helper code ran in the worker
    # A module-level constant used through the stage's module.
    project.write("stages.py", STAGES.replace("FACTOR = 2", "FACTOR = 3"))
    assert project.status()["scale"] == ["code changed: stages.py:FACTOR"]
    # Reached through an attribute of an imported module (utils.LOUD).
    project.write("lib/utils.py", UTILS.replace('+ "!"', '+ "?"'))
    assert project.status()["shout"] == ["code changed: lib/utils.py:LOUD"]
    assert sorted(project.ran()) == ["scale", "shout"]
    assert project.read("loud.txt") == "21 ?"


def test_comment_docstring_and_formatting_edits_rerun_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path)
    _setup(project)
    project.write(
        "lib/utils.py",
        UTILS.replace('"""Helpers."""', '"""Helpers, documented better."""')
        .replace(
            "def normalize(text: str) -> str:",
            "def normalize(text: str) -> str:  # trim\n    '''Trim.'''",
        )
        .replace("return text.upper()", "# shout it\n    return (text.upper()  )"),
    )
    project.write(
        "stages.py", "# a comment at the top\n" + STAGES.replace("FACTOR = 2", "FACTOR = (2)")
    )
    assert project.status() == {"scale": [], "shout": [], "plain": []}
    assert project.ran() == []
