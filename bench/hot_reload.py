"""The hot-reload question: importlib.reload in place, a fresh worker, or a fork of a warm parent?

Each scripted case is a tiny project, an edit, and a stage run after the
edit, under three ways of getting fresh code:

- ``reload``: one long-lived worker that imported the project; after the
  edit it calls ``importlib.reload`` on the edited modules, in order (what a
  reload-based watcher does), then runs the stage;
- ``fresh``: a new interpreter imports the project and runs the stage
  (today's fresh worker);
- ``fork``: a long-lived parent that imported only third-party modules
  (never project code) forks a child per run; the child imports the project.

A way is *correct* on a case when the stage gives what a fresh interpreter
gives (the result, or the error). Then the latency of a code edit for a stage
that imports numpy and pandas: a fresh interpreter against a fork of a warm
parent (install them for the bench only: ``uv run --with numpy
--with pandas python bench/hot_reload.py``; without them that part is
skipped).

Run: ``uv run --with numpy --with pandas python bench/hot_reload.py`` (numpy and pandas
only for this run; they are not dependencies of pivot).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

SERVER = r"""
import importlib, json, os, sys
root, mode, preload = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, root)
os.chdir(root)
for name in preload:
    importlib.import_module(name)

def call(stage):
    mod, fn = stage.split(":")
    try:
        return {"value": repr(getattr(importlib.import_module(mod), fn)())}
    except BaseException as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}

for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "run" and mode == "fork":
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, json.dumps(call(cmd["stage"])).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        out = json.loads(data)
    elif cmd["op"] == "run":
        out = call(cmd["stage"])
    else:  # reload the edited modules in place, in order
        out = {"value": "reloaded"}
        for name in cmd["modules"]:
            try:
                if name in sys.modules:
                    importlib.reload(sys.modules[name])
            except BaseException as exc:
                out = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(out), flush=True)
"""


@dataclass
class Case:
    """A project, an edit of it, the modules a reloader reloads, the stage to run."""

    name: str
    files: dict[str, str]
    edit: dict[str, str]
    reload: list[str]
    stage: str = "stage:run"
    why: str = ""
    preload: list[str] = field(default_factory=list)


CASES = [
    Case(
        "import staleness",
        {
            "helpers.py": "def f():\n    return 'v1'\n",
            "stage.py": "from helpers import f\n\ndef run():\n    return f()\n",
        },
        {"helpers.py": "def f():\n    return 'v2'\n"},
        ["helpers"],
        why="`from helpers import f` keeps the old function in the stage module",
    ),
    Case(
        "non-atomic rollback",
        {
            "a.py": "V = 'a1'\n",
            "b.py": "V = 'b1'\n",
            "stage.py": "import a, b\n\ndef run():\n    return a.V + b.V\n",
        },
        {"a.py": "V = 'a2'\n", "b.py": "V = 'b2' + undefined_name\n"},
        ["a", "b"],
        why="a is reloaded, b fails: the process runs a mix of new a and old b",
    ),
    Case(
        "module side effects",
        {
            "registry.py": "ITEMS = []\n",
            "helpers.py": "import registry\nregistry.ITEMS.append('helper')\nV = 1\n",
            "stage.py": "import helpers, registry\n\ndef run():\n    return len(registry.ITEMS)\n",
        },
        {"helpers.py": "import registry\nregistry.ITEMS.append('helper')\nV = 2\n"},
        ["helpers"],
        why="import-time registration runs again: two entries",
    ),
    Case(
        "class identity",
        {
            "shapes.py": "class Point:\n    pass\n",
            "consts.py": "from shapes import Point\nORIGIN = Point()\n",
            "stage.py": "import consts, shapes\n\n"
            "def run():\n    return isinstance(consts.ORIGIN, shapes.Point)\n",
        },
        {"shapes.py": "class Point:\n    def norm(self):\n        return 0\n"},
        ["shapes"],
        why="objects made before the reload are instances of the old class",
    ),
    Case(
        "zombie attributes",
        {
            "helpers.py": "OLD = 1\nNEW = 0\n",
            "stage.py": "import helpers\n\ndef run():\n    return hasattr(helpers, 'OLD')\n",
        },
        {"helpers.py": "NEW = 0\n"},
        ["helpers"],
        why="reload executes into the old namespace: removed names survive",
    ),
    Case(
        "circular imports",
        {
            "a.py": "X = 1\nimport b\n",
            "b.py": "VAL = 2\n",
            "stage.py": "import a, b\n\ndef run():\n    return b.VAL\n",
        },
        {"a.py": "import b\nX = 1\n", "b.py": "from a import X\nVAL = X + 1\n"},
        ["a", "b"],
        why="the edit only imports in a warm process; a fresh one raises ImportError",
    ),
]

NOT_SCRIPTED = {
    "C extensions": "rebuilding one needs a compiler step; CPython does not initialise an"
    " extension module again on reload (a rebuilt .so is ignored), while a fresh interpreter or"
    " a forked child of a parent that never imported it loads the new file",
    "cloudpickle caching": "pivot never pickles project code: a worker gets the module file and the"
    " qualname (StageTask) and imports it; checked below by unpickling a task where the project"
    " cannot be imported",
    "__main__": "pivot never runs a pipeline as __main__ (pipeline.py is imported from its file);"
    " importlib.reload(__main__) is not possible at all",
}


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        (root / rel).write_text(text)
    # Same-second edits must not reuse stale bytecode (a fresh worker of pivot drops it).
    for pyc in root.glob("__pycache__/*.pyc"):
        pyc.unlink()


class Server:
    """A long-lived worker (``reload``) or warm parent (``fork``)."""

    def __init__(self, root: Path, mode: str, preload: list[str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(root), mode, json.dumps(preload)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )

    def ask(self, **cmd: object) -> dict[str, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        answer: dict[str, str] = json.loads(self.proc.stdout.readline())
        return answer

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def fresh(root: Path, stage: str) -> dict[str, str]:
    server = Server(root, "plain", [])
    try:
        return server.ask(op="run", stage=stage)
    finally:
        server.close()


def run_case(case: Case) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write(root, case.files)
        warm = Server(root, "plain", case.preload)
        forker = Server(root, "fork", case.preload)
        try:
            warm.ask(op="run", stage=case.stage)
            forker.ask(op="run", stage=case.stage)
            write(root, case.edit)
            warm.ask(op="reload", modules=case.reload)
            # A failed reload leaves the worker running, as a watcher does until the
            # next change: the stage runs on whatever the process now holds.
            after_reload = warm.ask(op="run", stage=case.stage)
            after_fork = forker.ask(op="run", stage=case.stage)
        finally:
            warm.close()
            forker.close()
        expected = fresh(root, case.stage)
    return {
        "case": case.name,
        "fresh": expected,
        "reload": after_reload,
        "fork": after_fork,
        "reload ok": after_reload == expected,
        "fork ok": after_fork == expected,
    }


def task_needs_no_project() -> bool:
    """A StageTask unpickles where the project cannot be imported: no project code inside."""
    import pickle

    from pivot.pipeline.worker import StageTask

    blob = pickle.dumps(StageTask("/nowhere", "s", "secret_project_mod", "p.py", "fn"))
    probe = "import pickle, sys; t = pickle.loads(sys.stdin.buffer.read()); print(t.module)"
    out = subprocess.run(
        [sys.executable, "-c", probe], input=blob, capture_output=True, check=True, cwd="/"
    )
    return out.stdout.decode().strip() == "secret_project_mod"


HEAVY_STAGE = """
import numpy as np
import pandas as pd

