"""A job's output path switched to another file: the old file is read to its end first.

A log re-pointed (a symlink aimed at a new file) or replaced (a new inode
renamed over the path, as ``logrotate`` does) between two polls still has
the lines written to it just before the switch: they are matched, then the
new file is read from its start. Locally the reader keeps the file it read
open; over SSH the SFTP handle kept on the old inode reads it
(:mod:`pivot.jobs.kept_files`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pivot.events.store import EventStore
from pivot.events.watchers import ActionSucceeded
from pivot.jobs.config import Config
from pivot.jobs.definition import parse_watchers
from pivot.jobs.manage import add_watchers
from pivot.jobs.runtime import start_watchers

from testkit import slurm_cluster, sshd_server
from testkit.jobs_e2e import ALERT_WHEN_ASKED, events_of, wait_for
from testkit.jobs_servers import job_dir, make_config, quiet_job, slurm, sshd, store  # noqa: F401 - pytest fixtures

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def _switch_symlink(out: Path) -> None:
    old = out.resolve()
    with old.open("a") as fh:
        fh.write("ALERT 2\nALERT 3")  # the last line without its newline: the file is done
    new = out.with_suffix(".b")
    new.write_text("ALERT 4\n")
    tmp = out.with_suffix(".link")
    tmp.symlink_to(new)
    tmp.replace(out)


def _replace_file(out: Path) -> None:
    with out.open("a") as fh:
        fh.write("ALERT 2\nALERT 3")
    out.rename(out.with_suffix(".out.1"))  # rotated
    out.write_text("ALERT 4\n")


@pytest.mark.parametrize("switch", [_switch_symlink, _replace_file], ids=["symlink", "replaced"])
@pytest.mark.parametrize("over", ["local", "ssh"])
def test_lines_written_before_a_switch_are_matched_then_the_new_file(
    request: pytest.FixtureRequest,
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    store: EventStore,
    make_config: Callable[..., Config],
    switch: Callable[[Path], None],
    over: str,
) -> None:
    ssh: sshd_server.Sshd | None = request.getfixturevalue("sshd") if over == "ssh" else None
    host = "cluster" if ssh is not None else "local"
    job_id = quiet_job(slurm, job_dir, prefix="switch")
    out = job_dir / f"switch-{job_id}.out"
    if switch is _switch_symlink:
        target = out.with_suffix(".a")
        target.write_text("ALERT 1\n")
        out.unlink()
        out.symlink_to(target)
    else:
        out.write_text("ALERT 1\n")
    add_watchers(store, parse_watchers(ALERT_WHEN_ASKED), job_id, host=host)
    runtime = start_watchers(store, make_config(ssh), tick_seconds=3600)  # cycles when asked

    def logged() -> list[str]:
        return [
            e.detail for e in events_of(store, ActionSucceeded) if isinstance(e, ActionSucceeded)
        ]

    try:
        assert runtime.poll_now()
        wait_for(lambda: logged() == ["1"], what="the first line", store=store)
        switch(out)
        assert runtime.poll_now()
        wait_for(lambda: sorted(logged()) == ["1", "2", "3", "4"], what="all lines", store=store)
        assert logged() == ["1", "2", "3", "4"]  # the old file's end, then the new file
    finally:
        runtime.stop()
        slurm.run("scancel", job_id)
