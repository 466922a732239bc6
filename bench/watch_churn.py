"""Correctness under churn: random edits of code and data while `pivot watch` runs.

200 random edits (default), 0-300 ms apart so many land during waves: data
files rewritten in place or by atomic rename, a file added to or removed
from a folder dep, the helper module's VERSION bumped, params.yaml changed.
Then a last edit, and once its wave is over:

- every output is compared with a fresh `pivot run --force` in a copy of the
  project (zero missed changes);
- every stage run logged the helper VERSION it imported and when it ran; a
  run that used an older VERSION than a run of an *earlier wave* ran on
  stale code (zero runs on stale code). Within one wave, an edit landing
  mid-wave may be picked up by a worker that imports late; the follow-up
  wave then runs everything on the new code.

Run: ``uv run python bench/watch_churn.py [--edits 200] [--seed 1] [--third-party yaml]``
(``--third-party``: the helper imports that module, so code changes run on
workers forked from the warm parent).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

PIVOT = str(Path(sys.executable).with_name("pivot"))

PIPELINE = """
import json
import os
import time
from pathlib import Path
from typing import Annotated

import helpers
from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


def _log(stage: str) -> None:
    Path("runlog").mkdir(exist_ok=True)
    with open("runlog/runs.jsonl", "a") as fh:
        run = {"stage": stage, "version": helpers.VERSION, "at": time.time(), "ppid": os.getppid()}
        fh.write(json.dumps(run))
        fh.write("\\n")


@pipeline.stage
def clean(
    raw: Annotated[Path, Dep("data/raw.txt")],
    out: Annotated[Path, Out("work/clean.txt")],
    scale: int = 1,
) -> None:
    _log("clean")
    rows = [r for r in raw.read_text().split() if r]
    out.write_text(" ".join(helpers.fix(r, scale) for r in rows) + "\\n")


@pipeline.stage
def count(
    folder: Annotated[Path, Dep("data/items")],
    out: Annotated[Path, Out("work/count.txt")],
) -> None:
    _log("count")
    names = sorted(p.name + "=" + p.read_text().strip() for p in folder.iterdir())
    out.write_text(f"{helpers.VERSION} {len(names)} {' '.join(names)}\\n")


@pipeline.stage
def merge(
    clean: Annotated[Path, Dep("work/clean.txt")],
    count: Annotated[Path, Dep("work/count.txt")],
    other: Annotated[Path, Dep("data/other.txt")],
    out: Annotated[Path, Out("reports/merged.txt")],
) -> None:
    _log("merge")
    out.write_text(
        clean.read_text() + count.read_text() + other.read_text() + f"v={helpers.VERSION}\\n"
    )


@pipeline.stage
def sentinel(
    src: Annotated[Path, Dep("data/sentinel.txt")],
    out: Annotated[Path, Out("reports/sentinel.txt")],
) -> None:
    out.write_text(src.read_text())
