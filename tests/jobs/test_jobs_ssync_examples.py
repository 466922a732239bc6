"""ssync's five example watchers, as its documentation writes them, from examples/ssync/.

Each goes through `pivot watchers test` on a log, then all five watch one real
SLURM job through `pivot watchers add` and `pivot watchers run`: the loss
tracker stores every epoch's loss, the GPU alert fires only above 90 %, the
OOM handler cancels the job and fires once, the milestone copies the model
and pauses, and the checkpoint's shell substitution (which we refuse) is
warned about at `add` and refused when it fires.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Callable
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from testkit import slurm_cluster
from testkit.jobs_e2e import PIVOT, job_state, pivot, wait_for
from testkit.jobs_servers import Mailbox, job_dir, make_config, slurm, smtp, sshd  # noqa: F401 - pytest fixtures

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "ssync"
FILES = {
    "loss": "training-loss-tracker.yaml",
    "oom": "cuda-oom-error-handler.yaml",
    "ckpt": "periodic-checkpoint.yaml",
    "gpu": "gpu-memory-alert.yaml",
    "acc": "accuracy-milestones.yaml",
}


def dry(name: str, *extra: str) -> dict[str, Any]:
    out = pivot(
        EXAMPLES, "watchers", "test", FILES[name], "--log", "logs/training.out", "--json", *extra
    )
    [result] = json.loads(out.stdout)
    return result  # type: ignore[no-any-return]


def test_the_example_files_are_ssyncs_own() -> None:
    # Written as ssync's WATCHERS_DEEP_DIVE.md documents them (name and the lines
    # that make each one what it is), not adapted to pivot.
    text = {k: (EXAMPLES / f).read_text() for k, f in FILES.items()}
    assert 'pattern: "Epoch \\\\d+, Loss: ([\\\\d.]+)"' in text["loss"]
    assert 'reason: "CUDA out of memory"' in text["oom"]
    assert 'message: "Error: $error"' in text["oom"]
    assert 'command: "cp -r ./checkpoints ./backups/checkpoint_$(date +%s)"' in text["ckpt"]
    assert 'condition: "float(used) / float(total) > 0.9"' in text["gpu"]
    assert "  - type: pause_watcher\n" in text["acc"]


def test_loss_tracker_dry_run_stores_every_epoch() -> None:
    result = dry("loss")
    stored = [
        a["params"]["value"]
        for m in result["matches"]
        for a in m["actions"]
        if a["type"] == "store_metric"
    ]
    assert stored == ["2.3012", "1.4420", "0.8123", "0.5017"]
    assert result["final_state"] == "active" and result["warnings"] == []


def test_gpu_alert_dry_run_fires_only_above_ninety_percent_and_warns_about_mail() -> None:
    result = dry("gpu")
    assert [(m["captures"]["used"], m["held_back"]) for m in result["matches"]] == [
        ("6100", "matched, condition false"),
        ("7300", ""),
        ("7700", ""),
    ]
    assert [w["message"].split(":")[0] for w in result["warnings"]] == [
        "no SMTP server configured",
        "no recipient",
        "no body",
    ]


def test_oom_handler_dry_run_fires_once() -> None:
    result = dry("oom", "--job", "4242")
    assert [m["held_back"] for m in result["matches"]] == [
        "",
        "not acted on: triggered (max_triggers 1 reached)",
    ]
    assert [a["type"] for a in result["matches"][0]["actions"]] == [
        "log_event",
        "cancel_job",
        "notify_email",
    ]
    assert result["matches"][0]["actions"][1]["params"] == {"reason": "CUDA out of memory"}
    assert result["matches"][0]["actions"][2]["params"]["subject"] == (
        "Job 4242 cancelled - CUDA OOM"
    )


def test_checkpoint_dry_run_warns_and_shows_the_refusal_at_every_timer_tick() -> None:
    result = dry("ckpt", "--timer-ticks", "2")
    [warning] = result["warnings"]  # cp is on the examples' allowlist
    assert warning["message"].startswith("command substitution $(...) in 'cp -r")
    assert "the action will be refused when it fires" in warning["message"]
    assert "${NOW}" in warning["fix"]
    assert [t["tick"] for t in result["timer_ticks"]] == [1, 2]
    for fired in (result["matches"][0], *result["timer_ticks"]):
        [action] = fired["actions"]
        assert action["params"]["error"].startswith("run_command: command substitution $(...)")


def test_accuracy_milestone_dry_run_fires_once_at_95_percent() -> None:
    result = dry("acc")
    assert [(m["captures"]["accuracy"], m["held_back"]) for m in result["matches"]] == [
        ("0.71", "matched, condition false"),
        ("0.88", "matched, condition false"),
        ("0.953", ""),
        ("0.961", "not acted on: triggered (max_triggers 1 reached)"),
    ]


TRAIN = """#!/bin/bash
#SBATCH --job-name=train
#SBATCH --output={out}/train-%j.out
echo "Model initialized"
for epoch in 1 2 3 4; do
  echo "Epoch $epoch, Loss: $(echo '2.3012 1.4420 0.8123 0.5017' | cut -d' ' -f$epoch)"
  echo "GPU 0: $(echo '6100 7300 7700 5000' | cut -d' ' -f$epoch)MB / 8000MB"
  echo "Val Accuracy: $(echo '0.71 0.88 0.953 0.961' | cut -d' ' -f$epoch)"
