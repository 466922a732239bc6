"""The Executor contract (pivot.pipeline.executor), checked of every implementation.

Each test runs against every name in ``EXECUTORS`` on real processes: the
:class:`Harness` makes the executor and a project directory with a module of
stage functions. A new executor adds its name to ``EXECUTORS`` and a branch
in :func:`_make` (request the fixtures it needs, e.g. the suite's SLURM
cluster, through ``request.getfixturevalue``).

``slurm`` runs every stage as a job on the suite's real single-node SLURM
(testkit.slurm_cluster): without one, its tests skip on a developer machine
and fail in CI (``CI=true``), as every SLURM test does.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pivot.events.base import Event
from pivot.events.pipeline import StageSubmitted
from pivot.jobs.config import Config
from pivot.pipeline.executor import Executor, StageRun
from pivot.pipeline.local_executor import LocalExecutor
from pivot.pipeline.slurm_executor import SlurmJobs
from pivot.pipeline.spec import StageSpec
from pivot.pipeline.worker import StageTask

from testkit.jobs_servers import make_config, slurm  # noqa: F401 - pytest fixtures

pytestmark = pytest.mark.timeout(600)

EXECUTORS = ["local", pytest.param("slurm", marks=[pytest.mark.slurm, pytest.mark.slow])]
# The stage names the tests use: SLURM needs each one's resources up front.
STAGE_NAMES = ("greet", "bad", "s0", "s1", "long", "after")

STAGES = """
import os
import time
from pathlib import Path


def ok(out: Path, word: str) -> None:
    out.write_text(f"{word}:{os.getpid()}")


def boom() -> None:
    raise ValueError("bad row 3")


def sleepy(out: Path) -> None:
    out.write_text(str(os.getpid()))
    time.sleep(600)
