"""A complete save starts its wave after the settle time; a file still open for writing waits.

The rule is pure (:class:`pivot.watch.debounce.Debounce`, explicit
timestamps); the question it asks is answered by the kernel on real files
(:func:`pivot.watch.writers.closed_by_writers`); and the whole path runs
through the real `pivot watch`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from pivot.watch import writers
from pivot.watch.debounce import Debounce

from testkit.watch_e2e import PIVOT, Watch, write_project


def test_a_window_asks_after_settle_and_again_while_a_writer_is_busy() -> None:
    d = Debounce(quiet=0.1, max_wait=2.0, settle=0.02)
    assert d.early_check() is None and d.wakeup() is None
    d.add(["/p/a"], now=1.0)
    assert d.early_check() == pytest.approx(1.02)
    assert d.wakeup() == pytest.approx(1.02)  # before the quiet deadline (1.1)
    d.writes_busy(1.02)  # someone still writes /p/a: ask again later
    assert d.early_check() == pytest.approx(1.04)
    d.add(["/p/b"], now=1.05)  # a new change: settle counts from it
    assert d.early_check() == pytest.approx(1.07) and d.paths == {"/p/a", "/p/b"}
    assert not d.ready(1.07) and d.ready(1.16)  # the quiet period still bounds it
    d.take()
    assert d.early_check() is None
    d.add(["/p/c"], now=5.0)
    assert d.early_check() == pytest.approx(5.02)  # a new window forgets the old answer


def test_no_early_close_for_a_bulk_change_or_a_settle_as_long_as_the_quiet() -> None:
    d = Debounce(quiet=0.1, settle=0.02, bulk_paths=100)
    d.add((f"/p/{i}" for i in range(150)), now=0.0)
    assert d.bulk and d.early_check() is None and d.wakeup() == d.deadline()
    same = Debounce(quiet=0.1, settle=0.1)
    same.add(["/p/a"], now=0.0)
    assert same.early_check() is None
    with pytest.raises(ValueError, match="negative"):
        Debounce(settle=-1)


def test_only_a_save_closes_early_never_a_chunk_of_a_burst() -> None:
    d = Debounce(quiet=0.1, settle=0.02, early_paths=8, burst_gap=0.1)
    d.add([f"/p/{i}" for i in range(9)], now=0.0)
    assert d.early_check() is None  # 9 files at once: perhaps a checkout starting
    d.take()
    d.add(["/p/x"], now=0.05)  # 50 ms after the last change of the window before
    assert d.early_check() is None and d.wakeup() == d.deadline()
    d.take()
    d.add(["/p/y"], now=0.2)  # after a full quiet period of silence: a save
    assert d.early_check() == pytest.approx(0.22)
    d.add([f"/p/z{i}" for i in range(8)], now=0.21)  # grows past early_paths
    assert d.early_check() is None


def test_the_kernel_says_whether_a_file_is_open_for_writing(tmp_path: Path) -> None:
    assert writers.install()  # pytest runs tests in the main thread
    done = tmp_path / "done.csv"
    done.write_text("complete\n")
    folder = tmp_path / "folder"
    folder.mkdir()
    gone = str(tmp_path / "renamed-away")
    assert writers.closed_by_writers([str(done), str(folder), gone])
    busy = tmp_path / "busy.csv"
    with busy.open("w") as f:
        f.write("half")
        f.flush()
        assert not writers.closed_by_writers([str(done), str(busy)])
    assert writers.closed_by_writers([str(busy)])
    # Another process writing: it waits while the lease is held, and is not hurt by it.
    script = f"import time\nf = open({str(done)!r}, 'a')\nf.write('x')\ntime.sleep(0.5)\n"
    proc = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while writers.closed_by_writers([str(done)]) and time.monotonic() < deadline:
            time.sleep(0.005)  # polling until the child has the file open, with a deadline
        assert not writers.closed_by_writers([str(done)])
    finally:
        assert proc.wait(30) == 0
    assert writers.closed_by_writers([str(done)])
    assert done.read_text() == "complete\nx"


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_watch_waits_for_a_writer_to_close_then_starts_early(tmp_path: Path) -> None:
    root = write_project(tmp_path.resolve())
    built = subprocess.run(
        [*PIVOT, "run"], cwd=root, capture_output=True, text=True, timeout=120, check=False
    )
    assert built.returncode == 0, built.stdout + built.stderr  # so no initial wave writes
    quiet = 30.0
    w = Watch(root, "-j", "1", "--debounce", str(int(quiet * 1000)), "--max-wait", "60000")
    try:
        # An edit of a file nobody reads, made once the start-up check began (it
        # loads the pipeline first): reported once that check is over; nothing runs.
        w.wait_for(lambda _: w.events("pipeline.reloaded"))
        m = w.mark()
        (root / "notes.txt").write_text("read by nobody\n")
        w.wait_for(lambda _: w.events("changes.detected", m))
        time.sleep(0.2)  # the user pauses between two edits (the scenario, not a wait)
        raw = root / "data" / "raw.csv"
        m = w.mark()
        with raw.open("w") as f:  # a slow writer: half the file, a pause, the rest
            f.write("half")
            f.flush()
            time.sleep(0.5)  # the scenario itself (a writer holding the file), not a wait
            f.write("-done\n")
        closed = time.time()
        starts = w.wave_done(m)
        assert [s["stages"] for s in starts] == [["clean", "stats"]]
        assert (root / "data" / "clean.csv").read_text() == "HALF-DONE\n"
        detected = w.events("changes.detected", m)[0]["at"]
        # Not while the file was open (0.5 s is 25 settle periods), and not after
        # the 30 s quiet period either: 20 ms after the writer closed it.
        assert closed < detected < closed + quiet
    finally:
        w.close()
