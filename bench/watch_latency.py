"""How fast `pivot watch` reacts, next to `entr` on the same file in the same run.

1. Data change -> affected stage started: 50 in-place edits of a dep. Two
   figures for pivot: the ``stage.started`` event (submitted to a worker) and
   the first line of the stage function in the worker (what the user waits
   for). entr runs the same stage body as a Python command on the same file
   (``entr -n -p``), so its figure includes starting Python.
2. Code change -> stage running in fresh workers: 20 edits of a helper module
   the stage imports; measured to the stage's first line in a worker that
   prints the new value; with the warm parent and standby (default), with
   the standby pool only (``--no-warm-parent``) and with neither.
   Also the cost of the step that bounds it: loading the pipeline in a fresh
   interpreter (``python -m pivot.pipeline.loader``).

Run: ``uv run python bench/watch_latency.py [--edits 50] [--code-edits 20]``.
"""

from __future__ import annotations

import argparse
import json
import os
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
import time
from pathlib import Path
from typing import Annotated

import helpers
from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def react(
    src: Annotated[Path, Dep("data/in.txt")],
    out: Annotated[Path, Out("out/react.txt")],
) -> None:
    started = time.time()
    out.write_text(f"{started} {helpers.VALUE} {src.read_text().strip()}\\n")
