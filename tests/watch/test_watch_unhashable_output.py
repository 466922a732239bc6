"""`pivot watch` when a stage leaves an output that cannot be hashed (a FIFO).

The wave still ends (its ``wave.finished`` is recorded, the Coordinator hears
of it), the stage fails naming the output, the FIFO the stage made does not
start waves of its own, and the next edit runs a wave as usual.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from testkit.watch_e2e import (
    Watch,
    watches,  # noqa: F401 - pytest fixture
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

PIPELINE = """
import os
from pathlib import Path
from typing import Annotated

from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def piped(
    src: Annotated[Path, Dep("data/in.txt")],
    out: Annotated[Path, Out("data/out.fifo")],
) -> None:
    if out.exists():
        out.unlink()
    os.mkfifo(out)  # reading it to hash it would wait for a writer for ever


@pipeline.stage
def plain(
    src: Annotated[Path, Dep("data/plain.txt")],
    out: Annotated[Path, Out("data/plain.out")],
) -> None:
    out.write_text(src.read_text().upper())
"""


def test_a_fifo_output_fails_its_stage_and_watch_goes_on(
    tmp_path: Path, watches: list[Watch]
) -> None:
    root = tmp_path.resolve()
    (root / "data").mkdir()
    (root / "pipeline.py").write_text(textwrap.dedent(PIPELINE).lstrip())
    (root / "data" / "in.txt").write_text("x\n")
    (root / "data" / "plain.txt").write_text("a\n")
    w = Watch(root)
    watches.append(w)
    w.wave_done(0)  # hung here: the wave's wave.finished was never recorded
    failed = {e["stage"]: e["error"] for e in w.events("stage.failed")}
    assert list(failed) == ["piped"], failed
    assert "data/out.fifo is a named pipe (FIFO)" in failed["piped"]
    assert (root / "data" / "plain.out").read_text() == "A\n"
    assert os.path.exists(root / "data" / "out.fifo")

    # The next edit runs exactly its stage: the FIFO the wave left started nothing.
    m = w.mark()
    (root / "data" / "plain.txt").write_text("b\n")
    starts = w.wave_done(m)
    assert [s["stages"] for s in starts] == [["plain"]]
    assert (root / "data" / "plain.out").read_text() == "B\n"
    # A file put in the FIFO's place is someone else's edit: its stage runs (and fails) again.
    m = w.mark()
    fifo = root / "data" / "out.fifo"
    fifo.unlink()
    fifo.write_text("by hand\n")
    starts = w.wave_done(m)
    assert [s["stages"] for s in starts] == [["piped"]]
    assert w.stage_events("stage.failed", m) == ["piped"]
    assert w.interrupt() == 130
    assert "Traceback" not in w.stderr, w.stderr


CHAIN = """
from pathlib import Path
from typing import Annotated

from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def up(
    src: Annotated[Path, Dep("data/in.txt")],
    out: Annotated[Path, Out("data/mid.txt")],
) -> None:
    out.write_text(src.read_text().upper())


@pipeline.stage
def down(
    src: Annotated[Path, Dep("data/mid.txt")],
    out: Annotated[Path, Out("data/out.txt")],
) -> None:
    out.write_text(src.read_text() * 2)
"""


def test_a_fifo_put_in_place_of_an_output_is_reported_and_watch_stays_up(
    tmp_path: Path, watches: list[Watch]
) -> None:
    # `pivot run` says "data/mid.txt is a named pipe (FIFO)..." and exits 2 while planning;
    # watch used to raise the same error in its Coordinator until the supervisor gave up.
    root = tmp_path.resolve()
    (root / "data").mkdir()
    (root / "pipeline.py").write_text(textwrap.dedent(CHAIN).lstrip())
    (root / "data" / "in.txt").write_text("x\n")
    w = Watch(root)
    watches.append(w)
    w.wave_done(0)
    mid = root / "data" / "mid.txt"
    assert (root / "data" / "out.txt").read_text() == "X\nX\n"

    m = w.mark()
    mid.unlink()
    os.mkfifo(mid)
    (failed,) = w.wait_for(lambda _: w.events("wave.plan_failed", m))
    assert "data/mid.txt is a named pipe (FIFO)" in failed["error"], failed
    assert w.events("wave.started", m) == [] and w.events("actor.crashed", m) == []

    # Still up: an edit upstream plans again (and fails again: the FIFO is still there).
    m = w.mark()
    (root / "data" / "in.txt").write_text("y\n")
    w.wait_for(lambda _: w.events("wave.plan_failed", m))
    # The FIFO replaced by a file: the wave runs, its producer restores it.
    m = w.mark()
    mid.unlink()
    mid.write_text("by hand\n")
    w.wave_done(m)
    assert mid.read_text() == "Y\n"
    assert (root / "data" / "out.txt").read_text() == "Y\nY\n"
    assert w.events("actor.crashed") == []
    assert w.interrupt() == 130
    assert "Traceback" not in w.stderr, w.stderr
