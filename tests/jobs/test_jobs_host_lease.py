"""One host of a project's job watchers at a time, through the real CLI on a real SLURM.

Two `pivot watchers run` (or `pivot watch` and `pivot watchers run`) on one
project: one hosts, the other says who does and stands by; each action runs
once (counted by a file the allowed command appends to), and when the host
is killed (-9) or stops, the other takes over where the log says, with no
line matched twice or skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pivot.events.store import EventStore

from testkit import pgserver, slurm_cluster
from testkit.jobs_e2e import Proc, payloads, procs, submit, wait_for  # noqa: F401 - procs: fixture
from testkit.jobs_servers import job_dir, slurm  # noqa: F401 - pytest fixtures
from testkit.require import require

pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.timeout(300)]

PIVOT = str(Path(sys.executable).with_name("pivot"))
LINES = 20

PIPELINE = """
from pathlib import Path
from typing import Annotated

from pivot import Dep, Out, Pipeline

pipeline = Pipeline()


@pipeline.stage
def copy(
    src: Annotated[Path, Dep("data/in.txt")],
    out: Annotated[Path, Out("data/out.txt")],
) -> None:
    out.write_text(src.read_text())
"""


def project_for(
    slurm: slurm_cluster.Cluster, root: Path, *, store: str = "", pipeline: bool = False
) -> dict[str, str]:
    """A project whose watcher runs ``record N`` for each of the job's ``step N`` lines."""
    record = root / "record"
    # One write(2) per line in O_APPEND mode: lines from two processes never mix.
    record.write_text(f'#!/bin/sh\necho "$1 $PPID" >> {root}/ran.txt\n')
    record.chmod(0o755)
    (root / "jobs").mkdir()
    (root / "jobs").chmod(0o777)
    store_line = f'event_store = "{store}"\n' if store else ""
    (root / "pivot.toml").write_text(
        f'{store_line}[hosts.local]\nenv = {{SLURM_CONF = "{slurm.conf}"}}\n'
        f'[actions.run_command]\nallow = ["{record}"]\n'
    )
    (root / "steps.sh").write_text(
        "#!/bin/bash\n"
        f"#SBATCH --output={root}/jobs/steps-%j.out\n"
        "#WATCHER_BEGIN\n"
        "# name: steps\n"
        "# pattern: '^step (\\d+)$'\n"
        "# max_triggers: 0\n"
        "# rate_limit_per_minute: 1000\n"
        "# interval_seconds: 0.5\n"
        "# actions:\n"
        "#   - type: run_command\n"
        f"#     params: {{command: '{record} $1'}}\n"
        "#WATCHER_END\n"
        f'for i in $(seq 1 {LINES}); do echo "step $i"; sleep 0.4; done\n'
    )
    if pipeline:
        (root / "data").mkdir()
        (root / "data" / "in.txt").write_text("x\n")
        (root / "pipeline.py").write_text(PIPELINE)
        (root / ".gitignore").write_text("jobs/\nran.txt\n")
    env = {k: v for k, v in os.environ.items() if k != "PIVOT_EVENT_STORE"}
    env["XDG_CONFIG_HOME"] = str(root / "no-user-config")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def store_of(root: Path, url: str) -> EventStore:
    return EventStore.open(url or root / ".pivot" / "events.db")


def hosting(store: EventStore, pid: int) -> list[dict[str, Any]]:
    return [d for d in payloads(store, "watchers.hosting_started") if d["pid"] == pid]


def standing_by(store: EventStore, pid: int) -> list[dict[str, Any]]:
    return [d for d in payloads(store, "watchers.standing_by") if d["pid"] == pid]


def ran(root: Path) -> list[tuple[int, int]]:
    """(step, pid of the pivot that ran it) for every run of the command."""
    path = root / "ran.txt"
    if not path.exists():
        return []
    pairs = [line.split() for line in path.read_text().splitlines()]
    return [(int(step), int(pid)) for step, pid in pairs]


def finished(store: EventStore) -> int:
    """Intents of the watcher with an outcome (succeeded, failed or interrupted)."""
    return sum(
        len(payloads(store, t)) for t in ("action.succeeded", "action.failed", "action.interrupted")
    )


