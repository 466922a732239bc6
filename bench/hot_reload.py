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
from typing import Any

SERVER = r"""
import importlib, json, os, sys
root, mode, preload = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, root)
os.chdir(root)
for name in preload:
    importlib.import_module(name)

def target(stage, blob):
    if blob:  # sent pickled by cloudpickle, as loky sends a submitted function
        import base64, pickle
        return pickle.loads(base64.b64decode(blob))
    kind, _, rest = stage.partition(":")
    if kind == "main":  # a file run as the main script, as `python pipeline.py` does
        path, fn = rest.split(":")
        main = sys.modules["__main__"]
        if not getattr(main, "_stage_ran", False):  # a long-lived process runs it once
            exec(compile(open(path).read(), path, "exec"), main.__dict__)
            main._stage_ran = True
        return getattr(main, fn)
    return getattr(importlib.import_module(kind), rest)

def call(stage, blob=""):
    try:
        return {"value": repr(target(stage, blob)())}
    except BaseException as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}

for line in sys.stdin:
    cmd = json.loads(line)
    if cmd["op"] == "run" and mode == "fork":
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.write(w, json.dumps(call(cmd["stage"], cmd.get("blob", ""))).encode())
            os._exit(0)
        os.close(w)
        data = b""
        while chunk := os.read(r, 65536):
            data += chunk
        os.close(r)
        os.waitpid(pid, 0)
        out = json.loads(data)
    elif cmd["op"] == "run":
        out = call(cmd["stage"], cmd.get("blob", ""))
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
    Case(
        "cloudpickle caching",
        {
            "helpers.py": "def f():\n    return 'v1'\n",
            "stage.py": "from helpers import f\n\ndef run():\n    return f()\n",
        },
        {"helpers.py": "def f():\n    return 'v2'\n"},
        ["helpers"],
        stage="pickled:stage:run",
        why="a function arrives pickled by reference (module, name), as loky sends it, and is"
        " resolved in the worker's own sys.modules: the cached stage module, with the old f",
    ),
    Case(
        "C extensions",
        {"cext.c": "c1"},
        {"cext.c": "c2"},
        ["cext"],
        stage="cext:version",
        why="reload does not initialise an extension module again, and dlopen hands back the"
        " library already loaded: the rebuilt .so is ignored",
    ),
    Case(
        "__main__",
        {"stage.py": "def run():\n    return 'v1'\n"},
        {"stage.py": "def run():\n    return 'v2'\n"},
        ["__main__"],
        stage="main:stage.py:run",
        why="code run as the main script cannot be reloaded (importlib.reload(__main__) fails)",
    ),
]

C_EXTENSION = """
#include <Python.h>
static PyObject *version(PyObject *self, PyObject *args) { return PyUnicode_FromString("%s"); }
static PyMethodDef methods[] = {{"version", version, METH_NOARGS, NULL}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "cext", NULL, -1, methods};
PyMODINIT_FUNC PyInit_cext(void) { return PyModule_Create(&module); }
"""


def compiler() -> str | None:
    """A C compiler and Python's headers, for the C extension case (else it is skipped)."""
    import shutil
    import sysconfig

    cc = shutil.which("cc") or shutil.which("gcc")
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    return cc if cc and headers.exists() else None


def build_extension(root: Path, version: str) -> None:
    """Compile cext.c into cext.<EXT_SUFFIX>, replacing the library the way a build does."""
    import sysconfig

    src = root / "cext_build.c"
    src.write_text(C_EXTENSION % version)
    target = root / f"cext{sysconfig.get_config_var('EXT_SUFFIX')}"
    tmp = target.with_suffix(".tmp")
    cc = compiler()
    assert cc is not None
    include = sysconfig.get_paths()["include"]
    subprocess.run(
        [cc, "-shared", "-fPIC", f"-I{include}", str(src), "-o", str(tmp)],
        check=True,
        capture_output=True,
    )
    tmp.replace(target)


def pickled(root: Path, stage: str) -> str:
    """``stage`` ("pickled:mod:fn") pickled by cloudpickle in a fresh interpreter (base64)."""
    _, mod, fn = stage.split(":")
    code = (
        "import base64, sys, cloudpickle; sys.path.insert(0, sys.argv[1]); "
        f"import {mod}; print(base64.b64encode(cloudpickle.dumps({mod}.{fn})).decode())"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(root)], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        if rel == "cext.c":
            build_extension(root, text)
            continue
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


