"""Add-time warnings (pivot.jobs.advice): what would fail at run time, with a fix that works."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import pytest

from pivot.jobs.advice import AddWarning, check_definition, probe_job, shell_syntax, static_warnings
from pivot.jobs.config import Config, HostConfig, SmtpConfig, load_config
from pivot.jobs.definition import parse_watchers

from testkit import slurm_cluster
from testkit.jobs_servers import job_dir, make_config, slurm, sshd  # noqa: F401 - pytest fixtures


def one(text: str):  # type: ignore[no-untyped-def]
    (d,) = parse_watchers(text, "w.yaml")
    return d


def command_watcher(command: str) -> str:
    return (
        "name: c\npattern: x\nactions:\n  - type: run_command\n"
        f"    params: {{command: {command!r}}}\n"
    )


def test_a_program_off_the_allowlist_warns_with_the_exact_lines_that_fix_it(tmp_path: Path) -> None:
    (tmp_path / "pivot.toml").write_text('[actions.run_command]\nallow = ["echo"]\n')
    config = load_config(tmp_path, user_file=tmp_path / "none.toml")
    d = one(command_watcher("cp best_model.pt milestones/model_95pct.pt"))
    [w] = static_warnings(d, config)
    assert w.field == "actions[0].run_command"
    assert "'cp' is not on the run_command allowlist" in w.message
    lines = w.fix.splitlines()[1:]
    assert lines == ["[actions.run_command]", 'allow = ["echo", "cp"]']
    # Doing what the fix says makes the warning go away.
    (tmp_path / "pivot.toml").write_text("\n".join(lines) + "\n")
    assert static_warnings(d, load_config(tmp_path, user_file=tmp_path / "none.toml")) == []


@pytest.mark.parametrize(
    ("command", "seen"),
    [
        ("cp -r ./checkpoints ./backups/checkpoint_$(date +%s)", "command substitution $(...)"),
        ("echo 'Event triggered' | logger", "|"),
        ("echo a; echo b", ";"),
        ("mkdir out && echo done", "&&"),
        ("echo x > out.txt", ">"),
        ("echo `date`", "backticks"),
        ("cp *.pt backups/", "a glob (* ? [...])"),
    ],
)
def test_shell_syntax_warns_that_no_shell_runs_and_offers_now(command: str, seen: str) -> None:
    config = Config(run_command_allow=("cp", "echo", "mkdir"))
    [w] = static_warnings(one(command_watcher(command)), config)
    assert seen in w.message
    assert "no shell runs the command" in w.message
    assert "${NOW}" in w.fix and "script" in w.fix


def test_quoted_characters_are_not_shell_syntax() -> None:
    assert shell_syntax("grep 'a|b;c' log.txt") == []
    assert shell_syntax('echo "x && y" "*.pt"') == []
    assert shell_syntax("cp model.pt backups/model_${NOW}.pt") == []


def test_email_without_smtp_recipient_or_body_warns_each() -> None:
    d = one(
        "name: m\npattern: x\nactions:\n  - type: notify_email\n"
        "    params: {subject: High GPU memory usage}\n"
    )
    warned = static_warnings(d, Config())
    assert [w.message.split(":")[0] for w in warned] == [
        "no SMTP server configured",
        "no recipient",
        "no body",
    ]
    assert "[notify.smtp]" in warned[0].fix
    configured = Config(smtp=SmtpConfig(host="127.0.0.1", to=("me@example.org",)))
    assert [w.message.split(":")[0] for w in static_warnings(d, configured)] == ["no body"]
    ssync_style = one(
        "name: m\npattern: x\nactions:\n  - type: notify_email\n"
        "    params: {subject: s, message: 'Error: $0'}\n"
    )
    assert static_warnings(ssync_style, configured) == []


def test_slack_and_webhook_without_a_url_warn() -> None:
    d = one("name: s\npattern: x\nactions:\n  - type: notify_slack\n    params: {message: hi}\n")
    [w] = static_warnings(d, Config())
    assert "no webhook URL" in w.message and "[notify.webhook]" in w.fix
    assert AddWarning("f", "m", "x").to_json() == {"field": "f", "message": "m", "fix": "x"}


@pytest.mark.slurm
def test_probe_knows_a_real_job_and_warns_for_an_unknown_id(
    slurm: slurm_cluster.Cluster, make_config: Callable[..., Config]
) -> None:
    config = make_config()
    out = slurm.run("sbatch", "--parsable", "--wrap", "sleep 120", "--output=/dev/null")
    job_id = out.stdout.strip().split(";")[0]
    try:
        assert probe_job(config, job_id) == []
        d = one("name: e\npattern: x\nactions:\n  - type: log_event\n    params: {message: m}\n")
        assert check_definition(d, config, job_id=job_id) == []
        [w] = check_definition(d, config, job_id="999999")
        assert (w.field, w.message) == (
            "job",
            "Slurm on local does not know job 999999 (squeue and scontrol show job)",
        )
        assert check_definition(d, config, job_id="999999", probe_jobs=False) == []
    finally:
        slurm.run("scancel", job_id)


def test_probe_warns_when_the_host_cannot_be_reached() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once closed
    host = HostConfig("cluster", hostname="127.0.0.1", port=port, connect_timeout=5)
    config = Config(hosts={"local": HostConfig("local"), "cluster": host})
    [w] = probe_job(config, "1234", "cluster", timeout=5)
    assert w.field == "host"
    assert w.message.startswith("cannot reach cluster:"), w.message
    assert "[hosts.cluster]" in w.fix


@pytest.mark.slurm
def test_probe_over_ssh_asks_the_hosts_slurm(
    slurm: slurm_cluster.Cluster, sshd: object, make_config: Callable[..., Config]
) -> None:
    config = make_config(sshd)
    out = slurm.run("sbatch", "--parsable", "--wrap", "sleep 120", "--output=/dev/null")
    job_id = out.stdout.strip().split(";")[0]
    try:
        assert probe_job(config, job_id, "cluster") == []
        [w] = probe_job(config, "999999", "cluster")
        assert (
            w.message == "Slurm on cluster does not know job 999999 (squeue and scontrol show job)"
        )
    finally:
        slurm.run("scancel", job_id)
