"""`kill -9` of `pivot watch` while it loads the pipeline: its loader interpreters die too."""

from __future__ import annotations

import textwrap
import time
from pathlib import Path

from testkit.watch_e2e import Watch, alive, descendants, wait_path

PIPELINE = """
import os
import time
from pathlib import Path
from typing import Annotated

from pivot import Out, Pipeline

if Path("hang").exists():  # a pipeline.py that takes its time to import
    Path("loader.tmp").write_text(str(os.getpid()))
    Path("loader.tmp").replace("loader.pid")
    time.sleep(600)

pipeline = Pipeline()


@pipeline.stage
def one(out: Annotated[Path, Out("one.txt")]) -> None:
    out.write_text("1")
"""


def test_kill_9_while_loading_leaves_no_loader_behind(tmp_path: Path) -> None:
    (tmp_path / "pipeline.py").write_text(textwrap.dedent(PIPELINE).lstrip())
    (tmp_path / "hang").touch()
    watch = Watch(tmp_path)
    try:
        wait_path(tmp_path / "loader.pid")
        loader = int((tmp_path / "loader.pid").read_text())
        below = descendants(watch.proc.pid)
        assert loader in below
        watch.proc.kill()
        watch.finish()
    finally:
        watch.close()
    started = below | {loader}
    deadline = time.monotonic() + 30  # generous: bench/crash_soak.py measures how fast
    while alive(started):
        assert time.monotonic() < deadline, f"left running: {sorted(alive(started))}"
        time.sleep(0.02)


SLOW = """
import os
import time
from pathlib import Path
from typing import Annotated

from pivot import Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def slow(out: Annotated[Path, Out("slow.txt")]) -> None:
    Path("started").write_text(str(os.getpid()))
    if not Path("fast").exists():
        time.sleep(600)
    out.write_text("done")
"""


def test_the_next_watch_records_the_killed_wave_as_interrupted(tmp_path: Path) -> None:
    from pivot.events import pipeline as ev
    from pivot.events.store import EventStore

    (tmp_path / "pipeline.py").write_text(textwrap.dedent(SLOW).lstrip())
    first = Watch(tmp_path)
    try:
        wait_path(tmp_path / "started")
        first.proc.kill()
        first.finish()
    finally:
        first.close()
    (tmp_path / "fast").touch()
    second = Watch(tmp_path)
    try:
        second.wait_for(lambda _: second.events("wave.finished"))
        assert (
            f"note: pivot (pid {first.proc.pid}) was stopped in the middle of a run "
            "(slow did not finish); recorded it as interrupted"
        ) in second.stderr
    finally:
        second.close()
    with EventStore.open(str(tmp_path / ".pivot" / "events.db")) as store:
        events = [r.event for r in store.read()]
    (interrupted,) = [e for e in events if isinstance(e, ev.WaveInterrupted)]
    assert interrupted.stages == ("slow",)
    first_wave = next(e for e in events if isinstance(e, ev.WaveStarted))
    assert interrupted.wave_id == first_wave.wave_id
    assert (tmp_path / "slow.txt").read_text() == "done"
