"""A damaged, unwritable or full ``.pivot/``: one line naming the file and the remedy, exit 1.

End to end through the real CLI on real files: a log that is not a
database or was cut short, a damaged ``state.db``, a ``.pivot/`` made
immutable (``chattr +i``, which binds root too) or read-only for a user
(mode bits, tried as ``nobody`` because root ignores them), and a disk that
really fills up (a small tmpfs mounted for the test).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from testkit.pipeline_project import HEADER, PIVOT, Project, make_project
from testkit.require import require
from testkit.tmpfs_disk import tmpfs_disk

PIPELINE = (
    HEADER
    + """
@pipeline.stage
def first(
    src: Annotated[Path, Dep("data/in.txt")],
    out: Annotated[Path, Out("data/mid.txt")],
) -> None:
    out.write_text(src.read_text().upper())


@pipeline.stage
def second(
    mid: Annotated[Path, Dep("data/mid.txt")],
    out: Annotated[Path, Out("data/out.txt")],
) -> None:
    out.write_text(mid.read_text() + "!")
"""
)


def _project(root: Path) -> Project:
    p = Project(root)
    p.write("pipeline.py", PIPELINE)
    p.write("data/in.txt", "hello\n")
    return p


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return _project(make_project(tmp_path).root)


def one_line_error(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    """The single ``error:`` line of a failed command, checked for ``needles``."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    line = lines[0]
    assert line.startswith("error: "), line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


def _watch(project: Project) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PIVOT, "watch", "--display", "plain", "--no-standby", "--no-job-watchers"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _cut(path: Path, size: int) -> None:
    data = path.read_bytes()
    assert len(data) > size
    path.write_bytes(data[:size])


@pytest.mark.parametrize("damage", ["garbage", "cut inside a page", "cut at a page"])
def test_a_damaged_event_log_is_one_line_from_every_command(project: Project, damage: str) -> None:
    project.cli("run")
    log = project.root / ".pivot/events.db"
    for extra in (".pivot/events.db-wal", ".pivot/events.db-shm"):
        (project.root / extra).unlink(missing_ok=True)
    if damage == "garbage":
        log.write_bytes(b"this is not a database\n" * 50)
    elif damage == "cut inside a page":
        _cut(log, log.stat().st_size - 1000)
    else:
        _cut(log, 4096)
    before = log.read_bytes()
    project.write("data/in.txt", "changed\n")
    for args in (("run",), ("stats",), ("events",), ("why", "first")):
        line = one_line_error(project.cli(*args, ok=None), ".pivot/events.db", "damaged", "mv ")
        assert "Traceback" not in line
    one_line_error(_watch(project), ".pivot/events.db", "damaged")
    assert log.read_bytes() == before  # never "repaired" by replacing it
    # The remedy the message gives works, and the skip state survived.
    log.rename(log.with_name("events.db.broken"))
    assert project.ran() == ["first", "second"]
    assert project.status() == {"first": [], "second": []}


def test_a_damaged_state_db_is_one_line_and_moving_it_aside_rebuilds_it(project: Project) -> None:
    project.cli("run")
    state = project.root / ".pivot/state.db"
    for extra in (".pivot/state.db-wal", ".pivot/state.db-shm"):
        (project.root / extra).unlink(missing_ok=True)
    state.write_bytes(b"\x00garbage" * 600)
    before = state.read_bytes()
    for args in (("status",), ("run",), ("run", "--dry-run")):
        one_line_error(project.cli(*args, ok=None), ".pivot/state.db", "damaged", "mv ")
    assert state.read_bytes() == before
    state.rename(state.with_name("state.db.broken"))
    proc = project.cli("status", "--json")
    assert "rebuilt" in proc.stderr and "2 stages" in proc.stderr, proc.stderr
    doc = json.loads(proc.stdout)
    assert {s["stage"]: s["reasons"] for s in doc["stages"]} == {"first": [], "second": []}
    assert project.ran() == []


def _chattr_works(path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, check=False)
    if proc.returncode != 0:
        return False
    subprocess.run(["chattr", "-i", str(path)], check=True)
    return True


@contextlib.contextmanager
def immutable(path: Path) -> Iterator[None]:
    subprocess.run(["chattr", "+i", str(path)], check=True)
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_an_immutable_pivot_dir_says_it_cannot_write_not_corrupt(project: Project) -> None:
    project.cli("run")
    pivot_dir = project.root / ".pivot"
    require(_chattr_works(pivot_dir), "chattr +i on the test filesystem")
    project.write("data/in.txt", "changed\n")
    with immutable(pivot_dir):
        for args in (("run",), ("status",), ("events",), ("stats",)):
            line = one_line_error(
                project.cli(*args, ok=None), "cannot write in .pivot", "Operation not permitted"
            )
            assert "corrupt" not in line and "damaged" not in line
        one_line_error(_watch(project), "cannot write in .pivot")
    assert project.ran() == ["first", "second"]