"""


# `--third-party yaml`: the helper module imports it, so `pivot watch` forks its
# code-change workers from a warm parent (it is not used for a project that
# imports only the standard library).
THIRD_PARTY: list[str] = []


def helpers_text(version: int) -> str:
    imports = "".join(f"import {name}\n" for name in THIRD_PARTY)
    return (
        imports
        + textwrap.dedent(
            f"""
        VERSION = {version}


        def fix(row: str, scale: int) -> str:
            return f"{{row}}*{{scale}}@{{VERSION}}"
        """
        ).lstrip()
    )


def make_project(root: Path) -> None:
    (root / "data" / "items").mkdir(parents=True)
    (root / "pipeline.py").write_text(textwrap.dedent(PIPELINE).lstrip())
    (root / "helpers.py").write_text(helpers_text(0))
    (root / "params.yaml").write_text("clean:\n  scale: 1\n")
    (root / ".gitignore").write_text("runlog/\n")
    (root / "data" / "raw.txt").write_text("a b c\n")
    (root / "data" / "other.txt").write_text("o0\n")
    (root / "data" / "sentinel.txt").write_text("s0\n")
    for i in range(3):
        (root / "data" / "items" / f"i{i}.txt").write_text(f"{i}\n")


def atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.swp-tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class Edits:
    """Random edits; the helper VERSION only ever goes up."""

    def __init__(self, root: Path, rng: random.Random) -> None:
        self.root, self.rng = root, rng
        self.version = 0
        self.kinds: dict[str, int] = {}

    def one(self) -> None:
        r, rng = self.root, self.rng
        kind = rng.choice(
            ["raw", "raw-atomic", "other", "item-add", "item-del", "item-edit", "code", "param"]
        )
        self.kinds[kind] = self.kinds.get(kind, 0) + 1
        word = "".join(rng.choice("xyz") for _ in range(3))
        if kind == "raw":
            (r / "data" / "raw.txt").write_text(f"{word} {rng.randint(0, 99)}\n")
        elif kind == "raw-atomic":
            atomic(r / "data" / "raw.txt", f"{word} atomic\n")
        elif kind == "other":
            (r / "data" / "other.txt").write_text(f"{word}\n")
        elif kind == "item-add":
            (r / "data" / "items" / f"{word}.txt").write_text(f"{rng.randint(0, 9)}\n")
        elif kind == "item-del":
            items = sorted((r / "data" / "items").iterdir())
            if len(items) > 1:
                rng.choice(items).unlink()
        elif kind == "item-edit":
            items = sorted((r / "data" / "items").iterdir())
            rng.choice(items).write_text(f"{word}\n")
        elif kind == "code":
            self.version += 1
            atomic(r / "helpers.py", helpers_text(self.version))
        else:
            (r / "params.yaml").write_text(f"clean:\n  scale: {rng.randint(1, 5)}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--third-party", action="append", default=[], metavar="MODULE")
    args = parser.parse_args()
    THIRD_PARTY.extend(args.third_party)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "proj"
        root.mkdir()
        make_project(root)
        proc = subprocess.Popen(
            [PIVOT, "watch", "--display", "json", "-j", str(args.jobs)],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        items: list[dict[str, Any]] = []
        cond = threading.Condition()

        def read() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                with cond:
                    items.append(json.loads(line))
                    cond.notify_all()

        threading.Thread(target=read, daemon=True).start()

        def wait(pred: Any, timeout: float = 120) -> None:
            deadline = time.monotonic() + timeout
            with cond:
                while not pred():
                    if time.monotonic() > deadline:
                        raise TimeoutError(str(items[-10:]))
                    cond.wait(0.5)

        wait(lambda: any(e["type"] == "wave.finished" for e in items))
        edits = Edits(root, rng)
        t0 = time.monotonic()
        for _ in range(args.edits):
            edits.one()
            time.sleep(rng.uniform(0, 0.3))
        churn = time.monotonic() - t0
        mark = len(items)
        (root / "data" / "sentinel.txt").write_text("final\n")

        def sentinel_done() -> bool:
            # Records of `--display json` are those of `pivot events --json`: fields in "data".
            started = [
                e["data"]["wave_id"]
                for e in items[mark:]
                if e["type"] == "wave.started" and "sentinel" in e["data"]["stages"]
            ]
            return any(
                e["type"] == "wave.finished" and e["data"]["wave_id"] in started for e in items
            )

        wait(sentinel_done)
        proc.send_signal(2)
        proc.wait(30)

        copy = Path(tmp) / "copy"
        shutil.copytree(root, copy, ignore=shutil.ignore_patterns(".pivot", "runlog"))
        run = subprocess.run(
            [PIVOT, "run", "--force", "-j", str(args.jobs)],
            cwd=copy,
            capture_output=True,
            text=True,
            check=False,
        )
        outputs = ["work/clean.txt", "work/count.txt", "reports/merged.txt"]
        mismatched = [o for o in outputs if (root / o).read_text() != (copy / o).read_text()]
        runs = [json.loads(line) for line in (root / "runlog/runs.jsonl").read_text().splitlines()]
        waves = [e for e in items if e["type"] == "wave.started"]
        starts = [w["at"] for w in waves]
        stale = 0
        highest = -1
        by_wave: dict[int, int] = {}
        for r in runs:
            wave = max((i for i, at in enumerate(starts) if at <= r["at"]), default=-1)
            before = max((v for w, v in by_wave.items() if w < wave), default=-1)
            if r["version"] < before:
                stale += 1
            by_wave[wave] = max(by_wave.get(wave, -1), r["version"])
            highest = max(highest, r["version"])
        restarts = [e for e in items if e["type"] == "workers.restarted"]
        failed = [e for e in items if e["type"] == "stage.failed"]
        print(f"edits: {args.edits} in {churn:.1f}s (seed {args.seed}): {edits.kinds}")
        print(f"waves: {len(waves)}, worker restarts: {len(restarts)}, stage runs: {len(runs)}")
        print(f"failed stages: {len(failed)}; pivot run --force exit status: {run.returncode}")
        print(f"final helper VERSION on disk: {edits.version}, highest used: {highest}")
        print(f"outputs differing from a fresh `pivot run --force`: {len(mismatched)} {mismatched}")
        print(f"runs on stale code (older VERSION after a newer one ran): {stale}")
        forked = sum(1 for r in runs if r["ppid"] != proc.pid)  # a loky worker's parent is pivot
        print(f"stage runs in workers forked from a warm parent: {forked} of {len(runs)}")
        if mismatched or stale or run.returncode or highest != edits.version:
            sys.exit(1)


if __name__ == "__main__":
    main()