done
sleep 2
echo "RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB"
sleep 300
"""


def cli_json(project: Path, *args: str) -> Any:
    return json.loads(pivot(project, *args, "--json").stdout)


@pytest.mark.slurm
@pytest.mark.slow
def test_all_five_on_a_real_job(
    slurm: slurm_cluster.Cluster,
    job_dir: Path,
    make_config: Callable[..., object],
    smtp: tuple[int, Mailbox],
) -> None:
    port, box = smtp
    project = job_dir
    (project / "pivot.toml").write_text(
        f'[hosts.local]\nenv = {{SLURM_CONF = "{slurm.conf}"}}\n'
        '[actions.run_command]\nallow = ["cp"]\n'
        f'[notify.smtp]\nhost = "127.0.0.1"\nport = {port}\nto = ["ml@example.org"]\n'
        # ssync's intervals are 10 and 60 s; poll faster here, and retry soon.
        "[watchers]\npoll_seconds = 0.3\nretry_seconds = 0.2\n"
    )
    (project / "best_model.pt").write_bytes(b"weights")
    (project / "milestones").mkdir()
    (project / "train.sh").write_text(TRAIN.format(out=project))
    job_id = cli_json(project, "jobs", "submit", "train.sh")["job_id"]
    ids: dict[str, str] = {}
    for key, name in FILES.items():
        shutil.copy(EXAMPLES / name, project / name)  # byte for byte
        added = cli_json(project, "watchers", "add", name, "--job", job_id)
        [w] = added["watchers"]
        ids[key] = w["id"]
        if key == "ckpt":
            assert [x["message"][:28] for x in added["warnings"]] == [
                "command substitution $(...) "
            ]
        elif key == "gpu":
            assert [x["message"][:7] for x in added["warnings"]] == ["no body"]
        else:
            assert added["warnings"] == [], (key, added["warnings"])
    runner = subprocess.Popen(
        [*PIVOT, "watchers", "run", "--tick", "0.2"], cwd=project, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "XDG_CONFIG_HOME": str(project / "none")},
    )  # fmt: skip
    try:
        wait_for(lambda: job_state(slurm, job_id) == "CANCELLED", what="the OOM cancel")

        want = {"loss": "completed", "gpu": "completed", "oom": "triggered",
                "acc": "triggered", "ckpt": "disabled"}  # fmt: skip

        def settled() -> bool:
            rows = {r["id"]: r["state"] for r in cli_json(project, "watchers", "list")}
            return {k: rows[i] for k, i in ids.items()} == want

        wait_for(settled, what=f"the watchers' final states {want}")
    finally:
        runner.send_signal(signal.SIGINT)
        stdout, stderr = runner.communicate(timeout=60)
    assert runner.returncode == 130, stderr
    assert "Traceback" not in stderr

    series = cli_json(project, "watchers", "metrics", ids["loss"])["series"]
    assert [p["value"] for p in series["train_loss"]] == [2.3012, 1.442, 0.8123, 0.5017]

    gpu = cli_json(project, "watchers", "show", ids["gpu"])
    assert [(m["captures"]["used"], m["condition"]) for m in gpu["matches"]] == [
        ("6100", False), ("7300", True), ("7700", True), ("5000", False),
    ]  # fmt: skip
    assert [a["type"] for a in gpu["actions"] if a["result"] == "succeeded"] == [
        "log_event", "notify_email", "log_event", "notify_email",
    ]  # fmt: skip
    assert f"GPU Memory Alert ({ids['gpu']}) matched, condition false: GPU 0: 6100MB" in stdout

    oom = cli_json(project, "watchers", "show", ids["oom"])
    assert [(a["type"], a["result"]) for a in oom["actions"]] == [
        ("log_event", "succeeded"), ("cancel_job", "succeeded"), ("notify_email", "succeeded"),
    ]  # fmt: skip
    assert oom["actions"][1]["detail"] == f"cancelled job {job_id}: CUDA out of memory"
    assert [(c["old"], c["new"]) for c in oom["state_changes"]] == [("active", "triggered")]
    assert stdout.count(f"CUDA OOM Error Handler ({ids['oom']}) cancel_job ok") == 1
    mails = {message_from_bytes(raw)["Subject"]: message_from_bytes(raw) for _, raw in box.messages}
    oom_mail = mails[f"Job {job_id} cancelled - CUDA OOM"]
    assert str(oom_mail.get_payload()).strip() == "Error: CUDA out of memory"

    acc = cli_json(project, "watchers", "show", ids["acc"])
    assert [(a["type"], a["result"]) for a in acc["actions"]] == [
        ("log_event", "succeeded"), ("run_command", "succeeded"), ("pause_watcher", "succeeded"),
    ]  # fmt: skip
    assert acc["actions"][0]["detail"] == "🎉 Reached 95% accuracy: 0.953"
    assert (project / "milestones" / "model_95pct.pt").read_bytes() == b"weights"

    ckpt = cli_json(project, "watchers", "show", ids["ckpt"])
    failed = [a for a in ckpt["actions"] if a["result"] == "failed"]
    assert failed and failed[0]["detail"].startswith("run_command: command substitution $(...)")
    assert not (project / "backups").exists()
    pending = [
        (w, a["type"])
        for w in ids.values()
        for a in cli_json(project, "watchers", "show", w)["actions"]
        if a["result"] == "pending"
    ]
    assert pending == []


LOSSES = """#!/bin/bash
#SBATCH --output={out}/loss-%j.out
for loss in 2.3012 1.4420 0.8123 0.5017; do echo "Epoch 1, Loss: $loss"; sleep 0.5; done
"""


@pytest.mark.slurm
@pytest.mark.slow
def test_loss_tracker_over_ssh_copied_from_a_local_job(
    slurm: slurm_cluster.Cluster,
    sshd: Any,
    job_dir: Path,
) -> None:
    project = job_dir
    (project / "pivot.toml").write_text(
        f'[hosts.local]\nenv = {{SLURM_CONF = "{slurm.conf}"}}\n'
        f'[hosts.cluster]\nhostname = "127.0.0.1"\nport = {sshd.port}\n'
        f'username = "{sshd.user}"\nknown_hosts = "{sshd.known_hosts}"\n'
        f'identity_file = "{sshd.client_key}"\nenv = {{SLURM_CONF = "{slurm.conf}"}}\n'
        "[watchers]\npoll_seconds = 0.3\n"
    )
    shutil.copy(EXAMPLES / FILES["loss"], project / FILES["loss"])
    (project / "loss.sh").write_text(LOSSES.format(out=project))
    # Defined on a local job first (say, a short test run), then copied to the real one.
    local_job = cli_json(project, "jobs", "submit", "loss.sh")["job_id"]
    [first] = cli_json(project, "watchers", "add", FILES["loss"], "--job", local_job)["watchers"]
    remote_job = cli_json(project, "jobs", "submit", "loss.sh", "--host", "cluster")["job_id"]
    copied = cli_json(project, "watchers", "copy", first["id"], "--job", remote_job,
                      "--host", "cluster")  # fmt: skip
    assert copied["warnings"] == []  # reached over SSH, and its Slurm knows the job
    runner = subprocess.Popen(
        [*PIVOT, "watchers", "run", "--tick", "0.2"], cwd=project, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "XDG_CONFIG_HOME": str(project / "none")},
    )  # fmt: skip
    try:

        def both_done() -> bool:
            rows = cli_json(project, "watchers", "list")
            return sorted(r["state"] for r in rows) == ["completed", "completed"]

        wait_for(both_done, what="both loss trackers completed with their jobs")
    finally:
        runner.send_signal(signal.SIGINT)
        stdout, stderr = runner.communicate(timeout=60)
    assert runner.returncode == 130, stderr
    assert f"Training Loss Tracker ({copied['id']}) store_metric ok: train_loss=0.5017" in stdout
    for wid in (first["id"], copied["id"]):
        series = cli_json(project, "watchers", "metrics", wid)["series"]
        assert [p["value"] for p in series["train_loss"]] == [2.3012, 1.442, 0.8123, 0.5017]