def wait_all_done(store: EventStore, watcher: str) -> None:
    """The job ended, its watcher completed, every line matched and every intent settled."""
    wait_for(
        lambda: any(
            d["watcher_id"] == watcher and d["new"] == "completed"
            for d in payloads(store, "watcher.state_changed")
        ),
        timeout=180,
        what="the watcher to complete (job ended)",
        store=store,
    )
    wait_for(
        lambda: (
            len(payloads(store, "watcher.matched")) >= LINES
            and finished(store) >= len(payloads(store, "action.requested"))
        ),
        what="every intent to settle",
        store=store,
    )


def check_once(store: EventStore, root: Path) -> None:
    """Every line matched exactly once; every command run at most once, and as recorded."""
    matched = Counter(d["line"] for d in payloads(store, "watcher.matched"))
    assert matched == Counter(f"step {i}" for i in range(1, LINES + 1))
    requested = {
        d["action_id"]: int(d["params"]["argv"][1]) for d in payloads(store, "action.requested")
    }
    assert sorted(requested.values()) == list(range(1, LINES + 1))
    outcomes = Counter(
        d["action_id"]
        for t in ("action.succeeded", "action.failed", "action.interrupted")
        for d in payloads(store, t)
    )
    assert outcomes == Counter(requested.keys()), "each intent has exactly one outcome"
    runs = Counter(step for step, _ in ran(root))
    assert max(runs.values()) == 1, f"commands run twice: {runs}"
    succeeded = {requested[d["action_id"]] for d in payloads(store, "action.succeeded")}
    interrupted = {requested[d["action_id"]] for d in payloads(store, "action.interrupted")}
    assert succeeded <= set(runs), "a command recorded as run did not run"
    assert set(runs) - succeeded <= interrupted, "a command ran that the log does not account for"