import helpers


def run():
    return float(pd.DataFrame({"a": np.arange(10)})["a"].sum()) + helpers.V
"""


def heavy_latency(n: int = 15) -> dict[str, float] | None:
    """Code edit -> stage result for a numpy+pandas stage: fresh interpreter vs warm fork."""
    try:
        import numpy  # noqa: F401
        import pandas  # noqa: F401
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write(root, {"stage.py": textwrap.dedent(HEAVY_STAGE), "helpers.py": "V = 0\n"})
        # Bytecode of numpy/pandas is what a real environment has: let it be written once.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        subprocess.run([sys.executable, "-c", "import pandas"], check=True, env=env)
        fresh_times, fork_times = [], []
        forker = Server(root, "fork", ["numpy", "pandas"])
        try:
            for i in range(1, n + 1):
                write(root, {"helpers.py": f"V = {i}\n"})
                t = time.perf_counter()
                got = fresh(root, "stage:run")
                fresh_times.append(time.perf_counter() - t)
                assert got == {"value": repr(45.0 + i)}, got
                t = time.perf_counter()
                got = forker.ask(op="run", stage="stage:run")
                fork_times.append(time.perf_counter() - t)
                assert got == {"value": repr(45.0 + i)}, got
        finally:
            forker.close()
    fresh_times.sort()
    fork_times.sort()
    return {
        "fresh p50 ms": fresh_times[len(fresh_times) // 2] * 1000,
        "fork p50 ms": fork_times[len(fork_times) // 2] * 1000,
    }


def main() -> None:
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    rows = [run_case(c) for c in CASES]
    print(f"{'case':<22} {'reload':<8} {'fork':<8} fresh interpreter gives")
    for r in rows:
        print(
            f"{r['case']:<22} {'ok' if r['reload ok'] else 'WRONG':<8} "
            f"{'ok' if r['fork ok'] else 'WRONG':<8} {r['fresh']}"
        )
        if not r["reload ok"]:
            print(f"{'':<22} reload gave {r['reload']}")
    for name, why in NOT_SCRIPTED.items():
        print(f"{name:<22} not scripted: {why}")
    print(f"StageTask carries no project code: {task_needs_no_project()}")
    n_ok = sum(1 for r in rows if r["reload ok"])
    f_ok = sum(1 for r in rows if r["fork ok"])
    print(f"correct: reload {n_ok}/{len(rows)}, fork {f_ok}/{len(rows)}, fresh by definition")
    heavy = heavy_latency()
    if heavy is None:
        print("numpy/pandas not installed: heavy-stage latency skipped")
    else:
        ratio = heavy["fork p50 ms"] / heavy["fresh p50 ms"]
        print(
            f"numpy+pandas stage, code edit -> result: fresh interpreter p50 "
            f"{heavy['fresh p50 ms']:.0f} ms, fork of a warm parent p50 "
            f"{heavy['fork p50 ms']:.0f} ms (ratio {ratio:.3f})"
        )


if __name__ == "__main__":
    main()