"""

STAGE_CMD = """
import time
from pathlib import Path
started = time.time()
Path("out/entr.txt").write_text(f"{started} {Path('data/in.txt').read_text().strip()}\\n")
"""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def fmt(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return (
        f"{name:<44} n={len(ms):3d}  p50={percentile(ms, 0.5):7.1f} ms  "
        f"p95={percentile(ms, 0.95):7.1f} ms  max={max(ms):7.1f} ms"
    )


class Events:
    """Reads `pivot watch --display json` in a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.items: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        self.proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self.cond:
                self.items.append(json.loads(line))
                self.cond.notify_all()

    def wait(self, pred: Any, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                got = pred(self.items)
                if got:
                    return got
                if time.monotonic() > deadline:
                    raise TimeoutError(str(self.items[-5:]))
                self.cond.wait(0.5)


def project(tmp: Path) -> Path:
    root = tmp / "proj"
    (root / "data").mkdir(parents=True)
    (root / "out").mkdir()
    (root / "pipeline.py").write_text(textwrap.dedent(PIPELINE).lstrip())
    (root / "helpers.py").write_text('VALUE = "v0"\n')
    (root / "data" / "in.txt").write_text("0\n")
    (root / "stage_cmd.py").write_text(textwrap.dedent(STAGE_CMD).lstrip())
    return root


def start_watch(root: Path, *extra: str) -> tuple[subprocess.Popen[str], Events]:
    proc = subprocess.Popen(
        [PIVOT, "watch", "--display", "json", "-j", "1", *extra],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    ev = Events(proc)
    ev.wait(lambda items: any(e["type"] == "wave.finished" for e in items) or _idle(items))
    return proc, ev


def _idle(items: list[dict[str, Any]]) -> bool:
    # Nothing stale at start: the pipeline loaded and no wave follows it.
    return any(e["type"] == "pipeline.reloaded" for e in items)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(2)
    proc.wait(30)


def read_started(path: Path, expect: str) -> float | None:
    try:
        parts = path.read_text().split()
    except OSError:
        return None
    if len(parts) >= 2 and parts[-1] == expect:
        return float(parts[0])
    return None


def poll(fn: Any, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got is not None:
            return got
        time.sleep(0.002)
    raise TimeoutError("no reaction")


def bench_data(root: Path, edits: int) -> tuple[list[float], list[float]]:
    proc, ev = start_watch(root)
    by_event: list[float] = []
    by_stage: list[float] = []
    try:
        dep = root / "data" / "in.txt"
        for i in range(1, edits + 1):
            n = len(ev.items)
            t0 = time.time()
            dep.write_text(f"d{i}\n")
            started = ev.wait(
                lambda items, n=n: [e for e in items[n:] if e["type"] == "stage.started"]
            )[0]
            by_event.append(started["at"] - t0)
            by_stage.append(poll(lambda i=i: read_started(root / "out/react.txt", f"d{i}")) - t0)
            ev.wait(lambda items, n=n: [e for e in items[n:] if e["type"] == "wave.finished"])
            time.sleep(0.25)  # let the wave's own writes settle between samples
    finally:
        stop(proc)
    return by_event, by_stage


def bench_entr(root: Path, edits: int) -> list[float] | None:
    if shutil.which("entr") is None:
        return None
    proc = subprocess.Popen(
        ["entr", "-n", "-p", sys.executable, "stage_cmd.py"],
        cwd=root,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdin is not None
    proc.stdin.write("data/in.txt\n")
    proc.stdin.close()
    time.sleep(1.0)  # entr has no ready signal; give it time to set its watch
    out: list[float] = []
    try:
        dep = root / "data" / "in.txt"
        for i in range(1, edits + 1):
            t0 = time.time()
            dep.write_text(f"e{i}\n")
            out.append(poll(lambda i=i: read_started(root / "out/entr.txt", f"e{i}")) - t0)
            time.sleep(0.25)
    finally:
        proc.terminate()
        proc.wait(10)
    return out


def bench_code(root: Path, edits: int, standby: bool, *extra: str) -> list[float]:
    proc, ev = start_watch(root, *([] if standby else ["--no-standby"]), *extra)
    out: list[float] = []
    worst: list[str] = []
    steps: dict[str, list[float]] = {t: [] for t in SHOWN}
    helpers = root / "helpers.py"
    tag = ("s" if standby else "n") + ("c" if extra else "")
    try:
        for i in range(1, edits + 1):
            n = len(ev.items)
            time.sleep(1.5)  # idle time, as between two saves (the spare warms up)
            value = f"{tag}{i}"
            t0 = time.time()
            helpers.write_text(f'VALUE = "{value}"\n')

            def seen(value: str = value) -> float | None:
                try:
                    parts = (root / "out/react.txt").read_text().split()
                except OSError:
                    return None
                return float(parts[0]) if len(parts) == 3 and parts[1] == value else None

            out.append(poll(seen) - t0)
            ev.wait(lambda items, n=n: [e for e in items[n:] if e["type"] == "wave.finished"])
            for t in SHOWN:
                at = next((e["at"] for e in ev.items[n:] if e["type"] == t), None)
                if at is not None:
                    steps[t].append(at - t0)
            if out[-1] == max(out):
                worst = [
                    f"{e['type']}@{(e['at'] - t0) * 1000:.0f}ms"
                    for e in ev.items[n:]
                    if e["type"] in SHOWN
                ]
    finally:
        stop(proc)
    kind = ("standby" if standby else "no standby") + "".join(f" {e}" for e in extra)
    medians = [f"{t}@{percentile(v, 0.5) * 1000:.0f}ms" for t, v in steps.items() if v]
    print(f"  code-change steps, p50 of each ({kind}): {medians}")
    print(f"  slowest code-change sample ({kind}): {worst}")
    return out


SHOWN = ("changes.detected", "pipeline.reloaded", "workers.restarted", "stage.started")


def bench_loader(root: Path, n: int = 10) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pivot.pipeline.loader", str(root / "pipeline.py")],
            cwd=root,
            check=True,
            capture_output=True,
        )
        out.append(time.perf_counter() - t0)
    return out


def bench_python(n: int = 10) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edits", type=int, default=50)
    parser.add_argument("--code-edits", type=int, default=20)
    parser.add_argument("--only", choices=["data", "code"], default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = project(Path(tmp))
        print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
        if args.only != "code":
            report_data(root, args.edits)
        if args.only != "data":
            report_code(root, args.code_edits)


def report_data(root: Path, edits: int) -> None:
    if True:
        by_event, by_stage = bench_data(root, edits)
        entr = bench_entr(root, edits)
        print("data change -> affected stage started (default settings)")
        print("  " + fmt("pivot watch: stage.started event", by_event))
        print("  " + fmt("pivot watch: stage body running in worker", by_stage))
        if entr is None:
            print("  entr: not installed")
        else:
            print("  " + fmt("entr -n -p python stage_cmd.py", entr))
            ratio = percentile(by_stage, 0.5) / percentile(entr, 0.5)
            print(f"  ratio pivot/entr (p50, stage body running): {ratio:.2f}")


def report_code(root: Path, edits: int) -> None:
    if True:
        standby = bench_code(root, edits, True)
        fresh = bench_code(root, edits, True, "--no-warm-parent")
        cold = bench_code(root, edits, False, "--no-warm-parent")
        print("code change -> stage running in fresh workers, new code")
        print("  " + fmt("pivot watch (warm parent + standby, default)", standby))
        print("  " + fmt("pivot watch --no-warm-parent (standby pool)", fresh))
        print("  " + fmt("pivot watch --no-standby --no-warm-parent", cold))
        print("what bounds it")
        print("  " + fmt("python -m pivot.pipeline.loader (reload)", bench_loader(root)))
        print("  " + fmt("python -c pass (interpreter start)", bench_python()))


if __name__ == "__main__":
    main()