def _as_nobody() -> list[str]:
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def _skip_unless_nobody_reaches_the_interpreter() -> None:
    # A property of where this checkout lives, not a missing server: in a private
    # folder (mode 0700, as `mktemp -d` makes) no other user can run its venv's
    # interpreter, so the test cannot run as nobody there, in CI or not.
    probe = subprocess.run(
        [*_as_nobody(), *PIVOT, "--version"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if probe.returncode != 0:
        why = probe.stderr.strip()[:200]
        pytest.skip(f"user nobody cannot run pivot from this checkout: {why}")


def test_a_read_only_pivot_dir_for_a_user(tmp_path: Path) -> None:
    # Mode bits bind a user, not root: run pivot as nobody on a folder nobody owns.
    require(os.geteuid() == 0 and shutil.which("setpriv") is not None, "root and setpriv")
    _skip_unless_nobody_reaches_the_interpreter()
    base = Path(tempfile.mkdtemp(prefix="pivot-ro-", dir="/tmp"))
    try:
        base.chmod(0o755)
        project = _project(base / "proj")
        project.cli("run")  # as root: workers need an interpreter nobody may not reach
        subprocess.run(["chown", "-R", "65534:65534", str(base)], check=True)

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*_as_nobody(), *PIVOT, *args],
                cwd=project.root,
                capture_output=True,
                text=True,
                timeout=120,
                env={**os.environ, "HOME": str(base), "PYTHONDONTWRITEBYTECODE": "1"},
                check=False,
            )

        assert cli("status").returncode == 0
        (project.root / ".pivot").chmod(0o555)
        project.write("data/in.txt", "changed\n")
        for args in (("run",), ("status",), ("events",)):
            one_line_error(cli(*args), "cannot write in .pivot", "Permission denied")
    finally:
        shutil.rmtree(base, ignore_errors=True)


FILLER_PIPELINE = (
    HEADER
    + """
@pipeline.stage
def fill(
    src: Annotated[Path, Dep("data/in.txt")],
    out: Annotated[Path, Out("data/mid.txt")],
) -> None:
    out.write_text(src.read_text().upper())
    if Path("fill.flag").exists():
        # Another program fills the disk while the stage runs.
        with open("../filler", "wb") as f:
            try:
                while True:
                    f.write(b"x" * 65536)
                    f.flush()
            except OSError:
                pass


@pipeline.stage
def after(
    mid: Annotated[Path, Dep("data/mid.txt")],
    out: Annotated[Path, Out("data/out.txt")],
) -> None:
    out.write_text(mid.read_text() + "!")
"""
)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of our own, so filling it harms nothing else."""
    with tmpfs_disk(tmp_path, "16m") as mount:
        yield mount


def test_a_full_disk_stops_the_run_with_one_line_and_the_next_run_goes_on(
    small_disk: Path,
) -> None:
    project = Project(small_disk / "proj")
    project.write("pipeline.py", FILLER_PIPELINE)
    project.write("data/in.txt", "hello\n")
    project.write("fill.flag", "")
    proc = project.cli("run", ok=None)
    one_line = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(one_line) == 1, proc.stderr
    assert "no space left" in one_line[0] and "free space" in one_line[0], one_line[0]
    # Space comes back: the next run goes on.
    (small_disk / "filler").unlink()
    (project.root / "fill.flag").unlink()
    doc = project.run_json()
    assert {s["stage"]: s["status"] for s in doc["stages"]}["after"] == "succeeded"
    assert project.status() == {"fill": [], "after": []}
    events = [json.loads(line) for line in project.cli("events", "--json").stdout.splitlines()]
    types = [e["type"] for e in events]
    assert types.count("wave.started") == 2, types
    # The wave the full disk stopped is recorded as interrupted, before the next one.
    assert "wave.interrupted" in types, types
    assert types.index("wave.interrupted") < len(types) - 1 - types[::-1].index("wave.started")


def test_stats_on_a_cut_log_is_not_zeros(project: Project) -> None:
    project.cli("run")
    log = project.root / ".pivot/events.db"
    for extra in (".pivot/events.db-wal", ".pivot/events.db-shm"):
        (project.root / extra).unlink(missing_ok=True)
    _cut(log, log.stat().st_size - 100)
    proc = project.cli("stats", "--json", ok=None)
    one_line_error(proc, ".pivot/events.db", "truncated")
    assert proc.stdout == ""


def test_an_emptied_event_log_is_reported_by_reading_commands(project: Project) -> None:
    project.cli("run")
    log = project.root / ".pivot/events.db"
    for extra in (".pivot/events.db-wal", ".pivot/events.db-shm"):
        (project.root / extra).unlink(missing_ok=True)
    log.write_bytes(b"")
    for args in (("stats",), ("events",)):
        one_line_error(project.cli(*args, ok=None), ".pivot/events.db", "empty")


def test_a_full_disk_stops_watch_with_one_line(small_disk: Path) -> None:
    project = Project(small_disk / "proj")
    project.write("pipeline.py", FILLER_PIPELINE)
    project.write("data/in.txt", "hello\n")
    project.write("fill.flag", "")
    proc = _watch(project)
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
    one_line_error(proc, "no space left", "free space")


def test_a_damaged_row_is_saved_around_with_export_skip_damaged(project: Project) -> None:
    import sqlite3

    project.cli("run")
    log = project.root / ".pivot/events.db"
    total = len(project.cli("events", "--json").stdout.splitlines())
    with sqlite3.connect(log) as db:
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = 3", (b"\xffgarbage",))
    line = one_line_error(project.cli("events", ok=None), "event #3", "--skip-damaged")
    assert "not a pivot event" in line
    one_line_error(project.cli("events", "export", "saved.jsonl", ok=None), "event #3")
    proc = project.cli("events", "export", "--skip-damaged", "saved.jsonl")
    assert "skipped: event #3" in proc.stderr and "(1 damaged left out)" in proc.stderr
    log.rename(log.with_name("events.db.broken"))
    for extra in (".pivot/events.db-wal", ".pivot/events.db-shm"):
        (project.root / extra).unlink(missing_ok=True)
    project.cli("events", "import", "saved.jsonl")
    assert len(project.cli("events", "--json").stdout.splitlines()) == total - 1
    assert project.status() == {"first": [], "second": []}
