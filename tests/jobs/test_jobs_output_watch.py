"""Local job outputs are read the moment they grow (inotify), not at the next poll.

Every watcher here polls every 600 s: after the first poll, only the output
watch can bring a line to its action within the tests' (hang-guard) timeouts.
Each test first waits for the action of a line the first poll may read, so
the line after it is one that only inotify can deliver.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pivot.events.store import EventStore
from pivot.events.watchers import ActionSucceeded
from pivot.jobs.config import Config
from pivot.jobs.definition import parse_watchers
from pivot.jobs.manage import add_watchers
from pivot.jobs.output_watch import OutputWatch
from pivot.jobs.runtime import WatcherRuntime, start_watchers
from pivot.watch.rust_notify import force_polling

from testkit import slurm_cluster
from testkit.jobs_e2e import PIVOT, pivot, wait_for
from testkit.jobs_servers import job_dir, make_config, quiet_job, slurm  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.slurm]

WATCHER = """\
name: alert
pattern: "ALERT ([0-9]+)"
interval_seconds: 600
max_triggers: 0
output_type: {output_type}
actions:
  - type: log_event
    params: {{message: "$1"}}
"""


def logged(store: EventStore) -> list[str]:
    return [
        r.event.detail
        for r in store.read(types=[ActionSucceeded.TYPE])
        if isinstance(r.event, ActionSucceeded)
    ]


@pytest.fixture
def store(job_dir: Path) -> Iterator[EventStore]:
    s = EventStore.open(job_dir / "events.db")
    yield s
    s.close()


@pytest.fixture
def running(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    make_config: Callable[..., Config],
    store: EventStore,
) -> Iterator[Callable[..., tuple[WatcherRuntime, Path]]]:
    handles: list[WatcherRuntime] = []

    def start(output_type: str = "stdout", *sbatch: str) -> tuple[WatcherRuntime, Path]:
        job_id = quiet_job(slurm, job_dir, *sbatch)
        out = job_dir / f"out-{job_id}.out"
        out.write_text("ALERT 1\n")
        add_watchers(store, parse_watchers(WATCHER.format(output_type=output_type)), job_id)
        handle = start_watchers(store, make_config(), tick_seconds=0.1)
        handles.append(handle)
        wait_for(lambda: logged(store) == ["1"], what="the first poll's line", store=store)
        return handle, out

    yield start
    for h in handles:
        h.stop()


def append(path: Path, text: str) -> None:
    with path.open("a") as fh:
        fh.write(text)


def test_watchers_run_acts_on_a_line_long_before_the_next_poll(
    slurm: slurm_cluster.Cluster, job_dir: Path
) -> None:
    project = job_dir
    (project / "pivot.toml").write_text(f'[hosts.local]\nenv = {{SLURM_CONF = "{slurm.conf}"}}\n')
    job_id = quiet_job(slurm, job_dir)
    out = job_dir / f"out-{job_id}.out"
    out.write_text("ALERT 1\n")
    (project / "w.yaml").write_text(WATCHER.format(output_type="stdout"))
    pivot(project, "watchers", "add", "w.yaml", "--job", job_id)
    runner = subprocess.Popen(
        [*PIVOT, "watchers", "run", "--tick", "0.2"], cwd=project, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "XDG_CONFIG_HOME": str(project / "none")},
    )  # fmt: skip

    try:
        store = EventStore.open(project / ".pivot" / "events.db")
        try:
            wait_for(lambda: logged(store) == ["1"], what="the first poll's line", store=store)
            append(out, "noise\nALERT 2\n")
            wait_for(lambda: logged(store) == ["1", "2"], what="the line inotify saw", store=store)
        finally:
            store.close()
    finally:
        runner.send_signal(signal.SIGINT)
        _, stderr = runner.communicate(timeout=60)
    assert "Traceback" not in stderr


def test_a_line_split_across_writes_is_matched_once_whole(
    running: Callable[..., tuple[WatcherRuntime, Path]], store: EventStore
) -> None:
    _, out = running()
    append(out, "ALERT 2")
    append(out, "3")  # inotify reports each write; the partial line waits
    append(out, "4\nALERT 5\n")
    wait_for(lambda: logged(store) == ["1", "234", "5"], what="the whole line", store=store)


def test_rotation_and_replacement_are_read_from_the_start(
    running: Callable[..., tuple[WatcherRuntime, Path]], store: EventStore
) -> None:
    _, out = running()
    out.rename(out.with_suffix(".out.1"))  # rotated: a new file under the old name
    out.write_text("ALERT 2\n")
    wait_for(lambda: logged(store) == ["1", "2"], what="the rotated-in file", store=store)
    tmp = out.with_suffix(".tmp")  # an atomic replace by a file of the same size
    tmp.write_text("ALERT 3\n")
    tmp.replace(out)
    wait_for(lambda: logged(store) == ["1", "2", "3"], what="the replacement", store=store)
    out.write_text("ALERT 4\n")  # rewritten in place, same size: same inode, new first bytes
    wait_for(lambda: logged(store) == ["1", "2", "3", "4"], what="the rewrite", store=store)


def test_megabytes_at_once_are_all_scanned(
    running: Callable[..., tuple[WatcherRuntime, Path]], store: EventStore
) -> None:
    _, out = running()
    filler = "step data load batch grad norm lr warmup eval save sync rank node\n" * 40_000
    append(out, filler + "ALERT 2\n" + filler + "ALERT 3\n")  # ~5 MB in one write
    wait_for(lambda: logged(store) == ["1", "2", "3"], what="both lines", store=store)


def test_stderr_and_both_follow_their_files(
    running: Callable[..., tuple[WatcherRuntime, Path]], store: EventStore, job_dir: Path
) -> None:
    _, out = running("both", f"--error={job_dir}/err-%j.err")
    err = out.with_name(out.name.replace("out-", "err-")).with_suffix(".err")
    append(err, "ALERT 2\n")
    wait_for(lambda: logged(store) == ["1", "2"], what="the stderr line", store=store)
    append(out, "ALERT 3\n")
    wait_for(lambda: logged(store) == ["1", "2", "3"], what="the stdout line", store=store)


def test_forced_polling_still_sees_the_line(
    running: Callable[..., tuple[WatcherRuntime, Path]],
    store: EventStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What a user on NFS sets: watchfiles then polls the directories by stat.
    monkeypatch.setenv("WATCHFILES_FORCE_POLLING", "1")
    monkeypatch.setenv("WATCHFILES_POLL_DELAY_MS", "50")
    assert force_polling() == (True, 50)
    _, out = running()
    append(out, "ALERT 2\n")

    def seen() -> bool:
        # watchfiles' polling compares modification times to the second: a write in
        # the same second as its last look shows with the next write, as a job's does.
        append(out, "tick\n")
        return logged(store) == ["1", "2"]

    wait_for(seen, what="the polled line", store=store)


def test_force_polling_reads_the_variables_as_watchfiles_does() -> None:
    assert force_polling({}) == (False, 300)
    assert force_polling({"WATCHFILES_FORCE_POLLING": "false"}) == (False, 300)
    assert force_polling({"WATCHFILES_FORCE_POLLING": "disabled"}) == (False, 300)
    assert force_polling({"WATCHFILES_FORCE_POLLING": "yes", "WATCHFILES_POLL_DELAY_MS": "40"}) == (
        True,
        40,
    )


def test_output_watch_coalesces_a_burst_into_one_message(tmp_path: Path) -> None:
    told: list[object] = []
    watch = OutputWatch(told.append)
    followed = tmp_path / "job.out"
    followed.write_text("")
    other = tmp_path / "other.out"
    try:
        watch.follow([str(followed)])
        assert watch.dirs == (str(tmp_path),)
        # A file already there when its directory starts being watched is reported.
        assert watch.take() == {str(followed)}
        told.clear()
        for n in range(50):
            append(followed, f"line {n}\n")
            append(other, "not followed\n")
        wait_for(lambda: told, timeout=30, what="a report")
        for _ in range(5):
            watch.report([str(followed), str(other)])
        assert len(told) == 1  # one message until the inbox is taken, however many reports
        assert watch.take() == {str(followed)}
        watch.report([str(tmp_path / "." / "job.out")])  # the same file, spelt otherwise
        assert len(told) == 2
        assert watch.take() == {str(followed)}
    finally:
        watch.close()
