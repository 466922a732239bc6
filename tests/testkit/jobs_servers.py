"""Shared servers for the job-watcher tests: one SLURM cluster and one sshd per session.

Test modules import the fixtures they use (``from testkit.jobs_servers import slurm``);
the suite keeps a single conftest.py (see
docs/solutions/nested-conftest-shadows-require.md). A fixture imported into
several modules gets one definition per module, so the servers themselves are
cached here and stopped when the test process exits: one cluster and one sshd
per session whatever the number of modules.
"""

from __future__ import annotations

import atexit
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from pivot.events.store import EventStore
from pivot.jobs.config import Config, HostConfig
from pivot.jobs.ioloop import IoLoop

from testkit import slurm_cluster, sshd_server
from testkit.require import require

_servers: dict[str, Any] = {}


@pytest.fixture(scope="session")
def slurm() -> slurm_cluster.Cluster:
    require(slurm_cluster.available(), "a local SLURM (slurmctld, slurmd, munged; as root)")
    if "slurm" not in _servers:
        root = Path(tempfile.mkdtemp(prefix="pivot-slurm-"))
        root.chmod(0o755)  # munged (user munge) must reach its directory
        cluster = slurm_cluster.start(root / "cluster")
        _servers["slurm"] = cluster
        atexit.register(cluster.stop)
    server: slurm_cluster.Cluster = _servers["slurm"]
    return server


@pytest.fixture(scope="session")
def sshd() -> sshd_server.Sshd:
    require(sshd_server.available(), "OpenSSH server (sshd) as root")
    if "sshd" not in _servers:
        server = sshd_server.start(Path(tempfile.mkdtemp(prefix="pivot-sshd-")))
        _servers["sshd"] = server
        atexit.register(server.stop)
    found: sshd_server.Sshd = _servers["sshd"]
    return found


@pytest.fixture
def job_dir(slurm: slurm_cluster.Cluster) -> Iterator[Path]:
    # Jobs run as root in a directory everyone can read (not pytest's 0700 tmp).
    d = Path(tempfile.mkdtemp(prefix="pivot-job-"))
    d.chmod(0o755)
    yield d
    quiet = d / _QUIET_JOBS
    if quiet.exists():  # their slots are the next tests'
        slurm.run("scancel", *quiet.read_text().split())


_QUIET_JOBS = ".quiet-jobs"


def quiet_job(slurm: slurm_cluster.Cluster, job_dir: Path, *extra: str, prefix: str = "out") -> str:
    """A job that runs and writes nothing (a test writes its output), once Slurm opened
    its files; its output is ``job_dir/PREFIX-ID.out``. Cancelled after the test.

    Running, not held: a pending job's files are not its own yet (Slurm opens
    them, truncating, when the job starts), so its watchers do not read them.
    """
    out = slurm.run(
        "sbatch", "--parsable", f"--output={job_dir}/{prefix}-%j.out", *extra,
        "--wrap", "sleep 600",
    )  # fmt: skip
    job_id = out.stdout.strip()
    assert job_id.isdigit(), out.stderr
    with (job_dir / _QUIET_JOBS).open("a") as fh:
        fh.write(job_id + "\n")
    files = [job_dir / f"{prefix}-{job_id}.out"] + [
        Path(e.split("=", 1)[1].replace("%j", job_id)) for e in extra if e.startswith("--error=")
    ]
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        state = slurm.run("squeue", "--noheader", "--format=%T", f"--jobs={job_id}").stdout
        if state.strip() == "RUNNING" and all(f.exists() for f in files):
            return job_id
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} did not start within 90s")


@pytest.fixture
def make_config(
    slurm: slurm_cluster.Cluster,
) -> Callable[..., Config]:
    def make(ssh: sshd_server.Sshd | None = None, **kw: object) -> Config:
        env = {"SLURM_CONF": str(slurm.conf)}
        hosts = {"local": HostConfig("local", env=env)}
        if ssh is not None:
            hosts["cluster"] = HostConfig(
                "cluster",
                hostname="127.0.0.1",
                port=ssh.port,
                username=ssh.user,
                known_hosts=str(ssh.known_hosts),
                identity_file=str(ssh.client_key),
                env=env,
            )
        return Config(hosts=hosts, **kw)  # type: ignore[arg-type]

    return make


class Mailbox:
    """What a loopback SMTP server (the ``smtp`` fixture) received: (recipients, raw message)."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield port, box
    controller.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    """A fresh SQLite event store in the test's temporary directory, closed after it."""
    opened = EventStore.open(tmp_path / "events.db")
    yield opened
    opened.close()


@pytest.fixture
def io() -> Iterator[IoLoop]:
    """An event loop in a thread of its own (the tailer's), stopped after the test."""
    loop = IoLoop()
    yield loop
    loop.stop()
