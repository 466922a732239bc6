"""The ignore matcher agrees with git itself on random ignore files.

`pivot watch` reads `.gitignore` files with its own matcher
(:mod:`pivot.watch.ignore`); git's ``check-ignore`` is the reference. Random
patterns over a small alphabet (``*``, ``?``, ``**``, classes, escapes,
anchors, trailing ``/``, negations), a nested `.gitignore`, real files on
disk: every path must get git's answer. This is also why the matcher is not
``pathspec``: run the same comparison through it (``bench/ignore_match.py``
does) and it disagrees with git on a trailing ``/**/`` and on negations that
match a parent directory.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import pytest

from pivot.watch.ignore import IgnoreRules

from testkit.require import require

NAMES = ["a", "b", "ab", "x.log", "y.csv", "build", "data", "c.tmp", "[x]", "d e"]
ATOMS = ["a", "b", "*", "?", "**", "x.log", "*.csv", "build", "data", "[ab]", "[!a]", "\\[x]"]


def _pattern(rng: random.Random) -> str:
    p = "/".join(rng.choice(ATOMS) for _ in range(rng.randint(1, 3)))
    if rng.random() < 0.3:
        p = "/" + p
    if rng.random() < 0.3:
        p += "/"
    if rng.random() < 0.3:
        p = "!" + p
    return p


def _project(root: Path, rng: random.Random) -> list[str]:
    """Random files and ignore files under ``root``; returns the files (relative)."""
    files: list[str] = []
    for _ in range(40):
        rel = "/".join(rng.choice(NAMES) for _ in range(rng.randint(1, 4)))
        path = root / rel
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists():
                path.write_text("x")
                files.append(rel)
        except (FileExistsError, NotADirectoryError):
            continue  # a name already used by a file cannot be a folder too
    top = [_pattern(rng) for _ in range(rng.randint(1, 6))]
    (root / ".gitignore").write_text("".join(p + "\n" for p in top))
    sub = root / rng.choice(["a", "b", "data"])
    if sub.is_dir():
        (sub / ".gitignore").write_text("".join(_pattern(rng) + "\n" for _ in range(3)))
    return files


def _git_ignored(root: Path, files: list[str]) -> set[str]:
    done = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=root,
        input="".join(f + "\n" for f in files),
        capture_output=True,
        text=True,
        check=False,  # 1: nothing ignored
    )
    assert done.returncode in (0, 1), done.stderr
    return {line for line in done.stdout.split("\n") if line}


@pytest.mark.parametrize("seed", range(4))
def test_every_path_gets_gits_answer(tmp_path: Path, seed: int) -> None:
    require(shutil.which("git") is not None, "git")
    rng = random.Random(seed)
    checked = 0
    for n in range(20):
        root = (tmp_path / str(n)).resolve()
        root.mkdir()
        files = _project(root, rng)
        subprocess.run(["git", "init", "-q", "--template=", str(root)], check=True)
        git = _git_ignored(root, files)
        ours = IgnoreRules(root, extra_rules=(), files=(".gitignore",))
        rules = (root / ".gitignore").read_text()
        for f in files:
            assert ours.is_ignored(f) == (f in git), f"{f!r} under .gitignore:\n{rules}"
        checked += len(files)
    assert checked > 400  # the generator really made files to compare
