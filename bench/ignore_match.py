"""Cost of the watch hot path's ignore check, beside git's own matcher, same run.

Every path watchfiles reports goes through ``PathFilter.accept``
(``.gitignore``/``.pivotignore`` rules, built-ins, declared paths) before it
may reach the Debouncer. This builds a project with a realistic
``.gitignore`` (GitHub's Python template, shortened), a nested one and a
``.pivotignore`` with a negation, writes ``--paths`` files, and times:

- pivot cold: a fresh ``PathFilter`` (no ignore file read yet, no cache),
- pivot warm: the same filter again (directory decisions cached),
- git: ``git check-ignore --stdin`` over the same paths (one process; its
  start-up is included, so the ratio flatters pivot on small counts).

- pathspec (when installed; it comes with the dev tools): the same
  ``.gitignore`` as one ``GitIgnoreSpec`` (the nested file's rules prefixed
  with their folder), ``check_file`` on each path, with the ``is_dir`` stat
  that pivot also pays.

It then counts, for pivot and for pathspec, the paths whose
``.gitignore``-only decision differs from git's, on this project and on
``--fuzz`` random ignore files (the generator of
``tests/watch/test_ignore_vs_git.py``). Times are the best of three passes.

    uv run python bench/ignore_match.py [--paths 20000] [--fuzz 200]
"""

from __future__ import annotations

import argparse
import random
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pivot.watch.ignore import IgnoreRules
from pivot.watch.paths import PathFilter

GITIGNORE = """\
# Byte-compiled / optimized / DLL files
__pycache__/
*.py[cod]
*$py.class
*.so
.Python
build/
develop-eggs/
dist/
downloads/
eggs/
.eggs/
/lib/
lib64/
parts/
sdist/
var/
wheels/
*.egg-info/
.installed.cfg
*.egg
MANIFEST
pip-log.txt
htmlcov/
.tox/
.coverage
.coverage.*
.cache
nosetests.xml
coverage.xml
*.cover
.hypothesis/
.pytest_cache/
*.log
!keep.log
.env
.venv
env/
venv/
.mypy_cache/
.ipynb_checkpoints
data/**/*.tmp
/outputs/
models/*.ckpt
"""

SUB_GITIGNORE = "local.txt\n/anchored.txt\n*.bak\n"
PIVOTIGNORE = "!outputs/\nscratch/\n"


