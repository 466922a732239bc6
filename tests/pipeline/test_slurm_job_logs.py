"""A SLURM stage's job logs, on real files: one per job, ``STAGE.log`` naming the current one."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from pivot.pipeline.run_output import LogTail
from pivot.pipeline.slurm_logs import job_logs_to_remove, point_stage_log, remove_job_logs
from pivot.pipeline.stage_log import empty_log, log_path

from testkit.slurm_project import wait_until


def test_only_the_stages_own_job_logs_are_removed_and_the_kept_jobs_stay() -> None:
    names = ["train.12.log", "train.13.log", "train.log", "train.x.log", "train.12.log.tmp",
             "trainer.14.log", "train.12.5.log", "other.15.log", "train.16.log"]  # fmt: skip
    assert job_logs_to_remove(names, "train", keep=["13"]) == ["train.12.log", "train.16.log"]
    assert job_logs_to_remove(names, "a.b", keep=()) == []
    assert job_logs_to_remove(["a.b.7.log", "aXb.7.log"], "a.b") == ["a.b.7.log"]


def test_the_stage_log_is_switched_atomically_to_each_jobs_own_file(tmp_path: Path) -> None:
    jobs = tmp_path / ".pivot/logs/jobs"
    point_stage_log(tmp_path, "train", "41")  # the job's file need not exist yet
    link = log_path(tmp_path, "train")
    assert link.is_symlink() and os.readlink(link) == "jobs/train.41.log"
    assert not link.exists()  # pending: nothing to read yet
    jobs.mkdir()
    (jobs / "train.41.log").write_text("first job\n")
    (jobs / "train.42.log").write_text("second job\n")
    assert link.read_text() == "first job\n"
    point_stage_log(tmp_path, "train", "42")
    assert os.readlink(link) == "jobs/train.42.log" and link.read_text() == "second job\n"
    assert sorted(p.name for p in jobs.iterdir()) == ["train.41.log", "train.42.log"]
    # A new run's submission: the earlier runs' job files go, the stage's log stays.
    remove_job_logs(tmp_path, "train", keep=["42"])
    assert sorted(p.name for p in jobs.iterdir()) == ["train.42.log"]
    remove_job_logs(tmp_path, "train")
    assert list(jobs.iterdir()) == [] and link.is_symlink()


def test_a_stage_named_like_a_job_file_keeps_its_log(tmp_path: Path) -> None:
    # Stage names may hold dots: stage "train.12"'s own log is not job 12's of "train".
    own = log_path(tmp_path, "train.12")
    own.parent.mkdir(parents=True)
    own.write_text("a local stage's lines\n")
    point_stage_log(tmp_path, "train", "12")
    remove_job_logs(tmp_path, "train")
    assert own.read_text() == "a local stage's lines\n"
    assert os.readlink(log_path(tmp_path, "train")) == "jobs/train.12.log"


def test_emptying_a_symlinked_log_leaves_the_jobs_file_as_it_was(tmp_path: Path) -> None:
    point_stage_log(tmp_path, "train", "41")
    job_file = tmp_path / ".pivot/logs/jobs/train.41.log"
    job_file.parent.mkdir()
    job_file.write_text("the job's lines\n")
    empty_log(log_path(tmp_path, "train"))  # the next run starts (locally, or on SLURM)
    assert not log_path(tmp_path, "train").is_symlink()
    assert log_path(tmp_path, "train").read_text() == ""
    assert job_file.read_text() == "the job's lines\n"
    # A dangling symlink (its job's file removed) is not brought back either.
    point_stage_log(tmp_path, "train", "43")
    empty_log(log_path(tmp_path, "train"))
    assert not (tmp_path / ".pivot/logs/jobs/train.43.log").exists()


def test_the_output_follower_reads_a_switched_log_from_the_new_files_beginning(
    tmp_path: Path,
) -> None:
    logs = tmp_path / ".pivot/logs/jobs"
    logs.mkdir(parents=True)
    lines: list[str] = []
    lock = threading.Lock()

    def got(stage: str, line: str) -> None:
        with lock:
            lines.append(f"{stage} | {line}")

    def seen() -> list[str]:
        with lock:
            return list(lines)

    (logs / "train.41.log").write_text("CUDA out of memory\n")
    point_stage_log(tmp_path, "train", "41")
    tail = LogTail(got, interval=0.05)
    try:
        tail.follow("train", log_path(tmp_path, "train"))
        wait_until(lambda: seen() == ["train | CUDA out of memory"], what="the first job's line")
        # The resubmitted job wrote more than the first before the switch: its
        # lines are read from its file's beginning, none skipped.
        (logs / "train.42.log").write_text("a longer first line of the second job\nsecond\n")
        point_stage_log(tmp_path, "train", "42")
        wait_until(lambda: len(seen()) == 3, what="the second job's lines")
        tail.finish("train")
    finally:
        tail.close()
    assert seen() == [
        "train | CUDA out of memory",
        "train | a longer first line of the second job",
        "train | second",
    ]
