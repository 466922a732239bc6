"""The job side of a SLURM stage without Slurm: its script, its entry point, its verdicts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pivot.events.pipeline import StageFailed, StageSubmitted, StageSucceeded
from pivot.jobs.slurm import JobInfo
from pivot.pipeline import slurm_job
from pivot.pipeline.slurm_adopt import candidates, run_inputs, same_inputs
from pivot.pipeline.slurm_outcome import ended, exit_text, reported, sbatch_refusal, state_text
from pivot.pipeline.worker import StageOutcome, StageTask

HOSTILE = "we ird $(touch pwned) `id` 'q' \"d\"; rm -rf x & |"


def test_the_script_quotes_every_word_so_a_shell_reads_them_back_as_data(tmp_path: Path) -> None:
    root = tmp_path / HOSTILE
    root.mkdir()
    echo = tmp_path / "argv.sh"  # stands in for python: prints its arguments, one a line
    echo.write_text('#!/bin/sh\nprintf "%s\\n" "$PWD" "$@"\n')
    echo.chmod(0o755)
    run_file = str(root / ".pivot/slurm/s.abc.json")
    task = StageTask(root=str(root), stage="s", module="m", file="m.py", qualname="f")
    script = slurm_job.batch_script(task, run_file, ["--mem=1G"], python=str(echo))
    assert script.startswith("#!/bin/sh\n#SBATCH --job-name=pivot.s\n")
    assert "#SBATCH --output=.pivot/logs/jobs/s.%j.log\n#SBATCH --mem=1G\n" in script
    out = subprocess.run(
        ["sh", "-c", script], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.splitlines() == [str(root), "-m", "pivot.pipeline.slurm_job", run_file]
    assert not list(tmp_path.rglob("pwned"))


def test_an_option_that_is_not_one_token_is_refused() -> None:
    task = StageTask(root="/p", stage="s", module="m", file="m.py", qualname="f")
    with pytest.raises(ValueError, match="not a single sbatch option"):
        slurm_job.batch_script(task, "/p/r.json", ["--comment=a b"])
    with pytest.raises(ValueError, match="not a single sbatch option"):
        slurm_job.batch_script(task, "/p/r.json", ["mem=1G"])


def test_the_entry_point_runs_the_stage_and_writes_its_outcome(tmp_path: Path) -> None:
    (tmp_path / "stages.py").write_text(
        "import os\n"
        "def ok(out):\n"
        "    print('in the job', flush=True)\n"
        "    out.write_text(os.environ['SLURM_JOB_ID'])\n"
        "def bad(out):\n"
        "    raise ValueError('bad row 3')\n"
    )
    for stage, ok in (("ok", True), ("bad", False)):
        task = StageTask(
            root=str(tmp_path), stage=stage, module="stages", file="stages.py", qualname=stage,
            out_args={"out": f"{stage}.txt"}, log_path=str(tmp_path / f"{stage}.log"),
        )  # fmt: skip
        run_file = tmp_path / ".pivot/slurm" / f"{stage}.r1.json"
        slurm_job.write_run_file(run_file, task, "r1")
        proc = subprocess.run(
            [sys.executable, "-m", "pivot.pipeline.slurm_job", str(run_file)],
            env={**os.environ, "SLURM_JOB_ID": "77"}, cwd="/", capture_output=True, check=False,
        )  # fmt: skip
        assert proc.returncode == (0 if ok else 1)
        written = slurm_job.read_outcome(run_file)
        assert written is not None
        outcome, job_id = written
        assert (outcome.stage, outcome.ok, job_id) == (stage, ok, "77")
        data = json.loads(slurm_job.result_path(run_file).read_text())
        assert data["outcome"]["pid"] > 0
    assert (tmp_path / "ok.txt").read_text() == "77"
    assert (tmp_path / "ok.log").read_text() == "in the job\n"
    assert "ValueError: bad row 3" in (tmp_path / "bad.log").read_text()
    # A new run file of the same path drops the result of the last one.
    slurm_job.write_run_file(tmp_path / ".pivot/slurm/ok.r1.json", task, "r2")
    assert slurm_job.read_outcome(tmp_path / ".pivot/slurm/ok.r1.json") is None


def test_an_unreadable_run_file_is_exit_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pivot.pipeline.slurm_job", str(tmp_path / "none.json")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "cannot read the run file" in proc.stderr


@pytest.mark.parametrize(
    ("state", "code", "text"),
    [
        ("failed", "3:0", "FAILED exit 3"),
        ("failed", "0:9", "FAILED signal 9"),
        ("out_of_memory", "0:125", "OUT_OF_MEMORY"),
        ("timeout", "0:15", "TIMEOUT"),
        ("node_fail", "", "NODE_FAIL"),
        ("cancelled", "0:15", "CANCELLED"),
    ],
)
def test_slurms_state_and_exit_code_as_the_stage_error(state: str, code: str, text: str) -> None:
    info = JobInfo(job_id="12", state=state, exit_code=code)
    assert state_text(info) == text
    got = ended("train", info, "local", None, 1.5)
    assert (got.ok, got.error, got.duration) == (False, f"{text} (SLURM job 12 on local)", 1.5)
    assert (got.job_id, got.state, got.exit_code) == ("12", state, code)


def test_what_the_job_wrote_wins_unless_another_job_wrote_it() -> None:
    info = JobInfo(job_id="12", state="failed", exit_code="1:0")
    mine = StageOutcome("train", False, 5, 2.0, "ValueError: x", "tb")
    got = ended("train", info, "hpc", (mine, "12"), 9.0)
    assert (got.error, got.traceback, got.pid) == ("ValueError: x (SLURM job 12 on hpc)", "tb", 5)
    assert (got.job_id, got.state, got.exit_code) == ("12", "failed", "1:0")
    earlier = ended("train", info, "hpc", (mine, "11"), 9.0)  # before a resubmission
    assert earlier.error == "FAILED exit 1 (SLURM job 12 on hpc)"
    assert earlier.job_id == "12"  # the job whose result counts, not the one that wrote
    good = StageOutcome("train", True, 5, 2.0)
    done = JobInfo(job_id="12", state="completed", exit_code="0:0")
    assert ended("train", done, "hpc", (good, "12"), 9) == StageOutcome(
        "train", True, 5, 2.0, job_id="12", state="completed", exit_code="0:0"
    )
    lost = ended("train", JobInfo(job_id="12", state="completed"), "hpc", None, 9)
    assert lost.error.startswith("COMPLETED without a result from pivot (SLURM job 12 on hpc)")


def test_an_outcome_read_before_slurm_reports_the_end_names_the_end_it_implies() -> None:
    good = reported(StageOutcome("train", True, 5, 2.0), "12", "hpc")
    assert (good.ok, good.error, good.job_id, good.state, good.exit_code) == (
        True, "", "12", "completed", "0:0",
    )  # fmt: skip
    bad = reported(StageOutcome("train", False, 5, 2.0, "ValueError: x"), "12", "hpc")
    assert (bad.error, bad.job_id, bad.state, bad.exit_code) == (
        "ValueError: x (SLURM job 12 on hpc)", "12", "failed", "1:0",
    )  # fmt: skip


def test_exit_codes_and_sbatch_messages() -> None:
    assert [exit_text(c) for c in ("0:0", "3:0", "0:9", "", "x")] == [
        "", "exit 3", "signal 9", "", "",
    ]  # fmt: skip
    assert sbatch_refusal(
        "sbatch: error: invalid partition specified: nope\n"
        "sbatch: error: Batch job submission failed: Invalid partition name specified\n"
    ) == (
        "invalid partition specified: nope; "
        "Batch job submission failed: Invalid partition name specified"
    )
    assert sbatch_refusal("", "") == "sbatch printed nothing"


def test_the_jobs_left_to_adopt_are_those_whose_wave_did_not_end_the_stage() -> None:
    inputs = run_inputs("fp", {"a.txt": "h1", "gone": None}, {"n": (1, 2)})

    def sub(stage: str, job: str, wave: str) -> StageSubmitted:
        return StageSubmitted(stage=stage, job_id=job, correlation_id=wave, inputs=inputs)

    events = [
        sub("a", "1", "w1"),
        StageSucceeded(stage="a", duration=1.0, correlation_id="w1"),  # ended: not a candidate
        sub("b", "2", "w1"),
        StageFailed(stage="b", error="x", correlation_id="w0"),  # another wave's end
        sub("c", "3", "w1"),
        sub("c", "4", "w2"),  # the last one counts
        sub("d", "5", "w2"),
        StageFailed(stage="d", error="x", correlation_id="w2"),
    ]
    found = candidates(events)
    assert {s: e.job_id for s, e in found.items()} == {"b": "2", "c": "4"}
    # Inputs as the log gives them back (JSON: the tuple is a list there).
    logged = StageSubmitted(stage="b", job_id="2", inputs=json.loads(json.dumps(inputs)))
    assert same_inputs(logged, inputs)
    assert not same_inputs(
        logged, run_inputs("other", {"a.txt": "h1", "gone": None}, {"n": [1, 2]})
    )
    assert not same_inputs(StageSubmitted(stage="b", job_id="2"), inputs)  # none recorded
