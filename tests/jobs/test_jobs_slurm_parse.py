"""Slurm argv builders and parsers (pure; the real commands are tested end to end)."""

from __future__ import annotations

import pytest

from pivot.jobs import slurm

SCONTROL = (
    "JobId=812 ArrayJobId=810 ArrayTaskId=2 JobName=train big UserId=ana(1000) GroupId=ana(1000) "
    "JobState=CANCELLED Reason=None ExitCode=0:15 WorkDir=/home/ana/run "
    "Command=/home/ana/run/job.sh --flag StdErr=/home/ana/run/%x-%A_%a.err StdIn=/dev/null "
    "StdOut=/home/ana/run/%x-%j.%u.out"
)


def test_scontrol_fields_and_output_paths_expanded() -> None:
    info = slurm.parse_scontrol(SCONTROL)
    assert info is not None
    assert (info.job_id, info.state, info.name, info.user) == (
        "812",
        "cancelled",
        "train big",
        "ana",
    )
    assert info.stdout == "/home/ana/run/train big-812.ana.out"
    assert info.stderr == "/home/ana/run/train big-810_2.err"
    assert info.command == "/home/ana/run/job.sh --flag"
    assert info.ended


def test_output_path_padding_and_percent() -> None:
    info = slurm.JobInfo(job_id="7", state="running", name="n")
    assert slurm.expand_output_path("o-%5j-%%.log", info) == "o-00007-%.log"


def test_squeue_one_query_for_all_jobs() -> None:
    argv = slurm.squeue_argv(["1", "2", "3"])
    assert argv[0] == "squeue" and "--jobs=1,2,3" in argv
    jobs = slurm.parse_squeue("1|RUNNING|a|u|1|N/A\n2|CANCELLED by 0|b|u|2|N/A\nbogus\n")
    assert {j: i.state for j, i in jobs.items()} == {"1": "running", "2": "cancelled"}
    assert not jobs["1"].ended and jobs["2"].ended


@pytest.mark.parametrize("state", ["PENDING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED"])
def test_non_final_states(state: str) -> None:
    assert not slurm.JobInfo("1", slurm.normalise_state(state)).ended


def test_sbatch_parsing() -> None:
    assert slurm.parse_sbatch("123\n") == "123"
    assert slurm.parse_sbatch("124;cluster\n") == "124"
    with pytest.raises(ValueError, match="no job id"):
        slurm.parse_sbatch("sbatch: error: nope")


SCRIPT = """#!/bin/bash
#SBATCH --job-name=t
#SBATCH --mem 4G
#SBATCH -t 10
#WATCHER_BEGIN
# name: r
# actions:
#   - type: resubmit
#     params: {remaining_resubmits: 2}
#WATCHER_END
echo hi
"""


def test_modifications_replace_or_add_sbatch_lines() -> None:
    out = slurm.apply_modifications(SCRIPT, {"mem": "64G", "time": "20", "gres": "gpu:1"})
    lines = out.splitlines()
    assert "#SBATCH --mem=64G" in lines and "#SBATCH --mem 4G" not in lines
    assert "#SBATCH --time=20" in lines and "#SBATCH -t 10" not in lines
    assert lines.index("#SBATCH --gres=gpu:1") == 4  # after the last option
    assert lines[-1] == "echo hi"
    with pytest.raises(slurm.ScriptError):
        slurm.apply_modifications(SCRIPT, {"mem": "1G\necho pwned"})


def test_remaining_resubmits_rewritten_only_in_watcher_blocks() -> None:
    out = slurm.set_remaining_resubmits(SCRIPT + "# remaining_resubmits: 9\n", 1)
    assert "#     params: {remaining_resubmits: 1}" in out
    assert out.endswith("# remaining_resubmits: 9\n")


# Captured job output reaches modification values through substitution: any
# of these would end the #SBATCH line (for bash, or for a line splitter that
# treats more than "\n" as a line end) or smuggle in a second sbatch option.
_HOSTILE_VALUES = [
    "1G\necho pwned",
    "1G\r\necho pwned",
    "1:00:00\x0ctouch /tmp/PWNED #",
    "1\x0btouch /tmp/PWNED",
    "1\x1ctouch /tmp/PWNED",
    "1\x85touch /tmp/PWNED",
    "1\u2028touch /tmp/PWNED",
    "1 --output=~/.bashrc",
    "1\t--output=~/.bashrc",
    '"1" --wrap="id"',
    "1\\\nid",
    "",
]


@pytest.mark.parametrize("value", _HOSTILE_VALUES)
def test_modification_values_cannot_add_lines_or_options(value: str) -> None:
    with pytest.raises(slurm.ScriptError):
        slurm.apply_modifications(SCRIPT, {"time": value})


@pytest.mark.parametrize("key", ["time --wrap", "mem\nid", "", "--", "a=b"])
def test_modification_keys_must_be_option_names(key: str) -> None:
    with pytest.raises(slurm.ScriptError):
        slurm.apply_modifications(SCRIPT, {key: "1"})


def test_ordinary_sbatch_values_are_accepted() -> None:
    mods = {
        "time": "1-00:00:00",
        "gres": "gpu:a100:2",
        "output": "logs/%x-%j.out",
        "constraint": "a100|v100",
        "mem": "16G",
    }
    out = slurm.apply_modifications(SCRIPT, mods)
    for key, value in mods.items():
        assert f"#SBATCH --{key}={value}" in out.split("\n")


def test_line_splitting_keeps_exotic_separators_inside_their_line() -> None:
    script = "#!/bin/bash\n#SBATCH -t 1\necho 'a\x0cb'\n"
    assert slurm.set_remaining_resubmits(script, 1) == script
    assert slurm.apply_modifications(script, {"mem": "1G"}).count("\n") == 4