def run_cmd(root: Path, stage: str) -> dict[str, str]:
    """The command that runs ``stage``; a pickled one is pickled anew, as each submit does."""
    return {"stage": stage, "blob": pickled(root, stage) if stage.startswith("pickled:") else ""}


def fresh(root: Path, stage: str) -> dict[str, str]:
    server = Server(root, "plain", [])
    try:
        return server.ask(op="run", **run_cmd(root, stage))
    finally:
        server.close()


def run_case(case: Case) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write(root, case.files)
        warm = Server(root, "plain", case.preload)
        forker = Server(root, "fork", case.preload)
        try:
            warm.ask(op="run", **run_cmd(root, case.stage))
            forker.ask(op="run", **run_cmd(root, case.stage))
            write(root, case.edit)
            warm.ask(op="reload", modules=case.reload)
            # A failed reload leaves the worker running, as a watcher does until the
            # next change: the stage runs on whatever the process now holds.
            after_reload = warm.ask(op="run", **run_cmd(root, case.stage))
            after_fork = forker.ask(op="run", **run_cmd(root, case.stage))
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


WATCH_PIPELINE = """
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd

import helpers
from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def heavy(src: Annotated[Path, Dep("data.txt")], out: Annotated[Path, Out("out.txt")]) -> None:
    started = time.time()
    m = np.ones((400, 400))
    total = float((m @ m).sum())  # OpenBLAS threads, in a worker forked after numpy's import
    frame = pd.DataFrame({"a": [total]})
    out.write_text(f"{started} {helpers.VALUE} {frame['a'].iloc[0]}\\n")
"""


def watch_heavy(warm: bool, edits: int = 12) -> list[float]:
    """`pivot watch -j 1`: code edit -> the heavy stage's body running new code (seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "pipeline.py").write_text(textwrap.dedent(WATCH_PIPELINE).lstrip())
        (root / "helpers.py").write_text("VALUE = 0\n")
        (root / "data.txt").write_text("x\n")
        flag = "--warm-parent" if warm else "--no-warm-parent"
        pivot = str(Path(sys.executable).with_name("pivot"))
        proc = subprocess.Popen(
            [pivot, "watch", "--display", "plain", "-j", "1", flag],
            cwd=root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        out: list[float] = []
        try:
            result = root / "out.txt"
            poll_for(result.exists, 120)
            for i in range(1, edits + 1):
                time.sleep(2.0)  # idle time between two saves (standby and warm parent ready)
                t0 = time.time()
                (root / "helpers.py").write_text(f"VALUE = {i}\n")
                started = poll_for(lambda i=i: _started(result, i), 120)
                out.append(started - t0)
        finally:
            proc.send_signal(2)
            proc.wait(60)
    return out


def _started(path: Path, value: int) -> float | None:
    try:
        parts = path.read_text().split()
    except OSError:
        return None
    return float(parts[0]) if len(parts) == 3 and parts[1] == str(value) else None


def poll_for(fn: Any, timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.002)
    raise TimeoutError("no reaction")


def p50(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


def main() -> None:
    print(f"machine: {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    cases = [c for c in CASES if c.name != "C extensions" or compiler() is not None]
    if len(cases) < len(CASES):
        print("C extensions: skipped (no C compiler or no Python headers)")
    rows = [run_case(c) for c in cases]
    print(f"{'case':<22} {'reload':<8} {'fork':<8} fresh interpreter gives")
    for r in rows:
        print(
            f"{r['case']:<22} {'ok' if r['reload ok'] else 'WRONG':<8} "
            f"{'ok' if r['fork ok'] else 'WRONG':<8} {r['fresh']}"
        )
        if not r["reload ok"]:
            print(f"{'':<22} reload gave {r['reload']}")
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
        print(f"machine load now {os.getloadavg()[0]:.2f}; shipped, through `pivot watch -j 1`:")
        today = watch_heavy(warm=False)
        shipped = watch_heavy(warm=True)
        print(
            f"numpy+pandas stage, code edit -> stage body running new code: "
            f"--no-warm-parent (today) p50 {p50(today) * 1000:.0f} ms, "
            f"warm parent (default) p50 {p50(shipped) * 1000:.0f} ms "
            f"(ratio {p50(shipped) / p50(today):.3f}; n={len(shipped)} each)"
        )


if __name__ == "__main__":
    main()
