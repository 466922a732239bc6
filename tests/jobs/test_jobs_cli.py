"""The `pivot watchers` and `pivot jobs` commands, run as a user would (subprocesses)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from testkit import slurm_cluster
from testkit.jobs_e2e import PIVOT, job_state, pivot, wait_for
from testkit.jobs_servers import job_dir, make_config, slurm, sshd  # noqa: F401 - pytest fixtures


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pivot.toml").write_text('[actions.run_command]\nallow = ["echo"]\n')
    return tmp_path


WATCHER = """\
name: loss
pattern: "epoch (\\\\d+) loss=(?P<loss>[0-9.]+)"
captures: [epoch]
condition: "float(loss) < 0.5"
max_triggers: 0
actions:
  - type: store_metric
    params: {name: loss, value: $loss}
  - type: log_event
    params: {message: "epoch $1: loss $loss"}
"""


def test_define_inspect_control(project: Path) -> None:
    (project / "w.yaml").write_text(WATCHER)
    out = pivot(project, "watchers", "add", "w.yaml", "--job", "123", "--json")
    [created] = json.loads(out.stdout)["watchers"]
    wid = created["id"]
    assert created == {"id": wid, "name": "loss", "job": "123", "host": "local"}
    [row] = json.loads(pivot(project, "watchers", "list", "--json").stdout)
    assert (row["id"], row["state"]) == (wid, "active")
    r = pivot(project, "watchers", "show", "nosuch", ok=False)
    assert r.stderr == (
        f"error: unknown watcher 'nosuch' (known watchers: {wid}); see `pivot watchers list`\n"
    )
    pivot(project, "watchers", "pause", wid[:6])
    assert json.loads(pivot(project, "watchers", "show", wid, "--json").stdout)["state"] == "paused"
    r = pivot(project, "watchers", "pause", wid, ok=False)
    assert r.returncode == 1 and r.stderr == f"error: watcher {wid} is paused, not active\n"
    pivot(project, "watchers", "resume", wid)
    # A manual trigger runs the actions for real (here: a metric and a log line).
    out = pivot(project, "watchers", "trigger", wid, "--text", "epoch 7 loss=0.25")
    assert out.stdout.splitlines() == [
        "ok      store_metric: loss=0.25",
        "ok      log_event: epoch 7: loss 0.25",
    ]
    r = pivot(project, "watchers", "trigger", wid, "--text", "no match here", ok=False)
    assert "does not match the pattern" in r.stderr
    series = json.loads(pivot(project, "watchers", "metrics", wid, "--json").stdout)["series"]
    assert [p["value"] for p in series["loss"]] == [0.25]
    events = json.loads(pivot(project, "watchers", "events", wid, "--json").stdout)
    types = [e["type"] for e in events]
    assert types[0] == "watcher.created" and "action.succeeded" in types
    stats = json.loads(pivot(project, "watchers", "stats", "--json").stdout)
    assert stats["events_by_action"]["store_metric"]["success"] == 1
    human = pivot(project, "watchers", "show", wid).stdout
    assert "epoch (\\d+) loss=" in human and "store_metric" in human
    pivot(project, "watchers", "rm", wid)
    assert json.loads(pivot(project, "watchers", "list", "--json").stdout) == []


def test_dry_run_over_a_log(project: Path) -> None:
    (project / "w.yaml").write_text(WATCHER)
    (project / "job.out").write_bytes(
        b"epoch 1 loss=0.9\nnoise $(rm -rf /)\nepoch 2 loss=0.4\nepoch 3 loss=0.3"
    )
    out = json.loads(
        pivot(project, "watchers", "test", "w.yaml", "--log", "job.out", "--json").stdout
    )
    [result] = out
    assert result["lines"] == 4
    assert [(m["line_number"], m["condition"]) for m in result["matches"]] == [
        (1, False), (3, True), (4, True),
    ]  # fmt: skip
    assert result["matches"][1]["actions"] == [
        {"type": "store_metric", "params": {"name": "loss", "value": "0.4"}},
        {"type": "log_event", "params": {"message": "epoch 2: loss 0.4"}},
    ]
    text = pivot(project, "watchers", "test", "w.yaml", "--log", "job.out").stdout
    assert "would run store_metric" in text and "line 3" in text


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            WATCHER.replace("max_triggers: 0", "max_trigger: 0"),
            "w.yaml:5: unknown key 'max_trigger'",
        ),
        (WATCHER.replace("(?P<loss>", "(?P=loss>"), "w.yaml:2: invalid pattern"),
        (WATCHER.replace('"float(loss) < 0.5"', '"loss.__class__"'), "w.yaml:4: condition"),
        ("name: [x\n", "w.yaml:2: invalid YAML"),
    ],
)
def test_bad_definitions_are_one_clear_line(project: Path, content: str, expected: str) -> None:
    (project / "w.yaml").write_text(content)
    r = pivot(project, "watchers", "add", "w.yaml", "--job", "1", ok=False)
    assert r.returncode == 1
    assert r.stderr.startswith(f"error: {expected}"), r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_config_and_argument_mistakes(project: Path) -> None:
    (project / "w.yaml").write_text(WATCHER)
    r = pivot(project, "watchers", "add", "w.yaml", "--job", "1", "--host", "nowhere", ok=False)
    assert "unknown host 'nowhere'" in r.stderr
    for job in ("abc", "²", "١٢"):  # what str.isdigit() calls digits is not a Slurm job id
        r = pivot(project, "watchers", "add", "w.yaml", "--job", job, ok=False)
        assert r.stderr.startswith("error: job id must be a Slurm job id"), (job, r.stderr)
    r = pivot(project, "watchers", "add", "missing.yaml", "--job", "1", ok=False)
    assert r.stderr.startswith("error: missing.yaml")
    (project / "pivot.toml").write_text("[hosts.cluster]\nhostname = 'x'\nprot = 22\n")
    r = pivot(project, "watchers", "add", "w.yaml", "--job", "1", ok=False)
    assert "pivot.toml:3: unknown key 'prot' in [hosts.cluster]" in r.stderr
    r = pivot(project, "watchers", "show", "nope", ok=False)
    assert r.stderr.startswith("error: ")
    # An empty id (an unset $ID in a script) is not a prefix of every id: with
    # one watcher, `rm ''` removed it.
    (project / "pivot.toml").write_text("")
    pivot(project, "watchers", "add", "w.yaml", "--job", "1", "--no-check")
    for command in ("rm", "show", "pause"):
        r = pivot(project, "watchers", command, "", ok=False)
        assert r.returncode == 1 and r.stderr.startswith("error: no watcher id given"), r.stderr
    assert "active" in pivot(project, "watchers", "list").stdout


def _project_for(slurm: slurm_cluster.Cluster, project: Path, extra: str = "") -> None:
    (project / "pivot.toml").write_text(
        f'[hosts.local]\nenv = {{SLURM_CONF = "{slurm.conf}"}}\n{extra}'
    )


@pytest.mark.slurm
@pytest.mark.slow
def test_submit_run_and_list_on_real_slurm(
    slurm: slurm_cluster.Cluster, job_dir: Path, make_config: Callable[..., object]
) -> None:
    project = job_dir
    _project_for(slurm, project)
    (project / "train.sh").write_text(
        "#!/bin/bash\n#SBATCH --output=train-%j.out\n#WATCHER_BEGIN\n# name: oom\n"
        "# pattern: 'CUDA out of memory'\n# interval_seconds: 0.5\n# actions:\n"
        "#   - type: cancel_job\n#WATCHER_END\necho start\nsleep 1\n"
        "echo 'CUDA out of memory'\nsleep 300\n"
    )
    out = json.loads(pivot(project, "jobs", "submit", "train.sh", "--json").stdout)
    job_id = out["job_id"]
    assert len(out["watchers"]) == 1
    runner = subprocess.Popen(
        [*PIVOT, "watchers", "run", "--tick", "0.2"], cwd=project, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "XDG_CONFIG_HOME": str(project / "none")},
    )  # fmt: skip
    try:
        wait_for(lambda: job_state(slurm, job_id) == "CANCELLED", what="cancel")
    finally:
        runner.send_signal(signal.SIGINT)
        stdout, stderr = runner.communicate(timeout=60)
    assert runner.returncode == 130, stderr  # stopped by Ctrl-C, as a shell expects
    assert "Traceback" not in stderr
    assert f"oom ({out['watchers'][0]}) cancel_job ok: cancelled job {job_id}" in stdout
    jobs = json.loads(pivot(project, "jobs", "list", "--json").stdout)
    assert jobs["errors"] == {}
    assert [(j["job_id"], j["state"], j["watchers"]) for j in jobs["jobs"]] == [
        (job_id, "cancelled", 1)
    ]


@pytest.mark.slurm
def test_unreachable_host_is_a_clear_error(slurm: slurm_cluster.Cluster, job_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    _project_for(
        slurm,
        job_dir,
        f"[hosts.cluster]\nhostname = '127.0.0.1'\nport = {port}\nconnect_timeout = 5\n",
    )
    (job_dir / "j.sh").write_text("#!/bin/bash\necho hi\n")
    r = pivot(job_dir, "jobs", "submit", "j.sh", "--host", "cluster", ok=False)
    assert r.returncode == 1
    assert r.stderr.startswith("error: cannot submit on cluster: cluster: cannot connect"), r.stderr
    # Adding a watcher for a job there: attached (it starts once the host answers),
    # with a warning saying so and what to check (docs/watchers.md says the same).
    (job_dir / "w.yaml").write_text("name: w\npattern: x\nactions: [{type: cancel_job}]\n")
    r = pivot(job_dir, "watchers", "add", "w.yaml", "--job", "7", "--host", "cluster")
    assert r.stderr.startswith("warning: host: cannot reach cluster: "), r.stderr
    assert "fix: check [hosts.cluster] in pivot.toml" in r.stderr
    [wid] = r.stdout.split()
    listed = json.loads(pivot(job_dir, "watchers", "list", "--json").stdout)
    assert [(w["id"], w["host"], w["state"]) for w in listed] == [(wid, "cluster", "active")]
