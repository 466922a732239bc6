"""A real single-node SLURM (munged, slurmctld, slurmd) on loopback, in a temp dir.

Started once per test session by the ``slurm`` fixture (testkit.jobs_servers); the
Slurm client commands find it through ``SLURM_CONF``. Needs root (slurmd runs
jobs as their user) and Debian's slurm-wlm and munge packages.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

PROGRAMS = ("setpriv", "munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel")


def available() -> bool:
    """Programs present and we are root (slurmd must be able to run jobs as users)."""
    return os.geteuid() == 0 and all(shutil.which(p) for p in PROGRAMS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Cluster:
    """A running cluster: its config file and the environment its clients need."""

    root: Path
    conf: Path
    env: dict[str, str]
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def run(self, *argv: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv,
            env=self.env,
            input=input_text,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def stop(self) -> None:
        # Jobs first: their processes would outlive slurmd.
        self.run("scancel", "--full", "--user=root")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            out = self.run("squeue", "--noheader", "--format=%i").stdout.strip()
            if not out:
                break
            time.sleep(0.3)
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _conf(
    root: Path, node: str, ports: tuple[int, int], munge_socket: Path, jobs_per_cpu: int = 8
) -> str:
    ctld_port, slurmd_port = ports
    return f"""\
ClusterName=pivottest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
StateSaveLocation={root}/state
SlurmdSpoolDir={root}/spool/%n
SlurmctldPidFile={root}/slurmctld.pid
SlurmdPidFile={root}/slurmd.pid
SlurmctldLogFile={root}/slurmctld.log
SlurmdLogFile={root}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/builtin
SchedulerParameters=sched_interval=1
MinJobAge=600
KillWait=2
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=60
Waittime=0
NodeName={node} NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP \
OverSubscribe=FORCE:{jobs_per_cpu}
"""


def start(root: Path, timeout: float = 60.0, *, jobs_per_cpu: int = 8) -> Cluster:
    """Start munged, slurmctld and slurmd under ``root``; wait until the node is idle.

    ``jobs_per_cpu``: jobs that may run at once on each of the node's 2 CPUs
    (a benchmark runs hundreds of jobs that only sleep)."""
    root.mkdir(parents=True, exist_ok=True)
    root.chmod(0o755)
    node = socket.gethostname().split(".")[0]
    munge_dir = root / "munge"
    munge_dir.mkdir()
    key = munge_dir / "munge.key"
    shutil.copyfile("/etc/munge/munge.key", key)
    key.chmod(0o400)
    for p in (munge_dir, key):
        shutil.chown(p, "munge", "munge")
    munge_dir.chmod(0o700)
    sock = munge_dir / "munge.socket"
    (root / "state").mkdir()
    (root / "spool").mkdir()
    conf = root / "slurm.conf"
    conf.write_text(_conf(root, node, (free_port(), free_port()), sock, jobs_per_cpu))
    env = {**os.environ, "SLURM_CONF": str(conf)}
    cluster = Cluster(root=root, conf=conf, env=env)
    munged = [
        "munged", "--foreground", "--force", f"--socket={sock}", f"--key-file={key}",
        f"--pid-file={munge_dir}/munged.pid", f"--log-file={munge_dir}/munged.log",
        f"--seed-file={munge_dir}/munged.seed",
    ]  # fmt: skip
    log = (root / "daemons.out").open("ab")
    cluster.procs.append(
        subprocess.Popen(
            ["setpriv", "--reuid=munge", "--regid=munge", "--clear-groups", *munged],
            stdout=log,
            stderr=log,
        )
    )
    _wait(sock.exists, timeout, "munged socket", root)
    # munge's socket dir is private to munge; Slurm (root) reaches it anyway.
    cluster.procs.append(
        subprocess.Popen(
            ["slurmctld", "-D", "-i", "-f", str(conf)], env=env, stdout=log, stderr=log
        )
    )
    _wait(lambda: cluster.run("scontrol", "ping").returncode == 0, timeout, "slurmctld", root)
    cluster.procs.append(
        subprocess.Popen(
            ["slurmd", "-D", "-N", node, "-f", str(conf)], env=env, stdout=log, stderr=log
        )
    )

    def node_ready() -> bool:
        out = cluster.run("sinfo", "--noheader", "--format=%t").stdout.strip()
        return out in ("idle", "mix", "alloc")

    _wait(node_ready, timeout, "slurmd (node idle)", root)
    return cluster


def _wait(cond: object, timeout: float, what: str, root: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():  # type: ignore[operator]
            return
        time.sleep(0.2)
    logs = "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
        for p in (
            root / "daemons.out",
            root / "slurmctld.log",
            root / "slurmd.log",
            root / "munge" / "munged.log",
        )
        if p.exists()
    )
    raise RuntimeError(f"{what} did not come up within {timeout}s\n{logs}")
