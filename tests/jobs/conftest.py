"""Shared servers for the job-watcher tests: one SLURM cluster and one sshd per session."""

from __future__ import annotations

import importlib.util
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import slurm_cluster
import sshd_server

from pivot.jobs.config import Config, HostConfig

# tests/conftest.py::require; both files are modules named `conftest`, so load it by path.
_spec = importlib.util.spec_from_file_location(
    "pivot_tests_conftest", Path(__file__).resolve().parents[1] / "conftest.py"
)
assert _spec is not None and _spec.loader is not None
_root = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_root)
require = _root.require


@pytest.fixture(scope="session")
def slurm() -> Iterator[slurm_cluster.Cluster]:
    require(slurm_cluster.available(), "a local SLURM (slurmctld, slurmd, munged; as root)")
    root = Path(tempfile.mkdtemp(prefix="pivot-slurm-"))
    root.chmod(0o755)  # munged (user munge) must reach its directory
    cluster = slurm_cluster.start(root / "cluster")
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def sshd() -> Iterator[sshd_server.Sshd]:
    require(sshd_server.available(), "OpenSSH server (sshd) as root")
    root = Path(tempfile.mkdtemp(prefix="pivot-sshd-"))
    server = sshd_server.start(root)
    yield server
    server.stop()


@pytest.fixture
def job_dir(slurm: slurm_cluster.Cluster) -> Iterator[Path]:
    # Jobs run as root in a directory everyone can read (not pytest's 0700 tmp).
    d = Path(tempfile.mkdtemp(prefix="pivot-job-"))
    d.chmod(0o755)
    yield d


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