"""


@dataclass
class Harness:
    """An executor under test, the project it runs stages of, and what it emitted."""

    executor: Executor
    root: Path
    emits: bool  # whether its runs are scheduler jobs with events of their own (stage.submitted)
    events: list[Event] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def emit(self, events: Sequence[Event]) -> None:
        with self._lock:
            self.events.extend(events)

    def run(self, stage: str, qualname: str, wave_id: str = "wave-1", **kw: object) -> StageRun:
        """A run of ``stages.QUALNAME`` as stage ``stage``; ``out`` (if given) its one output."""
        assert stage in STAGE_NAMES, f"add {stage!r} to STAGE_NAMES"
        out_args = {"out": str(kw.pop("out"))} if "out" in kw else {}
        task = StageTask(
            root=str(self.root),
            stage=stage,
            module="contract_stages",
            file="contract_stages.py",
            qualname=qualname,
            out_args=out_args,
            params=dict(kw),
            log_path=str(self.root / ".pivot" / "logs" / f"{stage}.log"),
        )
        spec = StageSpec(
            name=stage,
            module=task.module,
            file=task.file,
            qualname=qualname,
            line=1,
            dep_args={},
            out_args=out_args,
            params=dict(kw),
            fingerprint="f" * 16,
        )
        return StageRun(task, spec, wave_id, {}, self.emit)


def _make(kind: str, request: pytest.FixtureRequest, root: Path) -> tuple[Executor, bool]:
    del root  # (an executor that needs the project beforehand would take it)
    if kind == "local":
        return LocalExecutor(2), False
    if kind == "slurm":
        config: Config = request.getfixturevalue("make_config")()  # starts the cluster
        placement = {name: {"time": "00:10:00", "host": "local"} for name in STAGE_NAMES}
        return SlurmJobs(config, placement, poll_seconds=0.5), True
    raise AssertionError(f"no harness for executor {kind!r}")


@pytest.fixture(params=EXECUTORS)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    # Readable by everyone: a scheduler may run the stages as another user.
    root = Path(tempfile.mkdtemp(prefix="pivot-executor-contract-"))
    root.chmod(0o755)
    (root / "contract_stages.py").write_text(STAGES)
    executor, emits = _make(str(request.param), request, root)
    try:
        yield Harness(executor, root, emits)
    finally:
        executor.close()


def _wait_for(predicate: Callable[[], bool], timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in {"Z", "X"}


def test_it_has_a_name_and_room_for_at_least_one_run(harness: Harness) -> None:
    assert harness.executor.name
    assert harness.executor.capacity >= 1


def test_a_run_completes_its_future_with_the_outcome(harness: Harness) -> None:
    out = harness.root / "ok.txt"
    future = harness.executor.submit(harness.run("greet", "ok", out="ok.txt", word="hi"))
    outcome = future.result(timeout=300)
    assert outcome.ok, outcome.error
    assert outcome.stage == "greet"
    assert outcome.duration >= 0
    word, pid = out.read_text().split(":")
    assert word == "hi"
    assert int(pid) != os.getpid()  # never in the caller's process
    if harness.emits:  # a job: the outcome names it, the one its events announced
        submitted = [e for e in harness.events if isinstance(e, StageSubmitted)]
        assert [e.job_id for e in submitted] == [outcome.job_id]
        assert (outcome.state, outcome.exit_code) == ("completed", "0:0")
    else:
        assert (outcome.job_id, outcome.state) == ("", "")


def test_a_failing_stage_is_an_outcome_not_an_exception(harness: Harness) -> None:
    outcome = harness.executor.submit(harness.run("bad", "boom")).result(timeout=300)
    assert not outcome.ok
    assert outcome.stage == "bad"
    assert "ValueError: bad row 3" in outcome.error
    if harness.emits:
        assert outcome.job_id and (outcome.state, outcome.exit_code) == ("failed", "1:0")


def test_runs_in_flight_run_side_by_side(harness: Harness) -> None:
    if harness.executor.capacity < 2:
        pytest.skip("capacity 1")
    runs = [harness.run(f"s{i}", "sleepy", out=f"s{i}.pid") for i in range(2)]
    futures = [harness.executor.submit(r) for r in runs]
    pid_files = [harness.root / f"s{i}.pid" for i in range(2)]
    # Both started although neither ends on its own: they run at once.
    _wait_for(lambda: all(p.exists() and p.read_text() for p in pid_files))
    assert not any(f.done() for f in futures)
    harness.executor.cancel("test over")
    assert all(f.done() for f in futures)


def test_cancel_returns_once_every_run_in_flight_ended(harness: Harness) -> None:
    pid_file = harness.root / "sleepy.pid"
    future = harness.executor.submit(harness.run("long", "sleepy", out="sleepy.pid"))
    _wait_for(lambda: pid_file.exists() and pid_file.read_text() != "")
    pid = int(pid_file.read_text())
    assert _alive(pid)
    harness.executor.cancel("interrupted")
    assert future.done()
    assert not _alive(pid)
    outcome = future.result()
    assert (outcome.ok, outcome.state) == (False, "cancelled")


def test_cancel_with_nothing_in_flight_returns(harness: Harness) -> None:
    harness.executor.cancel("nothing to do")
    # ...and the executor still takes runs afterwards.
    outcome = harness.executor.submit(harness.run("after", "ok", out="after.txt", word="x"))
    assert outcome.result(timeout=300).ok


def test_its_events_carry_the_wave_id(harness: Harness) -> None:
    run = harness.run("greet", "ok", wave_id="wave-42", out="ok.txt", word="hi")
    assert harness.executor.submit(run).result(timeout=300).ok
    with harness._lock:
        events = list(harness.events)
    if harness.emits:
        assert events
        assert all(e.correlation_id == "wave-42" for e in events)
    else:
        assert events == []  # stage.started and the end events are the wave's, not its


def test_close_is_idempotent(harness: Harness) -> None:
    assert harness.executor.submit(harness.run("greet", "ok", out="o.txt", word="a")).result(300)
    harness.executor.close()
    harness.executor.close()