def test_two_runners_run_each_action_once(
    slurm: slurm_cluster.Cluster, job_dir: Path, procs: list[Proc]
) -> None:
    env = project_for(slurm, job_dir)
    _, watcher = submit(job_dir, env)
    procs.append(Proc(job_dir, "watchers", "run", "--tick", "0.2", env=env))
    procs.append(Proc(job_dir, "watchers", "run", "--tick", "0.2", env=env))
    with store_of(job_dir, "") as store:
        wait_all_done(store, watcher)
        assert not any(p.proc.poll() is not None for p in procs), [p.text() for p in procs]
        hosts = {d["pid"] for d in payloads(store, "watchers.hosting_started")}
        assert len(hosts) == 1
        [host] = hosts
        [other] = [p for p in procs if p.pid != host]
        # The standby first (stopping the host first would hand it the lease).
        assert other.interrupt() == 130, other.text()
        assert [p.interrupt() for p in procs if p.pid == host] == [130]
        check_once(store, job_dir)
        assert len(payloads(store, "action.succeeded")) == LINES
        # The one standing by said so, naming the host.
        assert f"stands by: the job watchers are hosted by pid {host} on " in other.text()
        assert {pid for _, pid in ran(job_dir)} == {host}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_kill_9_of_the_host_the_other_takes_over_where_it_stopped(
    slurm: slurm_cluster.Cluster, job_dir: Path, procs: list[Proc], backend: str
) -> None:
    url = ""
    if backend == "postgresql":
        require(pgserver.available(), "PostgreSQL server (Debian package postgresql)")
        url = pgserver.fresh_database()
    env = project_for(slurm, job_dir, store=url)
    with store_of(job_dir, url) as store:
        first = Proc(job_dir, "watchers", "run", "--tick", "0.2", env=env)
        procs.append(first)
        wait_for(lambda: hosting(store, first.pid), what="the first to host", store=store)
        second = Proc(job_dir, "watchers", "run", "--tick", "0.2", env=env)
        procs.append(second)
        wait_for(lambda: standing_by(store, second.pid), what="the second to stand by", store=store)
        _, watcher = submit(job_dir, env)
        wait_for(
            lambda: len(payloads(store, "watcher.matched")) >= 5, what="5 matches", store=store
        )
        first.kill()
        [took] = wait_for(
            lambda: hosting(store, second.pid), timeout=30, what="takeover", store=store
        )
        assert took["reason"] == "holder gone"
        assert took["previous"].startswith(f"pid {first.pid} on ")
        wait_all_done(store, watcher)
        assert second.interrupt() == 130, second.text()
        check_once(store, job_dir)
        # Actions interrupted by the kill are shown as such, never "pending".
        shown = subprocess.run(
            [PIVOT, "watchers", "show", watcher, "--json"], cwd=job_dir, env=env,
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        results = Counter(a["result"] for a in json.loads(shown.stdout)["actions"])
        assert "pending" not in results, results


def test_watch_and_watchers_run_share_one_host(
    slurm: slurm_cluster.Cluster, job_dir: Path, procs: list[Proc]
) -> None:
    env = project_for(slurm, job_dir, pipeline=True)
    with store_of(job_dir, "") as store:
        runner = Proc(job_dir, "watchers", "run", "--tick", "0.2", env=env)
        procs.append(runner)
        wait_for(lambda: hosting(store, runner.pid), what="watchers run to host", store=store)
        watch = Proc(job_dir, "watch", "--display", "plain", env=env)
        procs.append(watch)
        wait_for(lambda: standing_by(store, watch.pid), what="pivot watch to stand by", store=store)
        # Its display says who hosts the watchers.
        wait_for(
            lambda: f"holder_pid={runner.pid}" in watch.text(),
            what="the standby line shown",
            store=store,
        )
        assert "watchers.standing_by" in watch.text()
        _, watcher = submit(job_dir, env)
        wait_for(
            lambda: len(payloads(store, "action.succeeded")) >= 5, what="5 actions", store=store
        )
        # The host stops (Ctrl-C): it releases the lease; pivot watch takes over at once.
        assert runner.interrupt() == 130, runner.text()
        [took] = wait_for(
            lambda: hosting(store, watch.pid), timeout=30, what="takeover", store=store
        )
        assert took["reason"] == "free"
        wait_all_done(store, watcher)
        watch.interrupt()
        check_once(store, job_dir)
        # Stopped cleanly: nothing was interrupted, every command ran once.
        assert len(payloads(store, "action.succeeded")) == LINES
        assert Counter(step for step, _ in ran(job_dir)) == Counter(range(1, LINES + 1))
        assert {pid for _, pid in ran(job_dir)} == {runner.pid, watch.pid}


def test_stopping_host_keeps_its_lease_until_the_last_action_ran(
    slurm: slurm_cluster.Cluster, job_dir: Path
) -> None:
    # Each action takes longer than the lease's trust (ttl / 2 = 0.5 s): a host
    # that stopped renewing while stop() waited for them dropped all but one.
    from pivot.jobs.config import Config, HostConfig
    from pivot.jobs.definition import parse_watchers
    from pivot.jobs.manage import add_watchers
    from pivot.jobs.runtime import start_watchers

    record = job_dir / "record"
    record.write_text(f'#!/bin/sh\nsleep 0.8\necho "$1" >> {job_dir}/ran.txt\n')
    record.chmod(0o755)
    r = slurm.run("sbatch", "--parsable", f"--output={job_dir}/s-%j.out", "--wrap",
                  "for i in 1 2 3 4; do echo step $i; done; sleep 60")  # fmt: skip
    job_id = r.stdout.strip()
    config = Config(
        hosts={"local": HostConfig("local", env={"SLURM_CONF": str(slurm.conf)})},
        run_command_allow=(str(record),),
        lease_seconds=1,
    )
    watcher = (
        "name: s\npattern: '^step (\\d+)$'\nmax_triggers: 0\ninterval_seconds: 0.2\n"
        f"actions: [{{type: run_command, params: {{command: '{record} $1'}}}}]\n"
    )
    with EventStore.open(job_dir / "events.db") as store:
        add_watchers(store, parse_watchers(watcher), job_id)
        runtime = start_watchers(store, config, tick_seconds=0.2)
        try:
            wait_for(
                lambda: len(payloads(store, "action.requested")) == 4, what="4 intents", store=store
            )
            wait_for(
                lambda: payloads(store, "action.succeeded"), what="a first action", store=store
            )
        finally:
            runtime.stop()
            slurm.run("scancel", job_id)
        assert len(payloads(store, "action.succeeded")) == 4
        assert sorted((job_dir / "ran.txt").read_text().split()) == ["1", "2", "3", "4"]
