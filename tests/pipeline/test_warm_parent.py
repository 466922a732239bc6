"""The warm parent on its own: what it preloads, when it refuses, how its workers end.

Real processes: a :class:`WarmParent` started as `pivot watch` starts it, with
"third-party" packages in a folder on ``PYTHONPATH`` outside the project.
"""

from __future__ import annotations

import os
import signal
import textwrap
from collections.abc import Iterator
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import pytest

from pivot.pipeline import lifeline, proctree, warm_preload
from pivot.pipeline.warm_client import Stale, WarmParent, WarmParentError, describe_status

pytestmark = pytest.mark.timeout(120)


def imported(name: str) -> str:
    """What a worker evaluates (``eval`` is picklable; a function of this file is not)."""
    return f"{name!r} in __import__('sys').modules"


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "site"
    (folder / "fakelib").mkdir(parents=True)
    (folder / "fakelib" / "__init__.py").write_text("VERSION = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(folder))
    return folder


@pytest.fixture
def root(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    project.mkdir()
    (project / "helpers.py").write_text("VALUE = 1\n")
    return project


@pytest.fixture
def parents() -> Iterator[list[WarmParent]]:
    started: list[WarmParent] = []
    yield started
    for p in started:
        p.close()


def start(root: Path, names: list[str], parents: list[WarmParent]) -> WarmParent:
    parent = WarmParent(root, names)
    parents.append(parent)
    return parent


def test_imports_in_finds_every_absolute_import_even_inside_functions() -> None:
    source = textwrap.dedent(
        """
        import os, numpy.linalg as la
        from pandas import DataFrame
        from . import sibling
        def stage():
            import torch
            from sklearn.linear_model import Ridge
        """
    )
    assert warm_preload.imports_in(source) == {
        "os",
        "numpy.linalg",
        "pandas",
        "torch",
        "sklearn.linear_model",
    }
    assert warm_preload.imports_in("def broken(:\n") == set()


def test_candidates_skip_environments_hidden_folders_and_effectful_modules(root: Path) -> None:
    (root / "pipeline.py").write_text("import json\nimport this\nimport helpers\n")
    (root / ".venv" / "lib").mkdir(parents=True)
    (root / ".venv" / "pyvenv.cfg").write_text("")
    (root / ".venv" / "lib" / "x.py").write_text("import secretlib\n")
    (root / "env" / "lib").mkdir(parents=True)
    (root / "env" / "pyvenv.cfg").write_text("")
    (root / "env" / "lib" / "y.py").write_text("import otherlib\n")
    assert warm_preload.candidates(root) == ["helpers", "json"]
    assert warm_preload.is_project_name("helpers", [str(root)])
    assert not warm_preload.is_project_name("json", [str(root)])


def test_preload_order_puts_fork_safe_thread_starters_first() -> None:
    assert warm_preload.preload_order(["pandas", "json", "numpy.linalg", "numpy"]) == [
        "numpy",
        "numpy.linalg",
        "json",
        "pandas",
    ]


def test_first_change_sees_a_rewrite_a_removal_and_a_racing_write(tmp_path: Path) -> None:
    f = tmp_path / "mod.py"
    f.write_text("A = 1\n")
    before = warm_preload.stamp([str(f), str(tmp_path / "missing.py")])
    assert list(before) == [str(f)]
    assert warm_preload.first_change(before) is None
    assert warm_preload.first_change(before, since_ns=before[str(f)][2]) == str(f)
    f.write_text("A = 22\n")
    assert warm_preload.first_change(before) == str(f)
    f.unlink()
    assert warm_preload.first_change(before) == str(f)


def test_workers_are_forked_with_third_party_modules_and_no_project_code(
    site: Path, root: Path, parents: list[WarmParent]
) -> None:
    del site
    parent = start(root, ["fakelib", "helpers", "json", "not_installed_anywhere"], parents)
    info = parent.wait_ready(60)
    assert info["preloaded"] == ["fakelib", "json"]  # helpers is the project's
    assert info["third_party"] == ["fakelib"]  # what makes the parent worth having
    assert info["failed"] == ["not_installed_anywhere"]
    assert info["threads"] == 1
    ex = parent.executor(2)
    try:
        assert len(ex.pids) == 2
        assert set(lifeline.spawned()) >= ex.pids  # listed in the run lock
        for pid in ex.pids:
            assert proctree.parent(pid) == parent.proc.pid
        assert ex.submit(eval, imported("fakelib")).result(30)
        assert not ex.submit(eval, imported("helpers")).result(30)
        with pytest.raises(ModuleNotFoundError):  # fails alone; the worker serves on
            ex.submit(imported, "x").result(30)
        assert ex.submit(os.getpid).result(30) in ex.pids
    finally:
        ex.kill()
    assert all(proctree.process_start(p) is None for p in ex.pids)


def test_a_worker_that_dies_breaks_the_pool_saying_how(
    site: Path, root: Path, parents: list[WarmParent]
) -> None:
    del site
    parent = start(root, ["fakelib"], parents)
    parent.wait_ready(60)
    ex = parent.executor(2)
    try:
        future = ex.submit(os.kill, 0, signal.SIGSEGV)  # its own process group
        with pytest.raises(BrokenProcessPool, match="was killed by SIGSEGV"):
            future.result(30)
        with pytest.raises(BrokenProcessPool):
            ex.submit(os.getpid).result(30)
    finally:
        ex.kill()
    assert describe_status(3 << 8) == "exited with status 3"


def test_a_changed_package_makes_the_parent_refuse_to_fork(
    site: Path, root: Path, parents: list[WarmParent]
) -> None:
    parent = start(root, ["fakelib"], parents)
    parent.wait_ready(60)
    assert parent.check() is None
    (site / "fakelib" / "__init__.py").write_text("VERSION = 2\n")
    assert parent.check() == str(site / "fakelib" / "__init__.py")
    with pytest.raises(Stale):
        parent.executor(1)


def test_a_new_distribution_in_a_path_folder_makes_it_stale(
    site: Path, root: Path, parents: list[WarmParent]
) -> None:
    parent = start(root, ["fakelib"], parents)
    parent.wait_ready(60)
    (site / "newlib-1.0.dist-info").mkdir()
    assert parent.check() == str(site)


def test_an_import_that_starts_a_thread_is_refused(
    site: Path, root: Path, parents: list[WarmParent]
) -> None:
    (site / "threadlib.py").write_text(
        "import threading, time\nthreading.Thread(target=time.sleep, args=(60,)).start()\n"
    )
    parent = start(root, ["fakelib", "threadlib"], parents)
    with pytest.raises(WarmParentError, match="importing threadlib started a thread") as err:
        parent.wait_ready(60)
    assert err.value.module == "threadlib"


def test_a_third_party_module_that_imports_project_code_is_refused(
    site: Path, root: Path, parents: list[WarmParent]
) -> None:
    # A plugin system finding the project's modules by itself.
    (site / "pluginlib.py").write_text(
        f"import sys\nsys.path.insert(0, {str(root)!r})\nimport helpers\n"
    )
    parent = start(root, ["pluginlib"], parents)
    with pytest.raises(WarmParentError, match=r"imported project code \(helpers\)"):
        parent.wait_ready(60)
