"""Reusing watchers from the command line: templates, copy, export, edit; warnings at add."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pivot.jobs.templates import templates

from testkit import slurm_cluster
from testkit.jobs_e2e import PIVOT, job_state, pivot, wait_for
from testkit.jobs_servers import job_dir, make_config, slurm, sshd  # noqa: F401 - pytest fixtures


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pivot.toml").write_text('[actions.run_command]\nallow = ["echo"]\n')
    return tmp_path


def add(project: Path, *args: str) -> dict:  # type: ignore[type-arg]
    out = pivot(project, "watchers", "add", *args, "--no-check", "--json")
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def test_templates_lists_the_one_catalogue_with_parameters(project: Path) -> None:
    listed = json.loads(pivot(project, "watchers", "templates", "--json").stdout)
    assert [t["name"] for t in listed] == [t.name for t in templates()]
    gpu = next(t for t in listed if t["name"] == "gpu-memory")
    assert {"name": "threshold", "description": gpu["params"][1]["description"],
            "default": "0.9", "kind": "number"} == gpu["params"][1]  # fmt: skip
    text = pivot(project, "watchers", "templates").stdout
    assert "--set threshold=..." in text and "oom-resubmit" in text


def test_add_from_a_template_with_set_values(project: Path) -> None:
    out = add(project, "--template", "gpu-memory", "--set", "threshold=0.8", "--job", "41")
    [w] = out["watchers"]
    assert (w["name"], w["job"]) == ("GPU memory", "41")
    shown = json.loads(pivot(project, "watchers", "show", w["id"], "--json").stdout)
    assert shown["definition"]["condition"] == "float(used) / float(total) > 0.8"
    r = pivot(project, "watchers", "add", "--template", "gpu-memory", "--set", "treshold=1",
              "--job", "41", ok=False)  # fmt: skip
    assert r.returncode == 1
    assert r.stderr == (
        "error: template 'gpu-memory' has no parameter 'treshold' "
        "(its parameters: pattern, threshold)\n"
    )
    r = pivot(project, "watchers", "add", "--template", "nope", "--job", "41", ok=False)
    assert r.stderr.startswith("error: unknown template 'nope' (templates: error-detection")
    r = pivot(project, "watchers", "add", "--job", "41", ok=False)
    assert r.stderr == "error: give a watcher FILE or --template NAME (one of them)\n"


def test_export_gives_yaml_that_add_accepts_back_and_copy_attaches_to_another_job(
    project: Path,
) -> None:
    [w] = add(project, "--template", "oom-resubmit", "--set", "memory=96G", "--job", "7")[
        "watchers"
    ]
    exported = pivot(project, "watchers", "export", w["id"]).stdout
    (project / "back.yaml").write_text(exported)
    [again] = add(project, "back.yaml", "--job", "8")["watchers"]
    first = json.loads(pivot(project, "watchers", "show", w["id"], "--json").stdout)
    second = json.loads(pivot(project, "watchers", "show", again["id"], "--json").stdout)
    assert first["definition"] == second["definition"]
    copied = json.loads(
        pivot(project, "watchers", "copy", w["id"][:6], "--job", "9", "--no-check", "--json").stdout
    )
    assert copied["job"] == "9" and copied["name"] == "OOM resubmit"
    third = json.loads(pivot(project, "watchers", "show", copied["id"], "--json").stdout)
    assert third["definition"] == first["definition"]
    rows = json.loads(pivot(project, "watchers", "list", "--json").stdout)
    assert sorted(r["job"] for r in rows) == ["7", "8", "9"]


def editor(project: Path, body: str) -> str:
    """An $EDITOR: a Python script that rewrites the file it is given."""
    script = project / "editor.py"
    script.write_text(f"import pathlib, sys\np = pathlib.Path(sys.argv[1])\n{body}\n")
    return f"{sys.executable} {script}"


def test_edit_validates_records_the_change_and_keeps_a_bad_edit(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    [w] = add(project, "--template", "gpu-memory", "--job", "41")["watchers"]
    monkeypatch.setenv(
        "EDITOR", editor(project, "p.write_text(p.read_text().replace('0.9', '0.75'))")
    )
    out = json.loads(pivot(project, "watchers", "edit", w["id"], "--json").stdout)
    assert out == {"id": w["id"], "changed": True, "warnings": []}
    shown = json.loads(pivot(project, "watchers", "show", w["id"], "--json").stdout)
    assert shown["definition"]["condition"] == "float(used) / float(total) > 0.75"
    events = json.loads(pivot(project, "watchers", "events", w["id"], "--json").stdout)
    [edited] = [e for e in events if e["type"] == "watcher.edited"]
    assert edited["data"]["previous"]["condition"].endswith("> 0.9")
    assert edited["data"]["watcher_name"] == "GPU memory"
    monkeypatch.setenv(
        "EDITOR", editor(project, "p.write_text(p.read_text().replace('pattern:', 'patern:'))")
    )
    r = pivot(project, "watchers", "edit", w["id"], ok=False)
    assert r.returncode == 1
    assert (
        "unknown key 'patern'" in r.stderr and "nothing changed; your edit is kept in" in r.stderr
    )
    kept = Path(r.stderr.rsplit(" ", 1)[1].strip())
    assert "patern:" in kept.read_text()
    kept.unlink()
    shown = json.loads(pivot(project, "watchers", "show", w["id"], "--json").stdout)
    assert shown["definition"]["condition"].endswith("> 0.75")  # the last good state


def test_add_warns_with_the_fix_and_still_attaches(project: Path) -> None:
    (project / "ckpt.yaml").write_text(
        'name: "Periodic Checkpoint"\npattern: "Model initialized"\n'
        "actions:\n  - type: run_command\n"
        '    params:\n      command: "cp -r ./checkpoints ./backups/checkpoint_$(date +%s)"\n'
    )
    r = pivot(project, "watchers", "add", "ckpt.yaml", "--job", "5", "--no-check")
    assert len(r.stdout.split()) == 1  # attached: its id
    lines = r.stderr.splitlines()
    assert lines[0].startswith(
        "warning: Periodic Checkpoint: actions[0].run_command: command substitution $(...)"
    )
    assert 'allow = ["echo", "cp"]' in r.stderr
    out = add(project, "ckpt.yaml", "--job", "6")
    assert [w["message"].split(":")[0] for w in out["warnings"]] == [
        "command substitution $(...) in 'cp -r ./checkpoints ./backups/checkpoint_$(date +%s)'",
        "'cp' is not on the run_command allowlist",
    ]


def test_ssync_names_that_differ_say_what_they_are_called_here(project: Path) -> None:
    (project / "w.yaml").write_text(
        "name: loss\npattern: 'loss: ([0-9.]+)'\ninterval: 60\n"
        "actions:\n  - type: log_event\n    params: {message: m}\n"
    )
    r = pivot(project, "watchers", "add", "w.yaml", "--job", "5", ok=False)
    assert (
        r.stderr == "error: w.yaml:3: unknown key 'interval': it is called interval_seconds here\n"
    )


def test_export_json_carries_the_yaml_and_the_definition(project: Path) -> None:
    [w] = add(project, "--template", "nan-loss", "--job", "3")["watchers"]
    out = json.loads(pivot(project, "watchers", "export", w["id"], "--json").stdout)
    assert out["name"] == "NaN loss"
    assert out["yaml"] == pivot(project, "watchers", "export", w["id"]).stdout
    assert out["definition"]["max_triggers"] == 1


@pytest.mark.slurm
@pytest.mark.slow
def test_submit_warns_about_embedded_watchers_and_run_json_names_them(
    slurm: slurm_cluster.Cluster, job_dir: Path
) -> None:
    (job_dir / "pivot.toml").write_text(f'[hosts.local]\nenv = {{SLURM_CONF = "{slurm.conf}"}}\n')
    (job_dir / "j.sh").write_text(
        "#!/bin/bash\n#SBATCH --output=j-%j.out\n#WATCHER_BEGIN\n# name: marker\n"
        "# pattern: 'done'\n# interval_seconds: 0.3\n# actions:\n"
        "#   - type: run_command\n#     params: {command: 'touch marker'}\n#WATCHER_END\n"
        "echo done\n"
    )
    r = pivot(job_dir, "jobs", "submit", "j.sh")
    job_id = r.stdout.strip()
    assert r.stderr.startswith(
        "warning: marker: actions[0].run_command: 'touch' is not on the run_command allowlist"
    ), r.stderr
    runner = subprocess.Popen(
        [*PIVOT, "watchers", "run", "--tick", "0.2", "--json"], cwd=job_dir, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "XDG_CONFIG_HOME": str(job_dir / "none")},
    )  # fmt: skip
    try:
        wait_for(lambda: job_state(slurm, job_id) == "COMPLETED", what="the job's end")
        wait_for(
            lambda: (
                json.loads(pivot(job_dir, "watchers", "list", "--json").stdout)[0]["state"]
                == "completed"
            ),
            what="the watcher completed",
        )
    finally:
        runner.send_signal(signal.SIGINT)
        stdout, stderr = runner.communicate(timeout=60)
    assert runner.returncode == 130, stderr
    rows = [json.loads(line) for line in stdout.splitlines()]
    failed = [r for r in rows if r["type"] == "action.failed"]
    assert failed and all(r["watcher_name"] == "marker" for r in failed)
    assert "'touch' is not allowed" in failed[0]["data"]["error"]
    assert not (job_dir / "marker").exists()