def make_paths(count: int) -> list[str]:
    """Relative paths: sources, data, caches, logs, outputs, a virtualenv."""
    kinds = [
        "src/pkg{a}/mod{b}.py",
        "src/pkg{a}/__pycache__/mod{b}.cpython-311.pyc",
        "data/raw/part{a}/chunk{b}.csv",
        "data/raw/part{a}/chunk{b}.tmp",
        "logs/run{a}/step{b}.log",
        "outputs/exp{a}/metrics{b}.json",
        ".venv/lib/python3.11/site-packages/p{a}/m{b}.py",
        "models/m{a}_{b}.ckpt",
        "sub/dir{a}/f{b}.bak",
        "notebooks/n{a}/.ipynb_checkpoints/c{b}.ipynb",
    ]
    out = []
    i = 0
    while len(out) < count:
        kind = kinds[i % len(kinds)]
        out.append(kind.format(a=(i // len(kinds)) % 50, b=i // (len(kinds) * 50)))
        i += 1
    return out


def build(root: Path, rels: list[str]) -> None:
    (root / ".gitignore").write_text(GITIGNORE)
    (root / "sub").mkdir()
    (root / "sub" / ".gitignore").write_text(SUB_GITIGNORE)
    (root / ".pivotignore").write_text(PIVOTIGNORE)
    for rel in rels:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x")
    subprocess.run(["git", "init", "-q", "--template=", str(root)], check=True)


def best(f: Callable[[], Any], n: int = 3) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times)


def git_ignored(root: Path, rels: list[str]) -> set[str]:
    done = subprocess.run(
        ["git", "check-ignore", "--stdin", "--no-index"],
        cwd=root,
        input="\n".join(rels) + "\n",
        capture_output=True,
        text=True,
        check=False,  # exit 1 when nothing is ignored
    )
    return {line for line in done.stdout.split("\n") if line}


def pathspec_matcher(root: Path) -> Callable[[str], bool] | None:
    """``rel -> ignored`` through pathspec, every .gitignore under ``root`` as one spec."""
    try:
        from pathspec import GitIgnoreSpec
    except ImportError:
        return None
    lines: list[str] = []
    for f in sorted(root.rglob(".gitignore"), key=lambda p: len(p.parts)):
        prefix = f.parent.relative_to(root).as_posix()
        for line in f.read_text().splitlines():
            if not line or line.startswith("#") or prefix == ".":
                lines.append(line)
                continue
            neg = "!" if line.startswith("!") else ""
            body = line[len(neg) :]
            anchored = "/" in body.rstrip("/")
            lines.append(f"{neg}{prefix}/{'' if anchored else '**/'}{body.lstrip('/')}")
    try:
        spec = GitIgnoreSpec.from_lines(lines)
    except ValueError:
        return None

    def ignored(rel: str) -> bool:
        is_dir = (root / rel).is_dir()
        return spec.match_file(rel + "/" if is_dir else rel)

    return ignored


NAMES = ["a", "b", "ab", "x.log", "y.csv", "build", "data", "c.tmp", "[x]", "d e"]
ATOMS = ["a", "b", "*", "?", "**", "x.log", "*.csv", "build", "data", "[ab]", "[!a]", "\\[x]"]


def fuzz_project(root: Path, rng: random.Random) -> list[str]:
    """As tests/watch/test_ignore_vs_git.py builds them."""

    def pattern() -> str:
        p = "/".join(rng.choice(ATOMS) for _ in range(rng.randint(1, 3)))
        p = ("/" + p) if rng.random() < 0.3 else p
        p = (p + "/") if rng.random() < 0.3 else p
        return ("!" + p) if rng.random() < 0.3 else p

    files = []
    for _ in range(40):
        rel = "/".join(rng.choice(NAMES) for _ in range(rng.randint(1, 4)))
        try:
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            if not (root / rel).exists():
                (root / rel).write_text("x")
                files.append(rel)
        except (FileExistsError, NotADirectoryError):
            continue
    (root / ".gitignore").write_text("".join(pattern() + "\n" for _ in range(rng.randint(1, 6))))
    sub = root / rng.choice(["a", "b", "data"])
    if sub.is_dir():
        (sub / ".gitignore").write_text("".join(pattern() + "\n" for _ in range(3)))
    subprocess.run(["git", "init", "-q", "--template=", str(root)], check=True)
    return files


def fuzz(count: int) -> tuple[int, int, int | None]:
    """(paths, pivot's disagreements with git, pathspec's) over ``count`` random projects."""
    rng = random.Random(0)
    paths = ours_bad = 0
    spec_bad: int | None = 0
    with tempfile.TemporaryDirectory() as tmp:
        for n in range(count):
            root = (Path(tmp) / str(n)).resolve()
            root.mkdir()
            files = fuzz_project(root, rng)
            git = git_ignored(root, files)
            ours = IgnoreRules(root, extra_rules=(), files=(".gitignore",))
            spec = pathspec_matcher(root)
            for f in files:
                paths += 1
                ours_bad += ours.is_ignored(f) != (f in git)
                if spec is None:
                    spec_bad = None
                elif spec_bad is not None:
                    spec_bad += spec(f) != (f in git)
    return paths, ours_bad, spec_bad


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--paths", type=int, default=20_000)
    ap.add_argument("--fuzz", type=int, default=200)
    args = ap.parse_args()
    rels = make_paths(args.paths)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp).resolve()
        build(root, rels)
        paths = [str(root / r) for r in rels]
        n = len(paths)

        fresh = PathFilter(root)
        t0 = time.perf_counter()
        accepted = sum(fresh.accept(p) for p in paths)
        cold = time.perf_counter() - t0
        f = PathFilter(root)
        warm = best(lambda: sum(f.accept(p) for p in paths))
        git_only = IgnoreRules(root, extra_rules=(), files=(".gitignore",))
        rules = best(lambda: [git_only.is_ignored(p) for p in paths])
        spec = pathspec_matcher(root)
        spec_s = best(lambda: [spec(r) for r in rels]) if spec else None
        git_s = best(lambda: git_ignored(root, rels))

        git_set = git_ignored(root, rels)
        ours_bad = sum(git_only.is_ignored(r) != (r in git_set) for r in rels)
        spec_bad = sum(spec(r) != (r in git_set) for r in rels) if spec else None

    def us(s: float) -> str:
        return f"{s / n * 1e6:.2f} us/path"

    print(f"paths: {n}, accepted by pivot watch: {accepted}")
    print(f"pivot PathFilter.accept, cold: {us(cold)}; warm: {us(warm)}")
    print(f"pivot IgnoreRules (.gitignore only), warm: {us(rules)}")
    if spec_s is not None:
        print(f"pathspec GitIgnoreSpec.match_file: {us(spec_s)}")
        print(f"ratio pivot IgnoreRules / pathspec: {rules / spec_s:.2f}")
    print(f"git check-ignore --stdin (one process): {us(git_s)}")
    print(f"ratio pivot PathFilter warm / git: {warm / git_s:.2f}")
    print(f"this project: paths decided unlike git: pivot {ours_bad}, pathspec {spec_bad}")
    total, fo, fs = fuzz(args.fuzz)
    print(f"{args.fuzz} random ignore files, {total} paths decided unlike git:")
    print(f"  pivot {fo}, pathspec {fs}")


if __name__ == "__main__":
    main()
