"""`pivot watch` honours watchfiles' ``WATCHFILES_FORCE_POLLING``.

inotify sees nothing that another machine writes to an NFS home directory
(clusters), and nothing at all on some WSL and container mounts; watchfiles'
own switch makes it poll by stat instead. These tests drive the real CLI and
look at the process's open file descriptors: a polling watcher holds no
inotify instance, a notifying one does (the control, so the check can fail).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testkit.watch_e2e import (
    Watch,
    watches,  # noqa: F401 - pytest fixture
    write_project,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = write_project(tmp_path.resolve())
    # The poller compares modification times (to the second on some file
    # systems): date the dep back so the test's edit surely differs.
    raw = root / "data" / "raw.csv"
    past = raw.stat().st_mtime - 10
    os.utime(raw, (past, past))
    return root


def inotify_instances(pid: int) -> int:
    """How many inotify instances process ``pid`` holds open."""
    fds = Path(f"/proc/{pid}/fd")
    count = 0
    for fd in fds.iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue  # closed while we looked
        count += target == "anon_inode:inotify"
    return count


def _edit_runs_a_wave(w: Watch, project: Path) -> None:
    w.wave_done(0)
    m = w.mark()
    (project / "data" / "raw.csv").write_text("a\nb\nc\n")
    assert [s["stages"] for s in w.wave_done(m)] == [["clean", "stats"]]
    assert (project / "reports" / "stats.txt").read_text() == "rows=3\n"


def test_forced_polling_still_runs_a_wave_on_a_data_edit_and_uses_no_inotify(
    project: Path, watches: list[Watch], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WATCHFILES_FORCE_POLLING", "1")
    monkeypatch.setenv("WATCHFILES_POLL_DELAY_MS", "50")
    w = Watch(project)
    watches.append(w)
    _edit_runs_a_wave(w, project)
    assert inotify_instances(w.proc.pid) == 0
    assert w.interrupt() == 130


def test_without_the_switch_the_watcher_uses_inotify(
    project: Path, watches: list[Watch], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WATCHFILES_FORCE_POLLING", raising=False)
    w = Watch(project)
    watches.append(w)
    _edit_runs_a_wave(w, project)
    assert inotify_instances(w.proc.pid) >= 1
    assert w.interrupt() == 130
