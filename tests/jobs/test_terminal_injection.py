"""Job output, captures, stage output and errors never drive the user's terminal.

Every command that can print text pivot did not write is run on text full
of escape sequences (a window title, clear screen, an OSC 52 clipboard
write, a C1 CSI, NUL); what it prints must hold none of those bytes raw,
only their visible ``\\xNN`` form (so the text was shown, not dropped).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from testkit import slurm_cluster
from testkit.jobs_e2e import wait_for
from testkit.jobs_servers import job_dir, make_config, slurm, sshd  # noqa: F401 - pytest fixtures

PIVOT = [str(Path(sys.executable).with_name("pivot"))]

EVIL = "T\x1b]0;pwned\x07C\x1b[2JB\x1b]52;c;cHduZWQ=\x07N\x00K\x9bZ"
# Raw control bytes a terminal acts on (tab and newline are text).
RAW = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

WATCHER = """\
name: evil
pattern: "msg=(?P<text>.*)"
max_triggers: 0
interval_seconds: 0.5
actions:
  - type: log_event
    params: {message: "got $text"}
"""


def pivot(project: Path, *args: str, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PIVOT_EVENT_STORE"}
    env["XDG_CONFIG_HOME"] = str(project / "no-user-config")
    proc = subprocess.run(
        [*PIVOT, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120,
        check=False, errors="surrogateescape",
    )  # fmt: skip
    if ok:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def assert_neutral(what: str, text: str) -> None:
    raw = RAW.findall(text)
    assert not raw, f"{what} printed raw control bytes {raw!r}:\n{text!r}"


def test_watcher_commands_show_job_text_literally(tmp_path: Path) -> None:
    project = tmp_path
    (project / "pivot.toml").write_text("")
    (project / "w.yaml").write_text(WATCHER)
    (project / "job.out").write_text(f"hello\nmsg={EVIL}\n", errors="surrogateescape")
    shown = pivot(project, "watchers", "test", "w.yaml", "--log", "job.out")
    assert_neutral("watchers test", shown.stdout + shown.stderr)
    assert "\\x1b]0;pwned" in shown.stdout, shown.stdout
    [wid] = pivot(project, "watchers", "add", "w.yaml", "--job", "4242").stdout.split()
    argv_safe = EVIL.replace("\x00", "")  # argv cannot carry NUL
    fired = pivot(project, "watchers", "trigger", wid, "--text", f"msg={argv_safe}")
    assert_neutral("watchers trigger", fired.stdout + fired.stderr)
    assert "\\x1b" in fired.stdout, fired.stdout
    for args in (
        ("watchers", "list"),
        ("watchers", "show", wid),
        ("watchers", "events"),
        ("watchers", "stats"),
        ("events",),
        ("stats",),
    ):
        proc = pivot(project, *args)
        assert_neutral(" ".join(args), proc.stdout + proc.stderr)
    assert "\\x1b" in pivot(project, "events").stdout


PIPELINE = textwrap.dedent(
    f"""
    from pathlib import Path
    from typing import Annotated

    from pivot import Dep, Out, Pipeline

    pipeline = Pipeline()
    EVIL = {EVIL!r}


    @pipeline.stage
    def loud(
        src: Annotated[Path, Dep("in.txt")],
        out: Annotated[Path, Out("out.txt")],
    ) -> None:
        print("stage says " + EVIL, flush=True)
        raise RuntimeError("stage failed " + EVIL)
    """
)


def test_pipeline_commands_show_stage_text_literally(tmp_path: Path) -> None:
    project = tmp_path
    (project / "pipeline.py").write_text(PIPELINE)
    (project / "in.txt").write_text("x\n")
    ran = pivot(project, "run", ok=None)
    assert ran.returncode == 1, ran.stderr
    assert_neutral("run", ran.stdout + ran.stderr)
    assert "stage says T\\x1b]0;pwned" in ran.stdout, ran.stdout
    for args in (("status",), ("events",), ("why", "loud"), ("stats",)):
        proc = pivot(project, *args, ok=None)
        assert_neutral(" ".join(args), proc.stdout + proc.stderr)
    watch = subprocess.Popen(
        [*PIVOT, "watch", "--display", "plain", "--no-standby", "--no-job-watchers"],
        cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        errors="surrogateescape",
    )  # fmt: skip
    seen = []
    try:
        assert watch.stdout is not None
        for line in watch.stdout:
            seen.append(line)
            if "FAILED" in line or "failed" in line.split(":")[-1]:
                break
    finally:
        watch.send_signal(signal.SIGINT)
        rest, _ = watch.communicate(timeout=60)
    assert_neutral("watch --display plain", "".join(seen) + rest)
    # An error while loading carries outside text too (the exception's message).
    (project / "pipeline.py").write_text(
        PIPELINE + f"\nraise RuntimeError({('import failed ' + EVIL)!r})\n"
    )
    for args in (("run",), ("status",), ("dag",)):
        proc = pivot(project, *args, ok=None)
        assert proc.returncode == 2, proc.stderr
        assert_neutral(" ".join(args), proc.stdout + proc.stderr)
        assert "import failed T\\x1b]0;pwned" in proc.stderr, proc.stderr


@pytest.mark.slurm
def test_watchers_run_shows_job_lines_literally(
    slurm: slurm_cluster.Cluster, job_dir: Path, make_config: Callable[..., object]
) -> None:
    project = job_dir
    (project / "pivot.toml").write_text(f'[hosts.local]\nenv = {{SLURM_CONF = "{slurm.conf}"}}\n')
    (project / "w.yaml").write_text(WATCHER)
    script = project / "evil.sh"
    escaped = EVIL.replace("\x00", "").encode("unicode_escape").decode()
    script.write_text(
        f"#!/bin/bash\n#SBATCH --output=evil-%j.out\nprintf 'msg=%b\\n' '{escaped}'\nsleep 300\n"
    )
    submitted = pivot(project, "jobs", "submit", "evil.sh", "--json").stdout
    job_id = json.loads(submitted)["job_id"]
    [wid] = pivot(project, "watchers", "add", "w.yaml", "--job", job_id).stdout.split()
    runner = subprocess.Popen(
        [*PIVOT, "watchers", "run", "--tick", "0.2"], cwd=project,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="surrogateescape",
        env={**os.environ, "XDG_CONFIG_HOME": str(project / "none")},
    )  # fmt: skip
    try:
        wait_for(
            lambda: "action.succeeded" in pivot(project, "events", "--json").stdout,
            what="the watcher acting",
        )
    finally:
        runner.send_signal(signal.SIGINT)
        stdout, stderr = runner.communicate(timeout=60)
        slurm.run("scancel", job_id)
    assert f"({wid}) matched: msg=T\\x1b]0;pwned" in stdout, (stdout, stderr)
    assert_neutral("watchers run", stdout + stderr)
